"""The figures and names the docs state are the code's, and the benchmarks'.

Plain file checks, no Home Assistant instance. A default, a range or a limit
written in a doc comes from the code's constants; a measured figure from
bench/README.md's dated lines; a module or constant a doc names exists. Each
table below says where a figure is written and where it comes from, so a doc
and the code cannot drift apart unnoticed.
"""

from functools import cache
import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from custom_components.rtcc_share import audit_file, dry_run, history, rejections
from custom_components.rtcc_share.config_flow import AGENCY_NAME_MAX_LEN
from custom_components.rtcc_share.const import (
    CONF_CONSENT_LAPSE_DAYS,
    CONF_MAX_DURATION_S,
    CONF_REQUIRE_RECIPIENT,
    DEFAULT_ALLOWED_INCIDENT_TYPES,
    DEFAULT_OPTIONS,
    INCIDENT_TYPE_MAX_LEN,
    MAX_BODY_BYTES,
    MAX_INCIDENT_RADIUS_M,
    MAX_REQUESTED_DURATION_S,
    MIN_REQUESTED_DURATION_S,
    OPTION_RANGES,
    PUBLIC_KEY_PREFIX,
    REFUSALS_IN_FULL_PER_INTERVAL,
    REJECTION_LOG_INTERVAL_S,
    SECRET_GENERATED_BYTES,
    SECRET_MAX_BYTES,
    SECRET_MIN_BYTES,
    SEEN_IDS_MAX,
    TIMESTAMP_TOLERANCE_S,
)
from custom_components.rtcc_share.live import ice, viewers, webrtc_sdp, webrtc_view
from custom_components.rtcc_share.live.hls_stream import PART_TARGET_S
from custom_components.rtcc_share.models import EndReason
from custom_components.rtcc_share.session import TEARDOWN_WAIT_S
from custom_components.rtcc_share.webhook import OPERATOR_NAME_MAX_LEN

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "custom_components" / "rtcc_share"
# Where the docs are read from, and where the code that can define a name is.
DOCS = (
    "README.md",
    "DEVELOPERS.md",
    "bench/README.md",
    *(str(path.relative_to(ROOT)) for path in sorted((ROOT / "docs").glob("*.md"))),
)
CODE = ("custom_components", "bench", "tools", "config")

CITY_API = "docs/city-api.md"
PRIVACY = "docs/privacy.md"
CAMERAS = "docs/cameras.md"
TROUBLESHOOTING = "docs/troubleshooting.md"
OPENAPI = "docs/openapi.yaml"
BENCH = "bench/README.md"

WORDS = {"a": 1, "once": 1, "one": 1, "four": 4}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the conftest fixture: these tests need no Home Assistant."""


@cache
def text(path: str) -> str:
    """Return a doc with every run of whitespace as one space (lines wrap anywhere)."""
    return re.sub(r"\s+", " ", (ROOT / path).read_text("utf-8"))


def figure(found: str) -> float:
    """Return the number a doc wrote: `10,000`, `0.55` or `four`."""
    return WORDS.get(found) or float(found.replace(",", ""))


# --- Options: README's and privacy.md's tables against const.py -------------


def table(path: str) -> list[list[str]]:
    """Return the cells of the table whose header starts with `| option |`."""
    lines = (ROOT / path).read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| option |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        # `\|` is a | inside a cell.
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def label(name: str) -> str:
    """Return an option's label without a trailing parenthesis: `Share audio`."""
    return re.sub(r"\s*\([^)]*\)$", "", name).strip()


@cache
def readme_options() -> dict[str, list[str]]:
    """Return README's option rows by option key, through the options form's labels."""
    english = json.loads((PACKAGE / "translations" / "en.json").read_text("utf-8"))
    keys = {
        label(name): key
        for key, name in english["options"]["step"]["init"]["data"].items()
    }
    return {keys[label(row[0])]: row for row in table("README.md")}


@cache
def privacy_options() -> dict[str, list[str]]:
    """Return privacy.md's option rows by the key each names: (`max_distance_m`)."""
    return {
        re.search(r"\(`(\w+)`\)", row[0])[1]: row  # type: ignore[index]
        for row in table(PRIVACY)
    }


def documented_default(cell: str) -> Any:
    """Return the default a cell states: a number, on/off, none, codes or a kind."""
    if number := re.match(r"\d+", cell):
        return int(number[0])
    if codes := re.findall(r"`([a-z_]+)`", cell):
        return codes
    first = cell.split(maxsplit=1)[0].strip(";,").lower()
    return {"off": False, "on": True, "none": "none", "hls": ["hls"]}[first]


