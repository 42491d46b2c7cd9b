"""Frozen value objects and the enums that name every code the integration uses.

No Home Assistant import: the pure policy module uses these.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A point on Earth, degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """The incident a city activation refers to."""

    id: str
    type: str
    location: Location
    radius_m: float | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Operator:
    """The RTCC operator acting for the city."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationRequest:
    """A validated `activation.requested` message."""

    activation_id: str
    incident: Incident
    operator: Operator
    legal_basis: str
    requested_duration_s: int | None = None
    # The kinds of live view the city can play (contract 1.1), known ones only.
    accept_streams: frozenset[str] = frozenset({"hls"})
    # The webhook id the city signed the message for (contract 1.1), if any.
    recipient: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationEnd:
    """A validated `activation.ended` message."""

    activation_id: str
    operator: Operator
    # The webhook id the city signed the message for (contract 1.1), if any.
    recipient: str | None = None


class RefusalReason(StrEnum):
    """Why an authenticated request was refused: the contract's error codes."""

    # The resident's policy.
    CONSENT_OFF = "consent_off"
    CONSENT_EXPIRED = "consent_expired"
    INCIDENT_TYPE_NOT_ALLOWED = "incident_type_not_allowed"
    OUTSIDE_AREA = "outside_area"
    RATE_LIMITED = "rate_limited"
    # The message.
    INVALID_PAYLOAD = "invalid_payload"
    DUPLICATE_MESSAGE = "duplicate_message"
    UNKNOWN_ACTIVATION = "unknown_activation"
    ALREADY_ACTIVE = "already_active"
    WRONG_RECIPIENT = "wrong_recipient"
    RECIPIENT_REQUIRED = "recipient_required"
    # The home cannot share safely.
    CAMERA_UNAVAILABLE = "camera_unavailable"
    NO_EXTERNAL_URL = "no_external_url"
    AUDIT_LOG_UNAVAILABLE = "audit_log_unavailable"


class AuditEvent(StrEnum):
    """The events the audit log records."""

    CONSENT_ON = "consent_on"
    CONSENT_OFF = "consent_off"
    OPTIONS_CHANGED = "options_changed"
    KEY_ROTATED = "key_rotated"
    ACTIVATION_GRANTED = "activation_granted"
    ACTIVATION_REFUSED = "activation_refused"
    SHARE_ENDED = "share_ended"
    INTERRUPTED = "interrupted"
    AUTHENTICATION_FAILED = "authentication_failed"
    RECOVERED = "recovered"
    PRUNED = "pruned"
    TRUNCATED = "truncated"
    NOT_RECORDED = "not_recorded"
    # The resident's test run: events of their own, so that nothing counting
    # the city's grants and shares (the transparency report, a city's
    # reconciliation against its receipts) ever counts one.
    TEST_SHARE_STARTED = "test_share_started"
    TEST_SHARE_ENDED = "test_share_ended"


class ConsentCause(StrEnum):
    """Who turned consent on or off."""

    RESIDENT = "resident"
    AUTOMATION = "automation"
    LAPSE = "lapse"


class EndReason(StrEnum):
    """Why a live share ended."""

    EXPIRED = "expired"
    ENDED_BY_CITY = "ended_by_city"
    CONSENT_OFF = "consent_off"
    CONSENT_LAPSED = "consent_lapsed"
    STOPPED_BY_RESIDENT = "stopped_by_resident"
    CAMERA_UNAVAILABLE = "camera_unavailable"
    # The source gained audio the resident does not share (a reconnect, say).
    AUDIO_APPEARED = "audio_appeared"
    # The masked picture could not be made any more (fail closed).
    PRIVACY_MASK_FAILED = "privacy_mask_failed"
    # The resident changed the masks: a grant's record names the masks of
    # its whole share.
    PRIVACY_MASKS_CHANGED = "privacy_masks_changed"
    UNLOADED = "unloaded"
    HA_STOPPING = "ha_stopping"
    # A test run made way for a real activation.
    ACTIVATION_ARRIVED = "activation_arrived"
    # Found at the next start: the share was live when Home Assistant died.
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyLimits:
    """The resident's limits, taken from the entry's options."""

    max_distance_m: float
    max_duration_s: int
    max_activations_per_day: int
    max_share_minutes_per_day: int
    allowed_incident_types: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PastShare:
    """A granted share, for the rolling 24 h limits; `ended` None while live."""

    started: datetime
    ended: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The policy's answer: granted with a duration, or refused with a reason."""

    reason: RefusalReason | None
    duration_s: int
    distance_m: float

    @property
    def granted(self) -> bool:
        """Return True when the activation may start."""
        return self.reason is None


def contract_time(moment: datetime) -> str:
    """Format a moment as the contract does: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A live share as the city sees it: the body of the 201 and idempotent 200."""

    activation_id: str
    stream_url: str | None
    webrtc_url: str | None
    started: datetime
    expires: datetime
    receipt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Granted:
    """The activation is live; `created` is False for a repeated request."""

    grant: Grant
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended:
    """The activation has ended (now, or before)."""

    activation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """The request was refused; `activation_id` names the live one (already active)."""

    reason: RefusalReason
    detail: str | None = None
    activation_id: str | None = None


type Outcome = Granted | Ended | Refused
