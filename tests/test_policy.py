"""Tests for the pure sharing policy of rtcc_share."""

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import math
from pathlib import Path
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.rtcc_share.const import (
    CONF_ALLOWED_INCIDENT_TYPES,
    CONF_MAX_ACTIVATIONS_PER_DAY,
    CONF_MAX_DISTANCE_M,
    CONF_MAX_DURATION_S,
    CONF_MAX_SHARE_MINUTES_PER_DAY,
    DEFAULT_ALLOWED_INCIDENT_TYPES,
)
from custom_components.rtcc_share.models import (
    ActivationRequest,
    Decision,
    Incident,
    Location,
    Operator,
    PastShare,
    PolicyLimits,
    RefusalReason,
)
from custom_components.rtcc_share.policy import (
    EARTH_MEAN_RADIUS_M,
    decide,
    distance_m,
    limits_from_options,
)

PACKAGE_DIR = Path(__file__).parent.parent / "custom_components" / "rtcc_share"

NOW = datetime(2020, 11, 4, 21, 14, 3, tzinfo=UTC)
DAY = timedelta(hours=24)
HOME = Location(lat=32.29876, lon=-90.18481)
LIMITS = PolicyLimits(
    max_distance_m=400,
    max_duration_s=900,
    max_activations_per_day=3,
    max_share_minutes_per_day=60,
    allowed_incident_types=frozenset({"shots_fired", "robbery"}),
)


def north_of(point: Location, metres: float) -> Location:
    """Return the point `metres` due north of `point` on the mean sphere."""
    return Location(
        lat=point.lat + math.degrees(metres / EARTH_MEAN_RADIUS_M), lon=point.lon
    )


def make_request(
    *,
    incident_type: str = "shots_fired",
    location: Location = HOME,
    radius_m: float | None = None,
    requested_duration_s: int | None = 600,
) -> ActivationRequest:
    """Return an activation request for the test incident."""
    return ActivationRequest(
        activation_id="JPD-RTCC-2020-11-04-0017",
        incident=Incident(
            id="CAD-20-118233",
            type=incident_type,
            location=location,
            radius_m=radius_m,
        ),
        operator=Operator(id="op-17"),
        legal_basis="exigent_circumstances",
        requested_duration_s=requested_duration_s,
    )


def run(**overrides: Any) -> Decision:
    """Return the decision on a grantable request, with some inputs overridden."""
    kwargs: dict[str, Any] = {
        "consent_on": True,
        "consent_lapses_at": None,
        "limits": LIMITS,
        "home": HOME,
        "request": make_request(),
        "now": NOW,
        "history": (),
    }
    return decide(**(kwargs | overrides))


def share(started: timedelta, ended: timedelta | None) -> PastShare:
    """Return a past share with times given relative to NOW."""
    return PastShare(
        started=NOW + started, ended=None if ended is None else NOW + ended
    )


def limits(**changes: Any) -> PolicyLimits:
    """Return LIMITS with some fields changed."""
    return replace(LIMITS, **changes)


# Distance


@pytest.mark.parametrize("metres", [0.5, 1, 400, 5000, 100_000, 1_000_000])
def test_distance_north(metres: float) -> None:
    """A point moved north by d metres is d metres away."""
    assert distance_m(HOME, north_of(HOME, metres)) == pytest.approx(metres, rel=1e-6)


def test_distance_same_point() -> None:
    """A point is at distance zero from itself."""
    assert distance_m(HOME, HOME) == 0


def test_distance_across_antimeridian() -> None:
    """Points either side of the antimeridian are close, not half a world apart."""
    one_degree = EARTH_MEAN_RADIUS_M * math.radians(1)
    west = Location(lat=0, lon=179.5)
    east = Location(lat=0, lon=-179.5)
    assert distance_m(west, east) == pytest.approx(one_degree, rel=1e-9)
    assert distance_m(east, west) == pytest.approx(one_degree, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Location(lat=90, lon=0), Location(lat=90, lon=120), 0),
        (Location(lat=-90, lon=-180), Location(lat=-90, lon=180), 0),
        (
            Location(lat=90, lon=0),
            Location(lat=-90, lon=0),
            math.pi * EARTH_MEAN_RADIUS_M,
        ),
        (
            Location(lat=0, lon=0),
            Location(lat=0, lon=180),
            math.pi * EARTH_MEAN_RADIUS_M,
        ),
        (
            Location(lat=45, lon=-30),
            Location(lat=-45, lon=150),
            math.pi * EARTH_MEAN_RADIUS_M,
        ),
    ],
)
def test_distance_poles_and_antipodes(
    a: Location, b: Location, expected: float
) -> None:
    """All longitudes meet at a pole; antipodes are half a circumference apart."""
    assert distance_m(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-6)