def default(option: str) -> int:
    """Return a numeric option's default."""
    value = DEFAULT_OPTIONS[option]
    assert isinstance(value, int)
    return value


def code_default(option: str) -> Any:
    """Return const.py's default as a doc states it (an empty value is `none`)."""
    value = DEFAULT_OPTIONS[option]
    if value in ([], ""):
        return "none"
    return list(value) if isinstance(value, list | tuple) else value


OPTION_TABLES = {"README.md": readme_options, PRIVACY: privacy_options}


@pytest.mark.parametrize("path", OPTION_TABLES)
def test_every_option_is_in_the_table(path: str) -> None:
    """Each option of const.py has a row, and each row is an option."""
    assert set(OPTION_TABLES[path]()) == set(DEFAULT_OPTIONS)


@pytest.mark.parametrize("path", OPTION_TABLES)
@pytest.mark.parametrize("option", sorted(DEFAULT_OPTIONS))
def test_option_default_and_range_are_the_codes(path: str, option: str) -> None:
    """Default and range cells say what DEFAULT_OPTIONS and OPTION_RANGES hold."""
    row = OPTION_TABLES[path]().get(option)
    if row is None:
        pytest.skip("no row (test_every_option_is_in_the_table fails)")
    default, allowed = row[1], row[2]
    if option == CONF_REQUIRE_RECIPIENT:
        # Read as off (entries made before it); the flow turns it on for whpk_.
        assert DEFAULT_OPTIONS[option] is False
        assert f"`{PUBLIC_KEY_PREFIX}`" in default
        assert "off" in default
    else:
        assert documented_default(default) == code_default(option)
    if option in OPTION_RANGES:
        low, high = (int(n) for n in re.findall(r"\d+", allowed)[:2])
        assert (low, high) == OPTION_RANGES[option]


def test_default_incident_types_are_the_codes() -> None:
    """The codes both tables list are the default accepted types, in order."""
    assert code_default("allowed_incident_types") == list(
        DEFAULT_ALLOWED_INCIDENT_TYPES
    )


# --- Limits the docs state: (doc, phrase with the figure, the code's value) --

