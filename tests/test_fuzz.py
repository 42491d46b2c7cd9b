"""Fuzzing the real webhook through Home Assistant's HTTP stack with Hypothesis.

Two property tests drive the city endpoint with thousands of generated requests
and check every answer against an oracle written from the contract
(docs/city-api.md), not from webhook.py, plus invariants that hold whatever the
input:

- the status is below 500 and the answer is JSON (`Content-Type:
  application/json`), except when aiohttp's HTTP parser itself rejects a
  malformed request before Home Assistant routes it (control characters in a
  header value), which the integration cannot see;
- nothing is granted (201, or 200 `active`) unless the signature is valid, the
  payload follows the field rules and the resident's policy allows it;
- the integration's loggers (`custom_components.rtcc_share*`) log nothing at
  ERROR and no traceback;
- the seen-id store stays bounded and holds exactly the accepted messages.

`pytest-asyncio` runs a Hypothesis `@given` coroutine test example by example
on the test's event loop (its `AsyncHypothesisTest` item), so the function
scoped `hass`, `integration` and HTTP client are set up once per test and every
example is a real request to the same running Home Assistant. Hypothesis'
engine draws, and shrinks, every example; `st.data()` lets a draw depend on
what the test has seen so far (replaying an accepted webhook-id). The oracle
models the state that builds up across examples (accepted ids, granted and
ended activations, the daily limit), so shrinking replays stay consistent.

The tests at the end of this file pin inputs the fuzzers once found to
crash or slip through (unhashable `type`, integers beyond a float, lone
surrogates, a trailing newline in an id).
"""

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
import enum
import hashlib
import hmac
import json
import logging
import math
import re
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.components.http.server import MAX_LINE_SIZE
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from hypothesis import HealthCheck, event, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    DEFAULT_ALLOWED_INCIDENT_TYPES,
    DEFAULT_OPTIONS,
    MAX_BODY_BYTES,
    SEEN_IDS_MAX,
    TIMESTAMP_TOLERANCE_S,
)
from custom_components.rtcc_share.models import EndReason

from .common import HOME, SECRET, WEBHOOK_URL, City, ended, requested, turn_on_consent

OUR_LOGGER = "custom_components.rtcc_share"
SECRET_BYTES = base64.b64decode(SECRET.removeprefix("whsec_"))

PAYLOAD_EXAMPLES = 6_000
HEADER_EXAMPLES = 4_000
FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
    "print_blob": True,
}

# The contract's rules, restated here rather than imported from the code.
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
INCIDENT_TYPE_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
STREAM_URL_RE = re.compile(
    r"https://home\.example\.org/api/rtcc_share/hls/[0-9a-f]{64}/master_playlist\.m3u8"
)
ISO_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
RECEIPT_RE = re.compile(r"sha256:[0-9a-f]{64}")
ALLOWED_TYPES = frozenset(DEFAULT_ALLOWED_INCIDENT_TYPES)
# The fuzzed entry keeps the privacy-preserving defaults.
OPTIONS: dict[str, Any] = dict(DEFAULT_OPTIONS)
MAX_DISTANCE_M = float(OPTIONS["max_distance_m"])
MAX_DURATION_S = int(OPTIONS["max_duration_s"])
MAX_PER_DAY = int(OPTIONS["max_activations_per_day"])
# aiohttp's parser refuses these in a header value (RFC 9110 5.5) with its own
# plain-text 400, before Home Assistant sees the request.
FORBIDDEN_HEADER_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# ... and so it does a header value over Home Assistant's server's limit.
MAX_HEADER_VALUE_BYTES = MAX_LINE_SIZE


# Oracle -------------------------------------------------------------------


class Verdict(enum.IntEnum):
    """How the contract judges one field; the worst field decides."""

    VALID = 0
    EITHER = 1  # the contract leaves it open (or a pinned bug decides it)
    INVALID = 2


def _check(condition: bool) -> Verdict:
    return Verdict.VALID if condition else Verdict.INVALID


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_in(value: Any, low: float, high: float) -> Verdict:
    """A finite JSON number (not a boolean) within [low, high]."""
    if not _is_number(value):
        return Verdict.INVALID
    if isinstance(value, float) and not math.isfinite(value):
        return Verdict.INVALID
    return _check(low <= value <= high)


def _text(value: Any, low: int, high: int) -> Verdict:
    return _check(isinstance(value, str) and low <= len(value) <= high)


def _pattern(value: Any, pattern: re.Pattern[str], max_len: int) -> Verdict:
    if not isinstance(value, str) or len(value) > max_len:
        return Verdict.INVALID
    return _check(pattern.fullmatch(value) is not None)


def _operator(value: Any) -> Verdict:
    if not isinstance(value, dict):
        return Verdict.INVALID
    verdict = _text(value.get("id"), 1, 128)
    if "name" in value:
        verdict = max(verdict, _check(isinstance(value["name"], str)))
    return verdict