_latitudes = st.floats(min_value=-90, max_value=90)
_longitudes = st.floats(min_value=-180, max_value=180)
_locations = st.builds(Location, lat=_latitudes, lon=_longitudes)


@given(a=_locations, b=_locations)
def test_distance_properties(a: Location, b: Location) -> None:
    """The distance is symmetric, non-negative and at most half a circumference."""
    ab = distance_m(a, b)
    assert math.isclose(ab, distance_m(b, a), rel_tol=1e-12, abs_tol=1e-9)
    assert 0 <= ab <= math.pi * EARTH_MEAN_RADIUS_M + 1e-6


# Granting and duration


def test_granted() -> None:
    """A request passing every rule gets its requested duration."""
    decision = run()
    assert decision == Decision(reason=None, duration_s=600, distance_m=0)
    assert decision.granted


def test_requested_none_gets_max_duration() -> None:
    """Without a requested duration the resident's maximum is granted."""
    assert run(request=make_request(requested_duration_s=None)).duration_s == 900


@pytest.mark.parametrize(("requested", "granted"), [(899, 899), (900, 900), (901, 900)])
def test_requested_capped_by_max_duration(requested: int, granted: int) -> None:
    """The granted duration never exceeds the resident's maximum."""
    decision = run(request=make_request(requested_duration_s=requested))
    assert decision.duration_s == granted


def test_granted_carries_distance() -> None:
    """A granted decision carries the distance for the audit log."""
    point = north_of(HOME, 123)
    decision = run(request=make_request(location=point))
    assert decision.granted
    assert decision.distance_m == pytest.approx(123, rel=1e-6)


# Consent


def test_consent_off() -> None:
    """Consent off refuses."""
    decision = run(consent_on=False)
    assert decision == Decision(
        reason=RefusalReason.CONSENT_OFF, duration_s=0, distance_m=0
    )
    assert not decision.granted


@pytest.mark.parametrize(
    ("lapses_at", "reason"),
    [
        (NOW - timedelta(days=1), RefusalReason.CONSENT_EXPIRED),
        (NOW, RefusalReason.CONSENT_EXPIRED),
        (NOW + timedelta(microseconds=1), None),
        (None, None),
    ],
)
def test_consent_lapse(
    lapses_at: datetime | None, reason: RefusalReason | None
) -> None:
    """Consent has expired from the moment it lapses."""
    assert run(consent_lapses_at=lapses_at).reason is reason


# Incident type


@pytest.mark.parametrize(
    ("incident_type", "allowed", "reason"),
    [
        ("robbery", {"shots_fired", "robbery"}, None),
        (
            "protest",
            {"shots_fired", "robbery"},
            RefusalReason.INCIDENT_TYPE_NOT_ALLOWED,
        ),
        ("Robbery", {"robbery"}, RefusalReason.INCIDENT_TYPE_NOT_ALLOWED),
        ("robbery", set(), RefusalReason.INCIDENT_TYPE_NOT_ALLOWED),
    ],
)
def test_incident_type(
    incident_type: str, allowed: set[str], reason: RefusalReason | None
) -> None:
    """Only the resident's allowed incident types, matched exactly, pass."""
    decision = run(
        limits=limits(allowed_incident_types=frozenset(allowed)),
        request=make_request(incident_type=incident_type),
    )
    assert decision.reason is reason


# Area


def test_area_exactly_at_max_distance_granted() -> None:
    """A home exactly at the resident's maximum distance is inside the area."""
    point = north_of(HOME, 400)
    at_limit = distance_m(HOME, point)
    assert at_limit == pytest.approx(400, rel=1e-6)
    decision = run(
        limits=limits(max_distance_m=at_limit), request=make_request(location=point)
    )
    assert decision.granted
    beyond = north_of(HOME, at_limit + 0.01)
    decision = run(
        limits=limits(max_distance_m=at_limit), request=make_request(location=beyond)
    )
    assert decision.reason is RefusalReason.OUTSIDE_AREA
    assert decision.duration_s == 0
    assert decision.distance_m == pytest.approx(at_limit + 0.01, rel=1e-9)