LIMITS: list[tuple[str, str, float]] = [
    (
        "README.md",
        r"(\d+) minutes by default, at most",
        default(CONF_MAX_DURATION_S) / 60,
    ),
    (
        "README.md",
        r"by default, at most (\w+) hour",
        OPTION_RANGES[CONF_MAX_DURATION_S][1] / 3600,
    ),
    (
        "README.md",
        r"consent lapses by itself after (\d+) days",
        default(CONF_CONSENT_LAPSE_DAYS),
    ),
    ("README.md", r"a (\w+)-minute test share", dry_run.TEST_SHARE_DURATION_S / 60),
    (
        "README.md",
        r"It ends by itself after (\w+) minute",
        dry_run.TEST_SHARE_DURATION_S / 60,
    ),
    ("README.md", r"written at most (\w+) a second", rejections.UPDATE_DELAY_S),
    ("README.md", r"the first (\d+) a minute", REFUSALS_IN_FULL_PER_INTERVAL),
    ("README.md", r"up to (\d+) at once", webrtc_view.MAX_SESSIONS),
    (CITY_API, r"at most ([\d,]+) bytes", MAX_BODY_BYTES),
    (CITY_API, r"body over ([\d,]+) bytes", MAX_BODY_BYTES),
    (CITY_API, r"at most (\d+) KiB", MAX_BODY_BYTES / 1024),
    (CITY_API, r"within \*\*±(\d+) seconds\*\*", TIMESTAMP_TOLERANCE_S),
    (CITY_API, r"more than (\d+) s from the home's clock", TIMESTAMP_TOLERANCE_S),
    (CITY_API, r"for the (\d+) s of the timestamp window", TIMESTAMP_TOLERANCE_S),
    (CITY_API, r"([\d,]+) message ids are live at once", SEEN_IDS_MAX),
    (CITY_API, r"base64 of (\d+)–\d+ random bytes", SECRET_MIN_BYTES),
    (CITY_API, r"base64 of \d+–(\d+) random bytes", SECRET_MAX_BYTES),
    (CITY_API, r"the home generates (\d+)", SECRET_GENERATED_BYTES),
    (
        CITY_API,
        r"snake_case code \(`[^`]+`\), 1–(\d+) characters",
        INCIDENT_TYPE_MAX_LEN,
    ),
    (CITY_API, r"only the first (\d+) characters are kept", OPERATOR_NAME_MAX_LEN),
    (CITY_API, r"number in \[1, (\d+)\]", MAX_INCIDENT_RADIUS_M),
    (CITY_API, r"not `600\.0`\) in \[(\d+), \d+\]", MIN_REQUESTED_DURATION_S),
    (CITY_API, r"not `600\.0`\) in \[\d+, (\d+)\]", MAX_REQUESTED_DURATION_S),
    (
        CITY_API,
        r"at least (\d+) s left of the daily shared minutes",
        MIN_REQUESTED_DURATION_S,
    ),
    (CITY_API, r"remembered for (\d+) days", history.KEEP.days),
    (CITY_API, r"granted more than (\d+) days ago", history.KEEP.days),
    (CITY_API, r"\(the (\d+) most recent\)", history.MAX_ITEMS),
    (CITY_API, r"parts of ([\d.]+) s", PART_TARGET_S),
    (CITY_API, r"at most (\d+) m-sections", webrtc_sdp.MAX_MEDIA),
    (CITY_API, r"at most (\d+) per session", webrtc_sdp.MAX_CITY_CANDIDATES),
    (CITY_API, r"none for ([\d.]+) s", webrtc_view.CANDIDATE_QUIET_S),
    (
        CITY_API,
        r"at the latest (\d+) s after the camera's answer",
        webrtc_view.CANDIDATE_WAIT_S,
    ),
    (CITY_API, r"At most (\d+) sessions at once", webrtc_view.MAX_SESSIONS),
    (CITY_API, r"a (\d+)th `POST` gets `409`", webrtc_view.MAX_SESSIONS + 1),
    (CITY_API, r"no answer within (\d+) s", webrtc_view.ANSWER_TIMEOUT_S),
    (CITY_API, r"the first (\d+) one by one", viewers.VIEWERS_KEPT),
    (CITY_API, r"not wait longer than about (a) second", TEARDOWN_WAIT_S),
    (CITY_API, r"up to (\d+) of each reason a minute", REFUSALS_IN_FULL_PER_INTERVAL),
    (OPENAPI, r"([\d.]+) s parts", PART_TARGET_S),
    (OPENAPI, r"at most (\d+) m-sections", webrtc_sdp.MAX_MEDIA),
    (OPENAPI, r"at most (\d+) per session", webrtc_sdp.MAX_CITY_CANDIDATES),
    (OPENAPI, r"none for ([\d.]+) s", webrtc_view.CANDIDATE_QUIET_S),
    (
        OPENAPI,
        r"the latest (\d+) s after the camera's answer",
        webrtc_view.CANDIDATE_WAIT_S,
    ),
    (OPENAPI, r"At most (\d+) sessions at once", webrtc_view.MAX_SESSIONS),
    (OPENAPI, r"did not answer within (\d+) s", webrtc_view.ANSWER_TIMEOUT_S),
    (OPENAPI, r"maxLength: (\d{5,})", MAX_BODY_BYTES),
    (PRIVACY, r"up to ([\d,]+) records", audit_file.PENDING_MAX),
    (PRIVACY, r"beyond the ([\d,]+) that could wait", audit_file.PENDING_MAX),
    (PRIVACY, r"the first (\d+) addresses one by one", viewers.VIEWERS_KEPT),
    (PRIVACY, r"the first (\d+) one by one", viewers.VIEWERS_KEPT),
    (PRIVACY, r"counted up to ([\d,]+)", viewers.OTHER_VIEWERS_COUNTED),
    (PRIVACY, r"at least (\d+) characters", ice.TURN_SECRET_MIN_LEN),
    (PRIVACY, r"refused when under (\d+) s are left", MIN_REQUESTED_DURATION_S),
    (PRIVACY, r"the first (\d+) a minute", REFUSALS_IN_FULL_PER_INTERVAL),
    (PRIVACY, r"at most (\d+) at once per share", webrtc_view.MAX_SESSIONS),
    (PRIVACY, r"history \(ids and times, (\d+) days\)", history.KEEP.days),
    (PRIVACY, r"\((\d+) by default\)", default(CONF_CONSENT_LAPSE_DAYS)),
    (PRIVACY, r"\((\d+) minutes by default\)", default(CONF_MAX_DURATION_S) / 60),
    (PRIVACY, r"`expired` after (\w+) minute", dry_run.TEST_SHARE_DURATION_S / 60),
    (CAMERAS, r"at most (\d+) at once per share", webrtc_view.MAX_SESSIONS),
    (CAMERAS, r"at most (\w+) viewer sessions at once", webrtc_view.MAX_SESSIONS),
    (CAMERAS, r"none for ([\d.]+) s", webrtc_view.CANDIDATE_QUIET_S),
    (
        CAMERAS,
        r"at the latest (\d+) s after Ring's answer",
        webrtc_view.CANDIDATE_WAIT_S,
    ),
    (CAMERAS, r"after (\d+) s, `503 camera_unavailable`", webrtc_view.ANSWER_TIMEOUT_S),
    (TROUBLESHOOTING, r"within ±(\d+) seconds", TIMESTAMP_TOLERANCE_S),
    (TROUBLESHOOTING, r"more than ([\d,]+) message ids", SEEN_IDS_MAX),
    (TROUBLESHOOTING, r"less than (\d+) seconds are left", MIN_REQUESTED_DURATION_S),
    (TROUBLESHOOTING, r"over (\d+) KiB", MAX_BODY_BYTES / 1024),
    (
        TROUBLESHOOTING,
        r"(\w+) sessions of this share are open",
        webrtc_view.MAX_SESSIONS,
    ),
    (TROUBLESHOOTING, r"answer within (\d+) s", webrtc_view.ANSWER_TIMEOUT_S),
    (TROUBLESHOOTING, r"after the (\d+) s", webrtc_view.ANSWER_TIMEOUT_S),
    (TROUBLESHOOTING, r"agency's name \(1 to (\d+) characters\)", AGENCY_NAME_MAX_LEN),
    (
        TROUBLESHOOTING,
        r"up to (\d+) of each reason a minute",
        REFUSALS_IN_FULL_PER_INTERVAL,
    ),
    (TROUBLESHOOTING, r"\((\d+) by default\)", default(CONF_CONSENT_LAPSE_DAYS)),
    ("DEVELOPERS.md", r"the (\d+) KiB body limit", MAX_BODY_BYTES / 1024),
    ("DEVELOPERS.md", r"\((\d+) kept, the rest summed\)", viewers.VIEWERS_KEPT),
    ("DEVELOPERS.md", r"the (\d+)-session limit", webrtc_view.MAX_SESSIONS),
    ("DEVELOPERS.md", r"an end waits at most (\d+) s", TEARDOWN_WAIT_S),
]


