"""The resident's one-tap "stop sharing now" button."""

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import RtccShareConfigEntry
from .entity import RtccShareEntity
from .models import EndReason

PARALLEL_UPDATES = 0

STOP = ButtonEntityDescription(key="stop_sharing", translation_key="stop_sharing")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stop button."""
    async_add_entities([StopSharingButton(entry, STOP)])


class StopSharingButton(RtccShareEntity, ButtonEntity):
    """Ends a live share immediately; does nothing while idle."""

    async def async_press(self) -> None:
        """End the live share."""
        await self.session.async_end(EndReason.STOPPED_BY_RESIDENT)
