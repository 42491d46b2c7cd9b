"""Event entity: every grant, refusal and end, as it happens."""

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import signal_event
from .data import RtccShareConfigEntry
from .entity import RtccShareEntity

PARALLEL_UPDATES = 0

ACTIVATION = EventEntityDescription(
    key="activation",
    translation_key="activation",
    event_types=["granted", "refused", "ended"],
)
# Only ids and codes: what the resident needs, nothing secret.
EVENT_ATTRIBUTES = (
    "reason",
    "activation_id",
    "incident_id",
    "incident_type",
    "operator_id",
    # Only on a test run's `granted` and `ended`.
    "test",
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the activation event entity."""
    async_add_entities([ActivationEvent(entry, ACTIVATION)])


class ActivationEvent(RtccShareEntity, EventEntity):
    """Fires `granted`, `refused` and `ended`."""

    async def async_added_to_hass(self) -> None:
        """Listen to the session's events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_event(self.session.entry_id), self._async_event
            )
        )

    @callback
    def _async_event(self, event_type: str, data: dict[str, Any]) -> None:
        self._trigger_event(
            event_type,
            {key: data[key] for key in EVENT_ATTRIBUTES if data.get(key) is not None},
        )
        self.async_write_ha_state()
