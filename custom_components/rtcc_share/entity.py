"""Base entity: every entity of an entry sits on the entry's device."""

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN, signal_update
from .data import RtccShareConfigEntry, RtccShareData
from .session import ShareSession


def device_model(agency: str) -> str:
    """Return the model an entry's device shows: whom the camera is shared with."""
    return f"Shared with {agency}"


class RtccShareEntity(Entity):
    """An entity that reflects the entry's share session."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, entry: RtccShareConfigEntry, description: EntityDescription
    ) -> None:
        """Bind to the entry's session and device."""
        self.entity_description = description
        self.data: RtccShareData = entry.runtime_data
        self.session: ShareSession = entry.runtime_data.session
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="rtcc_share",
            model=device_model(self.session.agency),
        )

    async def async_added_to_hass(self) -> None:
        """Follow the session's changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_update(self.session.entry_id),
                self._async_session_changed,
            )
        )

    @callback
    def _async_session_changed(self) -> None:
        self.async_write_ha_state()
