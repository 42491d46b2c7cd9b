"""The police-view camera: the resident sees exactly the source that is shared."""

from homeassistant.components.camera import (
    Camera,
    CameraEntityDescription,
    async_get_image,
    async_get_stream_source,
)
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event

from .data import RtccShareConfigEntry
from .entity import RtccShareEntity

PARALLEL_UPDATES = 0

POLICE_VIEW = CameraEntityDescription(key="police_view", translation_key="police_view")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the police-view camera."""
    async_add_entities([PoliceViewCamera(entry, POLICE_VIEW)])


class PoliceViewCamera(RtccShareEntity, Camera):
    """Proxies the source camera; streaming while a share is live."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(
        self, entry: RtccShareConfigEntry, description: CameraEntityDescription
    ) -> None:
        """Set up both parents."""
        RtccShareEntity.__init__(self, entry, description)
        Camera.__init__(self)

    @property
    def available(self) -> bool:
        """Return False while the source camera is unavailable or missing."""
        source = self.hass.states.get(self.session.camera_entity_id)
        return source is not None and source.state != STATE_UNAVAILABLE

    async def async_added_to_hass(self) -> None:
        """Follow the source camera's availability too."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_track_state_change_event(
                self.hass, self.session.camera_entity_id, self._async_source_changed
            )
        )

    @callback
    def _async_source_changed(self, _event: Event[EventStateChangedData]) -> None:
        self.async_write_ha_state()

    @property
    def is_streaming(self) -> bool:
        """Return True while the city can view the source."""
        return self.session.live is not None

    async def stream_source(self) -> str | None:
        """Return the source camera's stream source."""
        try:
            return await async_get_stream_source(
                self.hass, self.session.camera_entity_id
            )
        except HomeAssistantError:
            return None

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """Return the source camera's still image."""
        try:
            image = await async_get_image(
                self.hass, self.session.camera_entity_id, width=width, height=height
            )
        except HomeAssistantError:
            return None
        return image.content