def _field_verdict(data: Any) -> Verdict:
    """Judge a decoded body by the contract's field rules."""
    if not isinstance(data, dict):
        return Verdict.INVALID
    kind = data.get("type")
    if kind not in ("activation.requested", "activation.ended"):
        return Verdict.INVALID
    verdict = max(
        _pattern(data.get("activation_id"), ID_RE, 128), _operator(data.get("operator"))
    )
    if kind == "activation.ended":
        return verdict
    incident = data.get("incident")
    if not isinstance(incident, dict):
        return Verdict.INVALID
    location = incident.get("location")
    if not isinstance(location, dict):
        return Verdict.INVALID
    checks = [
        _text(incident.get("id"), 1, 128),
        _pattern(incident.get("type"), INCIDENT_TYPE_RE, 64),
        _number_in(location.get("lat"), -90, 90),
        _number_in(location.get("lon"), -180, 180),
        _text(data.get("legal_basis"), 1, 64),
    ]
    if "description" in incident:
        checks.append(_text(incident["description"], 0, 500))
    if "radius_m" in incident:
        checks.append(_number_in(incident["radius_m"], 1, 5000))
    if "requested_duration_s" in data:
        duration = data["requested_duration_s"]
        in_range = _number_in(duration, 30, 86400) is Verdict.VALID
        if in_range and isinstance(duration, int):
            checks.append(Verdict.VALID)
        elif in_range and duration.is_integer():
            checks.append(Verdict.EITHER)  # "30 to 86400": is 60.0 an integer?
        else:
            checks.append(Verdict.INVALID)
    return max(verdict, *checks)


def _decode(body: bytes) -> tuple[bool, Any]:
    """Return (True, value) for a UTF-8 JSON body (NaN/Infinity are not JSON)."""

    def reject(name: str) -> None:
        raise ValueError(name)

    try:
        return True, json.loads(body.decode("utf-8"), parse_constant=reject)
    except ValueError, RecursionError:
        return False, None


def _distance_m(lat: float, lon: float) -> float:
    """Great-circle distance from the home, metres (haversine)."""
    lat_a, lat_b = math.radians(HOME[0]), math.radians(lat)
    h = (
        math.sin((lat_b - lat_a) / 2) ** 2
        + math.cos(lat_a)
        * math.cos(lat_b)
        * math.sin(math.radians(lon - HOME[1]) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(min(math.sqrt(h), 1.0))


@dataclass
class Model:
    """What the home must remember across examples."""

    accepted: list[str] = field(default_factory=list)  # webhook-ids, in order
    accepted_set: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)  # granted, then ended
    grants_in_window: int = 0
    rate_limited_since_reset: int = 0
    rejected: int = 0  # 401s
    log_index: int = 0
    next_id: int = 0

    def fresh_id(self) -> str:
        """Return a never-used webhook-id."""
        self.next_id += 1
        return f"fz-{self.next_id}"

    def accept(self, msg_id: str) -> None:
        """Remember an id the home must now refuse to see again."""
        self.accepted.append(msg_id)
        self.accepted_set.add(msg_id)


type Outcome = tuple[int, str]
GRANT: Outcome = (201, "active")


def _policy_outcomes(data: dict[str, Any], model: Model) -> set[Outcome]:
    """The answers to a valid message, given the resident's default policy."""
    activation_id = data["activation_id"]
    if data["type"] == "activation.ended":
        if activation_id in model.history:
            return {(200, "ended")}
        return {(404, "unknown_activation")}
    if activation_id in model.history:
        return {(200, "ended")}
    incident = data["incident"]
    if incident["type"] not in ALLOWED_TYPES:
        return {(403, "incident_type_not_allowed")}
    limit = min(float(incident.get("radius_m", MAX_DISTANCE_M)), MAX_DISTANCE_M)
    distance = _distance_m(incident["location"]["lat"], incident["location"]["lon"])
    outcomes: set[Outcome] = set()
    if distance > limit * 0.99 - 0.5:
        outcomes.add((403, "outside_area"))
        if distance >= limit * 1.01 + 0.5:
            return outcomes
    if model.grants_in_window >= MAX_PER_DAY:
        return outcomes | {(403, "rate_limited")}
    return outcomes | {GRANT}


# Strategies ---------------------------------------------------------------


def _mostly[T](
    usual: st.SearchStrategy[T], other: st.SearchStrategy[T]
) -> st.SearchStrategy[T]:
    """Two draws in three from `usual`, so most requests get past earlier checks.

    (`st.one_of(usual, usual, other)` would not do: it drops the duplicate.)
    """

    @st.composite
    def choose(draw: st.DrawFn) -> T:
        return draw(other if draw(st.integers(0, 2)) == 2 else usual)

    return choose()


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // max(len(unit), 1) + 1))[:size]


def _long_text(sizes: tuple[int, ...]) -> st.SearchStrategy[str]:
    """Unicode text incl. control characters: at the boundaries or up to 10 000."""
    unit = st.text(min_size=1, max_size=4)
    return st.one_of(
        st.builds(_repeat, unit, st.sampled_from(sizes)),
        st.builds(_repeat, unit, st.integers(0, 10_000)),
    )


def _valid_text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=low, max_size=min(high, 24)),
        st.builds(
            _repeat, st.text(min_size=1, max_size=4), st.sampled_from([low or 1, high])
        ),
    )