def test_a_minute_is_the_refusal_window() -> None:
    """The docs' "a minute" of refusals and failures is the code's interval."""
    assert REJECTION_LOG_INTERVAL_S == 60


@pytest.mark.parametrize(
    ("path", "pattern", "value"),
    LIMITS,
    ids=[f"{path}: {pattern}" for path, pattern, _ in LIMITS],
)
def test_limit_is_the_codes(path: str, pattern: str, value: float) -> None:
    """Every place a doc states this limit, it states the code's value."""
    found = re.findall(pattern, text(path))
    assert found, f"not in {path} any more: fix the doc or this table"
    assert {figure(number) for number in found} == {value}


# --- Measured figures: (doc, phrase with the figure, bench/README.md line) --
# The bench line is the last one that matches: the newest dated run.

BENCH_HLSJS_1S = (
    r"RTSP generic camera \(1 s keyframes, H\.264 \+ AAC\): time to first frame,"
    r" hls\.js in Chromium on stream_url, median of 3: ([\d.]+) s"
)
BENCH_HLSJS_2S = (
    r"RTSP generic camera \(2 s keyframes, H\.264 \+ AAC\): time to first frame,"
    r" hls\.js in Chromium on stream_url, median of 3: ([\d.]+) s"
)
BENCH_FIRST_PART = (
    r"RTSP generic camera \(1 s keyframes, H\.264 \+ AAC\): time to first frame,"
    r" direct LL-HLS first part \(_HLS_msn=0&_HLS_part=0\), median of 3: ([\d.]+) s"
)
BENCH_WHEP = (
    r"time to first frame over WebRTC \(granted webrtc_url, WHEP 201 -> decoded"
    r" frame, aiortc\), median of 3: ([\d.]+) s"
)

