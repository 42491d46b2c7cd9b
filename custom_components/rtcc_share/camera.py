"""The police-view camera: the resident sees exactly the source that is shared."""

from homeassistant.components.camera import (
    Camera,
    CameraEntityDescription,
    async_get_image,
    async_get_stream_source,
)
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

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