# An integer over Python's 4300-digit conversion limit cannot even be built
# into a body by json.dumps: a placeholder string is replaced in the text.
DIGITS = "__digits__"
HUGE_NUMBERS = st.sampled_from(
    [10**400, -(10**400), DIGITS, 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324, -0.0]
)
NUMBER_JUNK = st.one_of(
    st.integers(),
    st.floats(),  # NaN and ±inf included: not JSON, the body must fail as a whole
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["32.1", "1e3", "NaN", "", "0x10"]),
    HUGE_NUMBERS,
)
JUNK = st.recursive(
    NUMBER_JUNK,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
) | _long_text((0, 1, 128, 129))
ACTIVATION_IDS = _mostly(
    st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True),
    st.sampled_from(["A-1", "A-2", "JPD-RTCC-0017"]),  # collide with history
)
BAD_IDS = st.one_of(
    # `fullmatch=False` also yields a trailing newline, which `$` lets through.
    st.from_regex(r"^[A-Za-z0-9._:-]{1,128}$"),
    st.from_regex(r"[A-Za-z0-9._:-]{0,3}[^A-Za-z0-9._:-][A-Za-z0-9._:-]{0,3}"),
    _long_text((0, 127, 128, 129, 10_000)),
)
SNAKE_CASE = st.builds(
    lambda first, words: first + "".join(f"_{word}" for word in words),
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", max_size=6)),
)  # from_regex is several times slower; the oracle judges whatever comes out
INCIDENT_TYPES = _mostly(
    st.sampled_from(sorted(ALLOWED_TYPES)),
    st.sampled_from(["protest", "lawful_assembly"]) | SNAKE_CASE,
)
BOUNDARIES: dict[str, st.SearchStrategy[Any]] = {
    "activation_id": BAD_IDS,
    "incident.id": _long_text((0, 1, 128, 129, 10_000)),
    "incident.type": st.one_of(
        st.from_regex(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$"),
        st.sampled_from(["Shots_fired", "shots fired", "_x", "x_", "x__y", "1x"]),
        _long_text((0, 64, 65)),
    ),
    "incident.description": _long_text((0, 500, 501, 10_000)),
    "incident.location.lat": st.sampled_from(
        [90, -90, 90.0000001, -90.0000001, 91, HOME[0]]
    ),
    "incident.location.lon": st.sampled_from(
        [180, -180, 180.0000001, -180.0000001, 181, HOME[1]]
    ),
    "incident.radius_m": st.sampled_from([0, 0.999, 1, 5000, 5000.001, 10**9]),
    "operator.id": _long_text((0, 1, 128, 129, 10_000)),
    "operator.name": _long_text((0, 128, 129, 10_000)),
    "legal_basis": _long_text((0, 1, 64, 65, 10_000)),
    "requested_duration_s": st.sampled_from(
        [29, 30, 86400, 86401, 60.5, 60.0, 0, -1, 10**30]
    ),
    "type": st.sampled_from(
        ["activation.paused", "Activation.Requested", "activation.requested "]
    ),
}
REQUESTED_PATHS = sorted({*BOUNDARIES, "incident", "incident.location", "operator"})
ENDED_PATHS = ["type", "activation_id", "operator", "operator.id", "operator.name"]
CONTAINERS = ["", "incident", "incident.location", "operator"]
DEEP = "__deep__"


def _around_home(degrees: float) -> st.SearchStrategy[dict[str, Any]]:
    offset = st.floats(-degrees, degrees)
    return st.fixed_dictionaries(
        {
            "lat": offset.map(lambda d: HOME[0] + d),
            "lon": offset.map(lambda d: HOME[1] + d),
        }
    )


# Within 300 m of the home, around the 400 m limit, or anywhere.
LOCATIONS = _mostly(
    _around_home(0.002),
    _around_home(0.006)
    | st.fixed_dictionaries(
        {
            "lat": st.floats(-90, 90) | st.integers(-90, 90),
            "lon": st.floats(-180, 180) | st.integers(-180, 180),
        }
    ),
)
RADII = _mostly(st.integers(400, 5000), st.integers(1, 5000) | st.floats(1, 5000))
INCIDENT_IDS = _valid_text(1, 128)
DESCRIPTIONS = _valid_text(0, 500)
OPERATOR_NAMES = st.text(max_size=20) | _long_text((128, 129))
LEGAL_BASES = st.sampled_from(
    ["exigent_circumstances", "warrant", "owner_request"]
) | _valid_text(1, 64)


@st.composite
def _valid_requested(draw: st.DrawFn) -> dict[str, Any]:
    incident: dict[str, Any] = {
        "id": draw(INCIDENT_IDS),
        "type": draw(INCIDENT_TYPES),
        "location": draw(LOCATIONS),
    }
    if draw(st.booleans()):
        incident["description"] = draw(DESCRIPTIONS)
    if draw(st.booleans()):
        incident["radius_m"] = draw(RADII)
    operator = {"id": draw(INCIDENT_IDS)}
    if draw(st.booleans()):
        operator["name"] = draw(OPERATOR_NAMES)
    body: dict[str, Any] = {
        "type": "activation.requested",
        "activation_id": draw(ACTIVATION_IDS),
        "incident": incident,
        "operator": operator,
        "legal_basis": draw(LEGAL_BASES),
    }
    if draw(st.booleans()):
        body["requested_duration_s"] = draw(st.integers(30, 86400))
    return body


def _mutate(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or delete, for `...`) a dotted path, if its parent is still an object."""
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value


KINDS = st.sampled_from(["requested"] * 6 + ["ended", "ended", "junk"])
MUTATION_COUNTS = st.integers(0, 3)
ACTIONS = st.sampled_from(["delete", "junk", "boundary", "extra"])
EXTRA_KEYS = st.text(max_size=12) | st.sampled_from(["type", "id", "x"])
EXTRA_VALUES = JUNK | st.just(DEEP)
DEPTHS = st.integers(1, 30_000)
ENCODINGS = st.sampled_from(["utf-8"] * 17 + ["utf-8-sig", "utf-16", "latin-1"])
VALID_REQUESTED = _valid_requested()
PATH_CHOICES = {
    "requested": st.sampled_from(REQUESTED_PATHS),
    "ended": st.sampled_from(ENDED_PATHS),
}
CONTAINER_CHOICES = st.sampled_from(CONTAINERS)


@st.composite
def payload_bodies(draw: st.DrawFn) -> tuple[Any, bytes]:
    """A decoded value and its body: a valid message with 0 to 3 mutations, or junk.

    (Strategies are built once, at import: building them per draw costs more
    than the request itself.)
    """
    kind = draw(KINDS)
    obj: Any
    if kind == "junk":
        obj = draw(JUNK)
    else:
        if kind == "requested":
            obj = draw(VALID_REQUESTED)
        else:
            obj = ended(draw(ACTIVATION_IDS))
        for _ in range(draw(MUTATION_COUNTS)):
            action = draw(ACTIONS)
            path = draw(PATH_CHOICES[kind])
            if action == "delete":
                _mutate(obj, path, ...)
            elif action == "boundary" and path in BOUNDARIES:
                _mutate(obj, path, draw(BOUNDARIES[path]))
            elif action == "extra":
                container = draw(CONTAINER_CHOICES)
                key = draw(EXTRA_KEYS)
                _mutate(obj, f"{container}.{key}".lstrip("."), draw(EXTRA_VALUES))
            else:
                _mutate(obj, path, draw(JUNK))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    text = text.replace(f'"{DIGITS}"', "9" * 5000)
    if DEEP in text:
        # Deep nesting in an ignored field: json.dumps itself would overflow.
        depth = draw(DEPTHS)
        text = text.replace(f'"{DEEP}"', "[" * depth + "]" * depth, 1)
    encoding = draw(ENCODINGS)
    try:
        body = text.encode(encoding)
    except UnicodeEncodeError:
        body = text.encode()
    return obj, body


# Fixtures and helpers -----------------------------------------------------


@pytest.fixture
async def client(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> TestClient:
    """A real HTTP client, consent on, and the integration's loggers at DEBUG."""
    # Everything else at WARNING: Home Assistant's own request logging is
    # outside the integration and only slows the fuzzers down.
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger=OUR_LOGGER)
    # asyncio's debug mode (on in every Home Assistant test) records a stack
    # trace for every callback; for thousands of requests that is most of the
    # time spent. The other tests keep it on.
    asyncio.get_running_loop().set_debug(False)
    await turn_on_consent(hass)
    return await hass_client_no_auth()


