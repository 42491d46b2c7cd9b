"""Sensors: when consent lapses, recent activations, rejected requests."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import RtccShareConfigEntry, RtccShareData
from .entity import RtccShareEntity

PARALLEL_UPDATES = 0
# Only the rolling 24 h count changes with time alone; no I/O is involved.
SCAN_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class RtccShareSensorDescription(SensorEntityDescription):
    """A sensor that reads one fact from the entry."""

    value_fn: Callable[[RtccShareData], datetime | int | None]
    rolling: bool = False


SENSORS: tuple[RtccShareSensorDescription, ...] = (
    RtccShareSensorDescription(
        key="consent_lapses_at",
        translation_key="consent_lapses_at",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda data: data.session.consent_lapses_at,
    ),
    RtccShareSensorDescription(
        key="last_activation",
        translation_key="last_activation",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda data: data.session.last_activation,
    ),
    RtccShareSensorDescription(
        key="activations_24h",
        translation_key="activations_24h",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.session.activations_in_window(),
        rolling=True,
    ),
    RtccShareSensorDescription(
        key="rejected_requests",
        translation_key="rejected_requests",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.rejections.unauthenticated,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors."""
    async_add_entities(RtccShareSensor(entry, description) for description in SENSORS)


class RtccShareSensor(RtccShareEntity, SensorEntity):
    """A sensor reflecting the entry's state."""

    entity_description: RtccShareSensorDescription

    def __init__(
        self, entry: RtccShareConfigEntry, description: RtccShareSensorDescription
    ) -> None:
        """Poll only the sensor whose value depends on the clock."""
        super().__init__(entry, description)
        self._attr_should_poll = description.rolling

    @property
    def native_value(self) -> datetime | int | None:
        """Return the value."""
        return self.entity_description.value_fn(self.data)
