"""The police-view camera: the resident sees exactly the picture that is shared.

While privacy masks are set, that is the masked picture (stream and
snapshot): its stream source is the entry's masked source, which Home
Assistant's own stream and a WebRTC provider such as go2rtc read. The
WebRTC share relays this camera then, so the city's WebRTC is masked too.
"""

from homeassistant.components.camera import (
    Camera,
    CameraEntityDescription,
    async_get_image,
)
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event

from .data import RtccShareConfigEntry
from .entity import RtccShareEntity
from .live.masked_source import MaskUnavailableError
from .source_camera import POLICE_VIEW_KEY, async_stream_source

PARALLEL_UPDATES = 0

POLICE_VIEW = CameraEntityDescription(
    key=POLICE_VIEW_KEY, translation_key=POLICE_VIEW_KEY
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the police-view camera."""
    async_add_entities([PoliceViewCamera(entry, POLICE_VIEW)])


class PoliceViewCamera(RtccShareEntity, Camera):
    """Shows the shared picture of the source camera; streaming while a share is live."""

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
        self.async_on_remove(
            self.data.masked.async_add_listener(self._async_masks_changed)
        )

    @callback
    def _async_source_changed(self, _event: Event[EventStateChangedData]) -> None:
        self.async_write_ha_state()

    @callback
    def _async_masks_changed(self) -> None:
        self.hass.async_create_task(
            self._async_follow_stream_source(), eager_start=True
        )

    async def _async_follow_stream_source(self) -> None:
        """The stream source changed: WebRTC providers and HA's stream follow it."""
        await self.async_refresh_providers()
        if (stream := self.stream) is None:
            return
        if (source := await self.stream_source()) is not None:
            stream.update_source(source)
            return
        self.stream = None
        await stream.stop()

    @property
    def is_streaming(self) -> bool:
        """Return True while the city can view the source."""
        return self.session.live is not None

    async def stream_source(self) -> str | None:
        """Return the masked source while masks are set, else the camera's own."""
        masked = self.data.masked
        if masked.masks:
            source = await masked.async_source()
            return None if source is None else source.url
        return await async_stream_source(self.hass, self.session.camera_entity_id)

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """Return the masked picture while masks are set, else the camera's still image."""
        masked = self.data.masked
        if masked.masks:
            if (source := await masked.async_source()) is None:
                return None
            try:
                return await source.async_snapshot()
            except MaskUnavailableError:
                return None
        try:
            image = await async_get_image(
                self.hass, self.session.camera_entity_id, width=width, height=height
            )
        except HomeAssistantError:
            return None
        return image.content