@pytest.fixture
def model() -> Model:
    """The oracle's state; one per test, shared by all its examples."""
    return Model()


def _check_logs(caplog: pytest.LogCaptureFixture, model: Model) -> None:
    """Nothing from the integration at ERROR or with a traceback."""
    records = caplog.records
    for record in records[model.log_index :]:
        if record.name == OUR_LOGGER or record.name.startswith(f"{OUR_LOGGER}."):
            assert record.levelno < logging.ERROR, record.getMessage()
            assert record.exc_info is None, record.getMessage()
    model.log_index = len(records)


def _check_json(status: int, content_type: str | None, raw: bytes) -> dict[str, Any]:
    assert status < 500, raw[:300]
    assert content_type == "application/json", (status, content_type, raw[:300])
    answer = json.loads(raw)
    assert isinstance(answer, dict)
    # Answers are short: nothing of the request is echoed back unbounded.
    assert len(raw) < 1024, raw[:300]
    return answer


def _label(status: int, answer: dict[str, Any]) -> Outcome:
    return status, str(answer.get("error", answer.get("status")))


async def _post(
    client: TestClient, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    raw = await response.read()
    return response.status, _check_json(
        response.status, response.headers.get("Content-Type"), raw
    )


async def _check_grant(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    model: Model,
    data: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    """A grant looks like the contract's, is audited, and is ended at once."""
    activation_id = data["activation_id"]
    assert answer["activation_id"] == activation_id
    assert STREAM_URL_RE.fullmatch(answer["stream_url"]), answer
    assert ISO_RE.fullmatch(answer["started_at"])
    assert RECEIPT_RE.fullmatch(answer["receipt"])
    duration = datetime.fromisoformat(answer["expires_at"]) - datetime.fromisoformat(
        answer["started_at"]
    )
    requested_s = data.get("requested_duration_s", MAX_DURATION_S)
    assert duration.total_seconds() == min(int(requested_s), MAX_DURATION_S)
    audit = integration.runtime_data.audit
    # The receipt is the grant's record (the once-a-minute summary of
    # unauthenticated requests may have been written after it).
    (record,) = [
        r
        for r in await audit.async_tail(3)
        if f"sha256:{r['hash']}" == answer["receipt"]
    ]
    assert record["event"] == "activation_granted"
    assert record["activation_id"] == activation_id
    model.history.add(activation_id)
    model.grants_in_window += 1
    msg_id = model.fresh_id()
    model.accept(msg_id)
    body, headers = city.sign(ended(activation_id), msg_id=msg_id)
    assert await _post(client, body, headers) == (
        200,
        {"status": "ended", "activation_id": activation_id},
    )
    assert {
        (r["event"], r.get("reason"))
        for r in await audit.async_tail(3)
        if r.get("activation_id") == activation_id
    } >= {("share_ended", "ended_by_city")}
    await hass.async_block_till_done()


def _reset_daily_limit(integration: MockConfigEntry, model: Model) -> None:
    """Forget past shares (as 24 h passing would) once the limit was seen."""
    integration.runtime_data.session.history._items.clear()
    model.history.clear()
    model.grants_in_window = 0
    model.rate_limited_since_reset = 0


# (a) Correctly signed, mutated payloads --------------------------------------

ROLLS = st.integers(0, 19)  # mostly a fresh message
STALE, REPLAY = 18, 19
STALE_OFFSETS = st.integers(-(10**9), -TIMESTAMP_TOLERANCE_S - 5) | st.integers(
    TIMESTAMP_TOLERANCE_S + 5, 10**9
)
FRESH_OFFSETS = st.integers(-290, 290)


@pytest.mark.slow
@pytest.mark.timeout(300)
@settings(max_examples=PAYLOAD_EXAMPLES, **FUZZ_SETTINGS)
@given(data=st.data())
async def test_fuzz_signed_payloads(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    model: Model,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    """Signed with the configured secret: every answer is the contract's."""
    session = integration.runtime_data.session
    if (live := session.live) is not None:  # left by an example that failed
        model.history.add(live.request.activation_id)
        model.grants_in_window += 1
        await session.async_end(EndReason.STOPPED_BY_RESIDENT)
    obj, body = data.draw(payload_bodies(), label="payload")
    now = int(dt_util.utcnow().timestamp())
    roll = data.draw(ROLLS, label="roll")
    if roll == STALE:
        offset = data.draw(STALE_OFFSETS, label="stale offset")
    else:
        offset = data.draw(FRESH_OFFSETS, label="offset")
    replay = roll == REPLAY and bool(model.accepted)
    if replay:
        index = data.draw(st.integers(0, len(model.accepted) - 1), label="replayed")
        msg_id = model.accepted[index]
    else:
        msg_id = model.fresh_id()
    headers = city.headers(body, msg_id=msg_id, timestamp=now + offset)

    decoded_ok, decoded = _decode(body)
    expected: set[Outcome]
    accepted = False
    if len(body) > MAX_BODY_BYTES:
        expected = {(413, "payload_too_large")}
    elif roll == STALE:
        expected = {(401, "stale_timestamp")}
    elif msg_id in model.accepted_set:
        expected = {(409, "duplicate_message")}
    elif len(model.accepted) >= SEEN_IDS_MAX:
        expected = {(403, "rate_limited")}
    else:
        accepted = True
        verdict = _field_verdict(decoded) if decoded_ok else Verdict.INVALID
        expected = set()
        if verdict is not Verdict.VALID:
            expected.add((400, "invalid_payload"))
        if verdict is not Verdict.INVALID:
            expected |= _policy_outcomes(decoded, model)
    if accepted:
        # Before sending: a failed example must not desynchronize the model.
        model.accept(msg_id)

    status, answer = await _post(client, body, headers)
    outcome = _label(status, answer)
    event(f"{outcome[0]} {outcome[1]}")
    assert outcome in expected, (outcome, answer, expected, obj)
    if outcome == (400, "invalid_payload"):
        assert isinstance(answer["detail"], str)
    if outcome == GRANT:
        await _check_grant(hass, client, integration, city, model, decoded, answer)
    if outcome == (403, "rate_limited"):
        model.rate_limited_since_reset += 1
        if model.rate_limited_since_reset >= 2:
            _reset_daily_limit(integration, model)
    assert session.live is None
    # No accepted id leaves the window during the test: each is kept at least
    # 300 s after it was accepted, longer than the test may run (its timeout).
    seen = len(integration.runtime_data.seen_ids)
    assert seen == len(model.accepted) <= SEEN_IDS_MAX
    _check_logs(caplog, model)


# (b) Hostile headers and raw bodies -----------------------------------------


def _sign(
    msg_id: bytes, timestamp: bytes, body: bytes, key: bytes = SECRET_BYTES
) -> bytes:
    digest = hmac.new(key, msg_id + b"." + timestamp + b"." + body, hashlib.sha256)
    return base64.b64encode(digest.digest())


def _header_bytes(value: str) -> bytes:
    """No CR/LF (that would be another header), at most 20 000 bytes."""
    return value.encode().replace(b"\r", b"").replace(b"\n", b"")[:20_000]


HEADER_TEXT = st.one_of(
    st.text(max_size=40),  # non-ASCII, control characters
    st.text(alphabet=" ,\t", max_size=6),
    st.text(alphabet=st.characters(codec="ascii"), max_size=200),
    st.builds(_repeat, st.text(min_size=1, max_size=3), st.integers(0, 20_000)),
    st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True),
).map(_header_bytes)
RAW_HEADER = st.binary(max_size=64).map(
    lambda value: value.replace(b"\r", b"").replace(b"\n", b"")
)


# A timestamp is drawn relative to "now" and formatted when sent, so the
# strategy does not depend on the clock (Hypothesis replays must draw alike).
TIMESTAMPS = (
    st.one_of(
        st.integers(-(10**7), 10**7).map(lambda k: "{%d}" % k),  # noqa: UP031
        st.integers(-(10**15), 10**15).map(str),
        st.sampled_from(
            [
                "{0}.5",
                "+{0}",
                " {0}",
                "{0} ",
                "{0}_0",
                "0{0}",
                "{-400}",
                "{400}",
                "1e9",
                "١٢٣",
                "9" * 50,
                "",
                "-5",
            ]
        ),
    ).map(str.encode)
    | RAW_HEADER
)


PLAUSIBLE_TIMESTAMPS = st.integers(-280, 280).map(lambda k: b"{%d}" % k)


def _timestamp(template: bytes, now: int) -> bytes:
    """Fill in `{k}` as now + k."""
    return re.sub(
        rb"\{(-?\d+)\}", lambda m: str(now + int(m.group(1))).encode(), template
    )


CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF8",
            "Application/JSON",
            'application/json; charset="utf-8"',
            "application/json; charset=latin-1",
            "application/json; charset=utf-16",
            "application/jsonx",
            "application/json-patch+json",
            "text/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "",
            "*/*",
            "application/json;;;",
            "application/json; a=b; charset=utf-8",
        ]
    ),
    st.text(max_size=30).map(lambda t: t.replace("\r", "").replace("\n", "")),
)


