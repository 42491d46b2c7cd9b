"""The resident's sharing policy: a pure decision on an authenticated activation.

No Home Assistant import and no I/O here: every input is an argument, so the
whole policy is unit-tested exhaustively without a running Home Assistant.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from math import asin, cos, radians, sin, sqrt
from typing import Any

from .const import (
    CONF_ALLOWED_INCIDENT_TYPES,
    CONF_MAX_ACTIVATIONS_PER_DAY,
    CONF_MAX_DISTANCE_M,
    CONF_MAX_DURATION_S,
    CONF_MAX_SHARE_MINUTES_PER_DAY,
    DEFAULT_OPTIONS,
    MIN_REQUESTED_DURATION_S,
    ROLLING_WINDOW_S,
)
from .models import (
    ActivationRequest,
    Decision,
    Location,
    PastShare,
    PolicyLimits,
    RefusalReason,
)

EARTH_MEAN_RADIUS_M = 6_371_008.8


def distance_m(a: Location, b: Location) -> float:
    """Return the great-circle distance between two points in metres (haversine)."""
    lat_a = radians(a.lat)
    lat_b = radians(b.lat)
    h = (
        sin((lat_b - lat_a) / 2) ** 2
        + cos(lat_a) * cos(lat_b) * sin(radians(b.lon - a.lon) / 2) ** 2
    )
    # Rounding can push h just above 1 for antipodal points; asin would raise.
    return 2 * EARTH_MEAN_RADIUS_M * asin(min(sqrt(h), 1.0))


def limits_from_options(options: Mapping[str, Any]) -> PolicyLimits:
    """Return the policy limits of an entry's options, defaults for missing keys."""
    merged: dict[str, Any] = {**DEFAULT_OPTIONS, **options}
    # Number selectors store floats; counts and durations are whole numbers.
    return PolicyLimits(
        max_distance_m=float(merged[CONF_MAX_DISTANCE_M]),
        max_duration_s=int(merged[CONF_MAX_DURATION_S]),
        max_activations_per_day=int(merged[CONF_MAX_ACTIVATIONS_PER_DAY]),
        max_share_minutes_per_day=int(merged[CONF_MAX_SHARE_MINUTES_PER_DAY]),
        allowed_incident_types=frozenset(merged[CONF_ALLOWED_INCIDENT_TYPES]),
    )


def _seconds_shared(
    history: Sequence[PastShare], window_start: datetime, now: datetime
) -> float:
    """Return the seconds of sharing that overlap the window (window_start, now]."""
    used = 0.0
    for share in history:
        end = now if share.ended is None else min(share.ended, now)
        used += max(0.0, (end - max(share.started, window_start)).total_seconds())
    return used


def decide(
    *,
    consent_on: bool,
    consent_lapses_at: datetime | None,
    limits: PolicyLimits,
    home: Location,
    request: ActivationRequest,
    now: datetime,
    history: Sequence[PastShare],
) -> Decision:
    """Decide whether an authenticated activation may start, and for how long.

    The checks run in the contract's order and the first failure wins.
    """
    incident = request.incident
    # Computed up front so refusals carry it into the audit log too.
    distance = distance_m(home, incident.location)

    def refuse(reason: RefusalReason) -> Decision:
        """Return a refusal; nothing is granted."""
        return Decision(reason=reason, duration_s=0, distance_m=distance)

    if not consent_on:
        return refuse(RefusalReason.CONSENT_OFF)
    if consent_lapses_at is not None and now >= consent_lapses_at:
        return refuse(RefusalReason.CONSENT_EXPIRED)
    if incident.type not in limits.allowed_incident_types:
        return refuse(RefusalReason.INCIDENT_TYPE_NOT_ALLOWED)

    max_distance = limits.max_distance_m
    if incident.radius_m is not None:
        max_distance = min(incident.radius_m, max_distance)
    # Negated so that a NaN distance refuses instead of passing.
    if not distance <= max_distance:
        return refuse(RefusalReason.OUTSIDE_AREA)

    window_start = now - timedelta(seconds=ROLLING_WINDOW_S)
    # Shares started after now (the clock went back) count too: fail closed.
    started_in_window = sum(1 for share in history if share.started > window_start)
    if started_in_window >= limits.max_activations_per_day:
        return refuse(RefusalReason.RATE_LIMITED)
    remaining_s = limits.max_share_minutes_per_day * 60 - _seconds_shared(
        history, window_start, now
    )
    if remaining_s < MIN_REQUESTED_DURATION_S:
        return refuse(RefusalReason.RATE_LIMITED)

    requested_s = request.requested_duration_s
    if requested_s is None:
        requested_s = limits.max_duration_s
    return Decision(
        reason=None,
        duration_s=int(min(requested_s, limits.max_duration_s, remaining_s)),
        distance_m=distance,
    )
