"""Whether the camera is being shared right now."""

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import RtccShareConfigEntry
from .entity import RtccShareEntity
from .texts import visible

PARALLEL_UPDATES = 0

LIVE_SHARE = BinarySensorEntityDescription(
    key="live_share", translation_key="live_share"
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the live-share sensor."""
    async_add_entities([LiveShareBinarySensor(entry, LIVE_SHARE)])


class LiveShareBinarySensor(RtccShareEntity, BinarySensorEntity):
    """On while the city can view the camera; never exposes the URL or token."""

    @property
    def is_on(self) -> bool:
        """Return True while a share is live."""
        return self.session.live is not None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Describe the live share to the resident."""
        if (live := self.session.live) is None:
            return None
        return {
            "activation_id": live.request.activation_id,
            "incident_type": visible(live.request.incident.type),
            "operator_id": visible(live.request.operator.id),
            "started": live.grant.started.isoformat(),
            "expires": live.grant.expires.isoformat(),
            "viewers": live.viewers,
            # A test run: nothing is shared, no URL exists.
            "test": live.test,
        }