def _content_type_verdict(content_type: str | None) -> Verdict:
    """`application/json`, UTF-8 or no charset: VALID; other types: INVALID."""
    if content_type is None:
        return Verdict.INVALID
    mime, _, params = content_type.partition(";")
    if mime.strip(" \t").lower() != "application/json":
        return Verdict.INVALID
    params = params.strip(" \t").lower()
    if not params or params in ("charset=utf-8", "charset=utf8"):
        return Verdict.VALID
    if "charset=latin-1" in params or "charset=utf-16" in params:
        return Verdict.INVALID
    return Verdict.EITHER


HOSTILE_BODIES = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(str.encode),
    st.text(max_size=100).map(lambda t: t.encode("utf-16")),
    st.just(json.dumps(requested()).encode()),
    st.integers(1, 32_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 10_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 40_000).map(lambda n: b"[" * n),
    st.integers(MAX_BODY_BYTES - 2, MAX_BODY_BYTES + 4_000).map(lambda n: b" " * n),
)
SIGNATURE_MODES = st.sampled_from(
    ["text", "raw", "other_body", "other_id", "other_ts", "v1a", "key"]
)
HEADER_VALUES = {
    "webhook-id": _mostly(st.just(b"msg_1"), HEADER_TEXT | RAW_HEADER),
    "webhook-timestamp": _mostly(PLAUSIBLE_TIMESTAMPS, TIMESTAMPS),
    "webhook-signature": HEADER_TEXT | RAW_HEADER,
}
SPELLINGS = {
    name: st.sampled_from([name, name.upper(), name.title()]) for name in HEADER_VALUES
}
ONE_IN_TEN = st.integers(0, 9)
ONE_IN_TWENTY = st.integers(0, 19)
DECORATIONS = st.lists(HEADER_TEXT | st.just(b"v2,abc"), max_size=3)
REQUEST_CONTENT_TYPES = _mostly(st.just("application/json"), CONTENT_TYPES)


