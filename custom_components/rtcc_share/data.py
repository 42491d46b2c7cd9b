"""The runtime data of one config entry (one shared camera)."""

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .activation import Activations
from .audit import AuditLog
from .live.instant_start import InstantStart
from .live.masked_view import MaskedView
from .rejections import Rejections
from .session import ShareSession
from .signature import SeenIdStore, Verifier


@dataclass(slots=True, kw_only=True)
class RtccShareData:
    """What a loaded entry holds."""

    verifier: Verifier
    seen_ids: SeenIdStore
    audit: AuditLog
    session: ShareSession
    activations: Activations
    rejections: Rejections
    # The camera's newest keyframe interval kept while consent is on (opt-in).
    instant: InstantStart
    # The privacy masks in force and the masked picture they make.
    masked: MaskedView


type RtccShareConfigEntry = ConfigEntry[RtccShareData]