BENCH_INSTANT_1S = (
    r"instant start, 1 s keyframes: time to first frame after the 201,"
    r" hls\.js in Chromium on stream_url, median of 3: ([\d.]+) s"
)
BENCH_INSTANT_4S = (
    r"instant start, 4 s keyframes: time to first frame after the 201,"
    r" hls\.js in Chromium on stream_url, median of 3: ([\d.]+) s"
)

FIGURES: list[tuple[str, str, str]] = [
    (CITY_API, r"first picture ([\d.]+) s after\s+the 201", BENCH_INSTANT_1S),
    (CITY_API, r"every second, and ([\d.]+) s with one every 4 s", BENCH_INSTANT_4S),
    ("README.md", r"the first picture came ([\d.]+) s after the grant", BENCH_HLSJS_1S),
    ("README.md", r"every second, and ([\d.]+) s with one every 2 s", BENCH_HLSJS_2S),
    ("README.md", r"the first frame came ([\d.]+) s after the WHEP answer", BENCH_WHEP),
    (CITY_API, r"first picture after ([\d.]+) s from an RTSP camera", BENCH_HLSJS_1S),
    (CITY_API, r"every second, and ([\d.]+) s with one every 2 s", BENCH_HLSJS_2S),
    (CITY_API, r"decoded a frame after ([\d.]+) s", BENCH_FIRST_PART),
    (
        CITY_API,
        r"under ([\d.]+) s plus one keyframe interval",
        r"takes at most ([\d.]+) s plus the source's keyframe interval",
    ),
]


@pytest.mark.parametrize(
    ("path", "pattern", "bench"),
    FIGURES,
    ids=[f"{path}: {pattern}" for path, pattern, _ in FIGURES],
)
def test_measured_figure_is_the_benchmarks(path: str, pattern: str, bench: str) -> None:
    """A doc quotes the newest figure bench/README.md records for it."""
    found = re.findall(pattern, text(path))
    measured = re.findall(bench, text(BENCH))
    assert found, f"not in {path} any more: fix the doc or this table"
    assert measured, "not in bench/README.md any more"
    assert set(found) == {measured[-1]}


# --- Names the docs use ------------------------------------------------------


def test_every_module_is_in_the_module_map() -> None:
    """DEVELOPERS.md's module map lists every module, and only modules that exist."""
    developers = (ROOT / "DEVELOPERS.md").read_text("utf-8")
    start = developers.index("| file | owns |")
    rows = developers[start : developers.index("\n\n", start)].splitlines()[2:]
    listed = {
        name
        for row in rows
        for name in re.findall(r"`([\w/]+\.py)`", row.split("|")[1])
    }
    modules = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE
    }
    assert listed == modules


@cache
def code_words() -> set[str]:
    """Return every identifier-like word in the code, the tools and the scripts."""
    paths = [
        *(path for folder in CODE for path in (ROOT / folder).rglob("*.py")),
        *(ROOT / "scripts").iterdir(),
    ]
    return {
        word for path in paths for word in re.findall(r"\w+", path.read_text("utf-8"))
    }


@pytest.mark.parametrize("path", DOCS)
def test_constants_named_in_docs_exist(path: str) -> None:
    """A `CONSTANT_NAME` in a doc is one the code (or a script) defines or reads."""
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", text(path)))
    assert not named - code_words()


# --- Codes the docs explain ----------------------------------------------------


def test_troubleshooting_explains_every_error_code() -> None:
    """Each error the webhook or the WHEP endpoint can answer has its entry.

    The codes are the OpenAPI file's, which tests/test_openapi.py holds to
    the code.
    """
    spec = yaml.safe_load((ROOT / OPENAPI).read_text("utf-8"))
    schemas = spec["components"]["schemas"]
    codes = {
        *schemas["ErrorCode"]["enum"],
        *schemas["WhepError"]["properties"]["error"]["enum"],
    }
    explained = {
        code
        for code in codes
        if re.search(rf"`[^`]*\b{code}\b[^`]*`", text(TROUBLESHOOTING))
    }
    assert codes == explained


def test_city_api_names_every_end_reason() -> None:
    """The city learns every reason a share can end (a test share's is no share)."""
    reasons = {reason.value for reason in EndReason} - {EndReason.ACTIVATION_ARRIVED}
    assert {reason for reason in reasons if f"`{reason}`" in text(CITY_API)} == reasons