@st.composite
def hostile_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Headers that never carry a valid signature for the body, and raw bodies."""
    body = draw(HOSTILE_BODIES, label="body")
    mode = draw(SIGNATURE_MODES, label="signature mode")
    other_body = draw(st.binary(max_size=64), label="other body")
    if other_body == body:
        other_body += b"!"
    headers: list[tuple[str, bytes | None]] = []
    for name, values in HEADER_VALUES.items():
        if draw(ONE_IN_TWENTY, label=f"omit {name}") == 0:
            continue
        # A computed signature is filled in when sent (it needs the clock).
        computed = name == "webhook-signature" and mode not in ("text", "raw")
        spelled = draw(SPELLINGS[name])
        headers.append((spelled, None if computed else draw(values)))
        if draw(ONE_IN_TEN, label="duplicate") == 0:
            headers.append((spelled, draw(HEADER_TEXT)))
    return {
        "body": body,
        "mode": mode,
        "other_body": other_body,
        "decorate": draw(DECORATIONS),
        "headers": draw(st.permutations(headers)),
        "content_type": draw(REQUEST_CONTENT_TYPES, label="content type"),
        "chunked": draw(st.booleans(), label="chunked"),
        "raw": draw(st.booleans(), label="raw socket"),
    }


def _materialize(request: dict[str, Any], now: int) -> list[tuple[str, bytes]]:
    """Fill in timestamps and signatures: never a valid one for the body."""
    values: dict[str, bytes] = {}
    headers: list[tuple[str, bytes]] = []
    for name, value in request["headers"]:
        if value is not None and name.lower() == "webhook-timestamp":
            value = _timestamp(value, now)
        headers.append((name, value))
        if value is not None:
            values[name.lower()] = value
    msg_id = values.get("webhook-id", b"msg_1")
    timestamp = values.get("webhook-timestamp", str(now).encode())
    body, mode = request["body"], request["mode"]
    signature = {
        "other_body": b"v1," + _sign(msg_id, timestamp, request["other_body"]),
        "other_id": b"v1," + _sign(msg_id + b"x", timestamp, body),
        "other_ts": b"v1," + _sign(msg_id, timestamp + b"0", body),
        # The right HMAC under another version label is not a `v1` signature.
        "v1a": b"v1a," + _sign(msg_id, timestamp, body),
        "key": b"v1," + _sign(msg_id, timestamp, body, b"another key" * 3),
    }.get(mode)
    if signature is not None and request["decorate"]:
        # Unknown versions and junk around it (the list is space separated).
        signature = b" ".join([*request["decorate"], signature])
    return [
        (name, signature if value is None else value)
        for name, value in headers
        if value is not None or signature is not None
    ]


def _expected_auth_error(headers: list[tuple[str, bytes]], now: float) -> set[str]:
    """The 401 code for headers that do not sign the body."""
    values: dict[str, str] = {}
    for name, value in headers:
        # Optional whitespace around a value is not part of it (RFC 9110 5.5).
        values[name.lower()] = value.strip(b" \t").decode("utf-8", "surrogateescape")
    msg_id, timestamp, signature = (
        values.get(f"webhook-{name}", "") for name in ("id", "timestamp", "signature")
    )
    if not (msg_id and timestamp and signature):
        return {"missing_signature_headers"}
    if not (
        (msg_id + timestamp + signature).isascii()
        and ID_RE.fullmatch(msg_id)
        and TIMESTAMP_RE.fullmatch(timestamp)
    ):
        return {"invalid_signature"}
    skew = abs(now - int(timestamp))
    if skew > TIMESTAMP_TOLERANCE_S + 2:
        return {"stale_timestamp"}
    if skew >= TIMESTAMP_TOLERANCE_S - 2:
        return {"stale_timestamp", "invalid_signature"}
    return {"invalid_signature"}


async def _send_raw(
    client: TestClient, request: dict[str, Any], *, body: bool = True
) -> tuple[int, str | None, bytes]:
    """Send bytes exactly as drawn (non-UTF-8 header values included)."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [
        f"POST {WEBHOOK_URL} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Connection: close",
    ]
    head += [name.encode() + b": " + value for name, value in request["headers"]]
    if request["content_type"] is not None:
        head.append(b"Content-Type: " + request["content_type"].encode())
    head.append(b"Content-Length: %d" % len(request["body"]))
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + (request["body"] if body else b""))
    # The server may answer (413, 400) and close before reading it all.
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    response = await reader.read()
    writer.close()
    header_block, _, raw = response.partition(b"\r\n\r\n")
    lines = header_block.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(b": ", 1) for line in lines[1:] if b": " in line)
    content_type = fields.get(b"Content-Type")
    return status, content_type.decode() if content_type else None, raw


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 8_192):
        yield body[start : start + 8_192]