def test_area_exactly_at_radius_granted() -> None:
    """A home exactly on the incident's circle is inside it."""
    point = north_of(HOME, 150)
    at_radius = distance_m(HOME, point)
    assert run(request=make_request(location=point, radius_m=at_radius)).granted
    beyond = north_of(HOME, at_radius + 0.01)
    decision = run(request=make_request(location=beyond, radius_m=at_radius))
    assert decision.reason is RefusalReason.OUTSIDE_AREA


@pytest.mark.parametrize(
    ("metres", "radius_m", "reason"),
    [
        # Radius smaller than the resident's maximum: the radius applies.
        (99, 100, None),
        (101, 100, RefusalReason.OUTSIDE_AREA),
        (300, 100, RefusalReason.OUTSIDE_AREA),
        # Radius larger than the resident's maximum: the maximum applies.
        (399, 1000, None),
        (401, 1000, RefusalReason.OUTSIDE_AREA),
        (999, 1000, RefusalReason.OUTSIDE_AREA),
        # No radius: the maximum applies.
        (399, None, None),
        (401, None, RefusalReason.OUTSIDE_AREA),
    ],
)
def test_area(
    metres: float, radius_m: float | None, reason: RefusalReason | None
) -> None:
    """The home must be within min(incident radius, resident's maximum)."""
    request = make_request(location=north_of(HOME, metres), radius_m=radius_m)
    assert run(request=request).reason is reason


def test_area_nan_refused() -> None:
    """A distance that cannot be computed refuses (fail closed)."""
    decision = run(home=Location(lat=math.nan, lon=0))
    assert decision.reason is RefusalReason.OUTSIDE_AREA
    assert math.isnan(decision.distance_m)


# Rate limits


@pytest.mark.parametrize(
    ("count", "reason"), [(2, None), (3, RefusalReason.RATE_LIMITED)]
)
def test_activation_count(count: int, reason: RefusalReason | None) -> None:
    """The number of activations in the last 24 h is limited."""
    history = [
        share(timedelta(hours=-i - 1), timedelta(hours=-i - 1, minutes=1))
        for i in range(count)
    ]
    assert run(history=history).reason is reason


@pytest.mark.parametrize(
    ("started", "reason"),
    [
        (-DAY, None),
        (-DAY - timedelta(seconds=1), None),
        (-DAY + timedelta(seconds=1), RefusalReason.RATE_LIMITED),
        (-DAY + timedelta(microseconds=1), RefusalReason.RATE_LIMITED),
        (timedelta(0), RefusalReason.RATE_LIMITED),
        # Recorded in the future (the clock went back): counted, fail closed.
        (timedelta(minutes=5), RefusalReason.RATE_LIMITED),
    ],
)
def test_window_edges(started: timedelta, reason: RefusalReason | None) -> None:
    """The count window is (now - 24 h, now]: a share from exactly 24 h ago is out."""
    decision = run(
        limits=limits(max_activations_per_day=1),
        history=[share(started, started + timedelta(seconds=1))],
    )
    assert decision.reason is reason


def test_budget_counts_overlap_only() -> None:
    """Only the part of a share inside the window uses the daily budget."""
    history = [share(-timedelta(hours=25), -timedelta(hours=23))]
    # One hour of it lies in the window: the 60 minute budget is used up.
    assert run(history=history).reason is RefusalReason.RATE_LIMITED
    decision = run(limits=limits(max_share_minutes_per_day=61), history=history)
    assert decision == Decision(reason=None, duration_s=60, distance_m=0)


def test_budget_share_entirely_before_window() -> None:
    """A share that ended before the window uses no budget."""
    history = [share(-timedelta(hours=30), -DAY)]
    assert run(history=history, limits=limits(max_share_minutes_per_day=1)).granted


def test_budget_live_share() -> None:
    """A live share (no end yet) counts until now."""
    history = [share(-timedelta(minutes=10), None)]
    decision = run(limits=limits(max_share_minutes_per_day=20), history=history)
    assert decision.duration_s == 600


