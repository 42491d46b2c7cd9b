"""Value objects shared across the integration, and the entry's runtime data.

Home Assistant types are imported for type checking only, so the pure policy
module can use the value objects without importing Home Assistant.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from .audit import AuditLog
    from .session import ShareSession
    from .signature import SeenIdStore, Verifier


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
    """Why the resident's policy refused an authenticated activation."""

    CONSENT_OFF = "consent_off"
    CONSENT_EXPIRED = "consent_expired"
    INCIDENT_TYPE_NOT_ALLOWED = "incident_type_not_allowed"
    OUTSIDE_AREA = "outside_area"
    RATE_LIMITED = "rate_limited"


class EndReason(StrEnum):
    """Why a live share ended."""

    EXPIRED = "expired"
    ENDED_BY_CITY = "ended_by_city"
    CONSENT_OFF = "consent_off"
    CONSENT_LAPSED = "consent_lapsed"
    STOPPED_BY_RESIDENT = "stopped_by_resident"
    CAMERA_UNAVAILABLE = "camera_unavailable"
    UNLOADED = "unloaded"
    HA_STOPPING = "ha_stopping"


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


@dataclass(slots=True, kw_only=True)
class RtccShareData:
    """Runtime data of one config entry (one shared camera)."""

    verifier: Verifier
    seen_ids: SeenIdStore
    audit: AuditLog
    session: ShareSession


type RtccShareConfigEntry = ConfigEntry[RtccShareData]
