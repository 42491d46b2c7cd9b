"""The resident's consent switch: off after install, restored (never forced on)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.util import dt as dt_util

from .data import RtccShareConfigEntry
from .entity import RtccShareEntity
from .models import ConsentCause

PARALLEL_UPDATES = 0

CONSENT = SwitchEntityDescription(key="consent", translation_key="consent")


@dataclass(slots=True)
class ConsentExtraData(ExtraStoredData):
    """When consent was last turned on; the lapse counts from it."""

    since: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """Serialize for the restore cache."""
        return {"since": self.since.isoformat() if self.since else None}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the consent switch."""
    async_add_entities([ConsentSwitch(entry, CONSENT)])


def _cause(switch: ConsentSwitch) -> ConsentCause:
    """A person in the UI or app, or an automation/script acting on their behalf."""
    context = switch._context  # noqa: SLF001 - the context of the current service call
    if context is not None and context.user_id and context.parent_id is None:
        return ConsentCause.RESIDENT
    return ConsentCause.AUTOMATION


class ConsentSwitch(RtccShareEntity, SwitchEntity, RestoreEntity):
    """Sharing is possible only while this is on."""

    @property
    def is_on(self) -> bool:
        """Return the session's consent."""
        return self.session.consent_on

    @property
    def extra_restore_state_data(self) -> ConsentExtraData:
        """Keep the moment consent was turned on across restarts."""
        return ConsentExtraData(self.session.consent_since)

    async def async_added_to_hass(self) -> None:
        """Restore consent as it was; no state means off."""
        await super().async_added_to_hass()
        last_state = await self.async_get_last_state()
        on = last_state is not None and last_state.state == "on"
        since: datetime | None = None
        if on and (extra := await self.async_get_last_extra_data()):
            raw = extra.as_dict().get("since")
            since = dt_util.parse_datetime(raw) if raw else None
        await self.session.async_restore_consent(
            on, (since or dt_util.utcnow()) if on else None
        )

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Give consent."""
        await self.session.async_set_consent(True, _cause(self))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Withdraw consent; a live share ends at once."""
        await self.session.async_set_consent(False, _cause(self))