def test_budget_share_ending_after_now() -> None:
    """A share recorded as ending after now counts only until now."""
    history = [share(-timedelta(minutes=10), timedelta(minutes=10))]
    decision = run(limits=limits(max_share_minutes_per_day=20), history=history)
    assert decision.duration_s == 600


def test_budget_sums_shares() -> None:
    """Every share in the window uses the budget."""
    history = [
        share(-timedelta(hours=5), -timedelta(hours=5) + timedelta(minutes=20)),
        share(-timedelta(hours=2), -timedelta(hours=2) + timedelta(minutes=25)),
    ]
    decision = run(
        request=make_request(requested_duration_s=None),
        limits=limits(max_duration_s=3600),
        history=history,
    )
    assert decision.duration_s == 15 * 60


def test_budget_duration_floored() -> None:
    """A fractional remaining budget is rounded down to whole seconds."""
    history = [share(-timedelta(hours=1), -timedelta(hours=1) + timedelta(seconds=0.5))]
    decision = run(
        request=make_request(requested_duration_s=None),
        limits=limits(max_duration_s=3600),
        history=history,
    )
    assert decision.duration_s == 3599


@pytest.mark.parametrize(
    ("used_s", "reason", "duration_s"),
    [
        (3600 - 31, None, 31),
        (3600 - 30, None, 30),
        (3600 - 29.999, RefusalReason.RATE_LIMITED, 0),
        (3600 - 29, RefusalReason.RATE_LIMITED, 0),
        (3600, RefusalReason.RATE_LIMITED, 0),
    ],
)
def test_budget_minimum(
    used_s: float, reason: RefusalReason | None, duration_s: int
) -> None:
    """Less than 30 s left in the budget refuses; 30 s is granted."""
    history = [share(-timedelta(hours=2), -timedelta(hours=2, seconds=-used_s))]
    decision = run(history=history)
    assert (decision.reason, decision.duration_s) == (reason, duration_s)


# Order of precedence


def test_precedence() -> None:
    """Checks run in the contract's order: the first failing rule is reported."""
    far = north_of(HOME, 10_000)
    exhausted = [share(-timedelta(hours=i + 1), -timedelta(hours=i)) for i in range(3)]
    failing: dict[str, Any] = {
        "consent_on": False,
        "consent_lapses_at": NOW,
        "request": make_request(incident_type="protest", location=far),
        "history": exhausted,
    }
    expected = [
        RefusalReason.CONSENT_OFF,
        RefusalReason.CONSENT_EXPIRED,
        RefusalReason.INCIDENT_TYPE_NOT_ALLOWED,
        RefusalReason.OUTSIDE_AREA,
        RefusalReason.RATE_LIMITED,
    ]
    fixes: list[dict[str, Any]] = [
        {"consent_on": True},
        {"consent_lapses_at": None},
        {"request": make_request(location=far)},
        {"request": make_request()},
        {"history": ()},
    ]
    for reason, fix in zip(expected, fixes, strict=True):
        decision = run(**failing)
        assert decision.reason is reason
        # Every refusal carries the distance, however early it happened.
        assert decision.distance_m == pytest.approx(
            distance_m(HOME, failing["request"].incident.location)
        )
        assert decision.duration_s == 0
        failing |= fix
    assert run(**failing).granted


# Property


@given(
    requested=st.none() | st.integers(min_value=30, max_value=86400),
    max_duration_s=st.integers(min_value=60, max_value=3600),
    max_activations=st.integers(min_value=1, max_value=24),
    max_minutes=st.integers(min_value=1, max_value=1440),
    shares=st.lists(
        st.tuples(
            st.integers(min_value=-2 * 86400, max_value=600),
            st.none() | st.integers(min_value=0, max_value=86400),
        ),
        max_size=30,
    ),
)
def test_never_grants_beyond_limits(
    requested: int | None,
    max_duration_s: int,
    max_activations: int,
    max_minutes: int,
    shares: Sequence[tuple[int, int | None]],
) -> None:
    """A grant never exceeds the maximum duration nor the remaining budget."""
    history = [
        share(
            timedelta(seconds=start),
            None if length is None else timedelta(seconds=start + length),
        )
        for start, length in shares
    ]
    decision = run(
        request=make_request(requested_duration_s=requested),
        limits=limits(
            max_duration_s=max_duration_s,
            max_activations_per_day=max_activations,
            max_share_minutes_per_day=max_minutes,
        ),
        history=history,
    )
    window_start = -86400
    count = sum(1 for start, _ in shares if start > window_start)
    used = sum(
        max(
            0,
            min(0, start + length if length is not None else 0)
            - max(start, window_start),
        )
        for start, length in shares
    )
    remaining = max_minutes * 60 - used
    assert decision.granted == (count < max_activations and remaining >= 30)
    if decision.granted:
        assert 30 <= decision.duration_s <= max_duration_s
        assert decision.duration_s <= remaining
        assert decision.duration_s <= (requested or max_duration_s)
    else:
        assert decision.reason is RefusalReason.RATE_LIMITED
        assert decision.duration_s == 0