async def _send_client(
    client: TestClient, request: dict[str, Any]
) -> tuple[int, str | None, bytes]:
    headers = [(name, value.decode("utf-8")) for name, value in request["headers"]]
    skip: list[str] = []
    if request["content_type"] is None:
        skip.append("Content-Type")
    else:
        headers.append(("Content-Type", request["content_type"]))
    data: Any = _chunks(request["body"]) if request["chunked"] else request["body"]
    response = await client.post(
        WEBHOOK_URL, data=data, headers=headers, skip_auto_headers=skip
    )
    return (
        response.status,
        response.headers.get("Content-Type"),
        await response.read(),
    )


def _client_can_send(request: dict[str, Any]) -> bool:
    """Return whether aiohttp's client can send the headers as they are."""
    for _, value in request["headers"]:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if FORBIDDEN_HEADER_BYTES.search(value) or text != text.strip(" \t"):
            return False  # the client would refuse to send, or trim, them
    content_type = request["content_type"]
    return content_type is None or not FORBIDDEN_HEADER_BYTES.search(
        content_type.encode()
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@settings(max_examples=HEADER_EXAMPLES, **FUZZ_SETTINGS)
@given(data=st.data())
async def test_fuzz_hostile_headers(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    model: Model,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    """Unauthenticated requests never get further than 413/415/401."""
    request = data.draw(hostile_requests(), label="request")
    now = int(dt_util.utcnow().timestamp())
    request["headers"] = _materialize(request, now)
    content_type = request["content_type"]
    values = [value for _, value in request["headers"]]
    if content_type is not None:
        values.append(content_type.encode())
    malformed = any(
        FORBIDDEN_HEADER_BYTES.search(value) or len(value) > MAX_HEADER_VALUE_BYTES
        for value in values
    )
    if malformed:
        # aiohttp's parser refuses the head before it reads the body; a body
        # still being sent then would reset the connection and lose the answer.
        status, response_type, raw = await _send_raw(client, request, body=False)
    elif request["raw"] or not _client_can_send(request):
        status, response_type, raw = await _send_raw(client, request)
    else:
        status, response_type, raw = await _send_client(client, request)
    body = request["body"]
    session = integration.runtime_data.session
    if malformed:
        # aiohttp's parser refuses the request; nothing reaches Home Assistant.
        assert status == 400, (status, raw[:200])
        assert response_type is not None
        assert response_type.startswith("text/plain"), (response_type, raw[:200])
        event("400 from aiohttp's HTTP parser")
    else:
        answer = _check_json(status, response_type, raw)
        outcome = _label(status, answer)
        event(f"{outcome[0]} {outcome[1]}")
        verdict = _content_type_verdict(content_type)
        if len(body) > MAX_BODY_BYTES:
            expected = {(413, "payload_too_large")}
        else:
            expected = {
                (401, code) for code in _expected_auth_error(request["headers"], now)
            }
            if verdict is Verdict.INVALID:
                expected = {(415, "unsupported_media_type")}
            elif verdict is Verdict.EITHER:
                expected.add((415, "unsupported_media_type"))
        assert outcome in expected, (
            outcome,
            expected,
            request["headers"],
            content_type,
        )
        if status == 401:
            model.rejected += 1
    assert session.live is None
    assert len(integration.runtime_data.seen_ids) == 0
    assert integration.runtime_data.rejections.unauthenticated == model.rejected
    _check_logs(caplog, model)


# Bugs the fuzzers found ------------------------------------------------------


@pytest.fixture
async def signed_post(client: TestClient, city: City) -> Callable[[Any], Any]:
    """Post a payload signed with the configured secret."""

    async def _post_payload(payload: Any) -> tuple[int, dict[str, Any]]:
        body, headers = city.sign(payload)
        response = await client.post(WEBHOOK_URL, data=body, headers=headers)
        return response.status, await response.json()

    return _post_payload


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(OUR_LOGGER) and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("kind", [["activation.requested"], {"a": 1}])
async def test_type_that_is_not_hashable(
    signed_post: Callable[[Any], Any], caplog: pytest.LogCaptureFixture, kind: Any
) -> None:
    """`type` must be one of two strings; anything else is a 400."""
    status, answer = await signed_post(requested(type=kind))
    assert (status, answer.get("error")) == (400, "invalid_payload")
    assert not _errors(caplog)


@pytest.mark.parametrize("path", ["lat", "lon", "radius_m"])
async def test_number_too_big_for_a_float(
    signed_post: Callable[[Any], Any], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """An out-of-range number is a 400, however many digits it has."""
    payload = requested()
    if path == "radius_m":
        payload["incident"]["radius_m"] = 10**400
    else:
        payload["incident"]["location"][path] = -(10**400)
    status, answer = await signed_post(payload)
    assert (status, answer.get("error")) == (400, "invalid_payload")
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "payload",
    [
        # Consent is on and the policy allows it: the grant cannot be audited.
        requested(legal_basis="warrant\ud800"),
        {
            "type": "activation.ended",
            "activation_id": "NEVER-SEEN",
            "operator": {"id": "op-\udfff"},
        },
    ],
    ids=["requested", "ended"],
)
async def test_lone_surrogate_in_a_string(
    hass: HomeAssistant,
    signed_post: Callable[[Any], Any],
    caplog: pytest.LogCaptureFixture,
    integration: MockConfigEntry,
    payload: dict[str, Any],
) -> None:
    """Text that cannot be stored as UTF-8 is refused as invalid, not a crash."""
    status, answer = await signed_post(payload)
    assert status < 500, answer
    assert not _errors(caplog)
    assert (await integration.runtime_data.audit.async_verify()).valid


@pytest.mark.parametrize("field_name", ["activation_id", "incident.type"])
async def test_trailing_newline_is_not_an_id_character(
    signed_post: Callable[[Any], Any], field_name: str
) -> None:
    """`[A-Za-z0-9._:-]` and snake_case have no room for a newline."""
    payload = requested("A-1\n")
    if field_name == "incident.type":
        payload = requested()
        payload["incident"]["type"] = "shots_fired\n"
    status, answer = await signed_post(payload)
    assert (status, answer.get("error")) == (400, "invalid_payload")