# Options


def test_limits_from_empty_options() -> None:
    """Missing options take the privacy-preserving defaults."""
    assert limits_from_options({}) == PolicyLimits(
        max_distance_m=400,
        max_duration_s=900,
        max_activations_per_day=3,
        max_share_minutes_per_day=60,
        allowed_incident_types=frozenset(DEFAULT_ALLOWED_INCIDENT_TYPES),
    )


def test_limits_from_options() -> None:
    """Options override defaults; selector floats become whole numbers."""
    result = limits_from_options(
        {
            CONF_MAX_DISTANCE_M: 250.5,
            CONF_MAX_DURATION_S: 120.0,
            CONF_MAX_ACTIVATIONS_PER_DAY: 5.0,
            CONF_MAX_SHARE_MINUTES_PER_DAY: 30.0,
            CONF_ALLOWED_INCIDENT_TYPES: ["robbery", "robbery", "assault"],
            "unrelated": True,
        }
    )
    assert result == PolicyLimits(
        max_distance_m=250.5,
        max_duration_s=120,
        max_activations_per_day=5,
        max_share_minutes_per_day=30,
        allowed_incident_types=frozenset({"robbery", "assault"}),
    )
    assert type(result.max_duration_s) is int


# Purity


def _is_type_checking(test: ast.expr) -> bool:
    """Return True for `TYPE_CHECKING` and `typing.TYPE_CHECKING`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Yield the import statements executed at runtime (outside TYPE_CHECKING)."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _runtime_imports(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(ast.iter_child_nodes(node))


def _imported_modules(source: str) -> set[tuple[int, str]]:
    """Return (relative level, module) of every runtime import in the source."""
    modules: set[tuple[int, str]] = set()
    for node in _runtime_imports([ast.parse(source)]):
        if isinstance(node, ast.Import):
            modules.update((0, alias.name) for alias in node.names)
        else:
            modules.add((node.level, node.module or ""))
    return modules


def _imports_homeassistant(modules: set[tuple[int, str]]) -> bool:
    """Return True if any absolute import is Home Assistant."""
    return any(
        level == 0 and (name == "homeassistant" or name.startswith("homeassistant."))
        for level, name in modules
    )


@pytest.mark.parametrize(
    "module", ["policy.py", "const.py", "models.py", "live/webrtc_sdp.py"]
)
def test_pure_modules_do_not_import_homeassistant(module: str) -> None:
    """The policy, what it imports and the WHEP SDP never load Home Assistant."""
    modules = _imported_modules((PACKAGE_DIR / module).read_text(encoding="utf-8"))
    assert not _imports_homeassistant(modules)


def test_policy_imports_only_const_and_models() -> None:
    """The policy imports nothing of the package but const and models."""
    modules = _imported_modules((PACKAGE_DIR / "policy.py").read_text(encoding="utf-8"))
    assert {(level, name) for level, name in modules if level} == {
        (1, "const"),
        (1, "models"),
    }


@pytest.mark.parametrize(
    ("source", "violates"),
    [
        ("import homeassistant", True),
        ("import homeassistant.core as core", True),
        ("from homeassistant.core import callback", True),
        ("def f():\n    from homeassistant import core", True),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import homeassistant", True),
        ("if TYPE_CHECKING:\n    from homeassistant.core import HomeAssistant", False),
        ("if typing.TYPE_CHECKING:\n    import homeassistant", False),
        ("import homeassistantish", False),
        ("from .homeassistant import x", False),
    ],
)
def test_purity_checker(source: str, violates: bool) -> None:
    """The purity check itself finds runtime imports and skips typing-only ones."""
    assert _imports_homeassistant(_imported_modules(source)) is violates
