"""A camera whose stream source is any URL, or a Ring-like doorbell reading it.

`ring_like: true` makes it a doorbell that streams that URL only over WebRTC,
signalled the way Home Assistant's Ring camera does (webrtc.py).
"""

from homeassistant.components.camera import (
    PLATFORM_SCHEMA as CAMERA_PLATFORM_SCHEMA,
    Camera,
    CameraEntityFeature,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
import probatio

from .webrtc import RingLikeCamera

CONF_STREAM_SOURCE = "stream_source"
CONF_RING_LIKE = "ring_like"

PLATFORM_SCHEMA = CAMERA_PLATFORM_SCHEMA.extend(
    {
        probatio.Required(CONF_NAME): cv.string,
        probatio.Required(CONF_STREAM_SOURCE): cv.string,
        probatio.Optional(CONF_RING_LIKE, default=False): cv.boolean,
    }
)


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Add one camera per platform entry."""
    kind = RingLikeCamera if config[CONF_RING_LIKE] else BenchCamera
    async_add_entities([kind(config[CONF_NAME], config[CONF_STREAM_SOURCE])])


class BenchCamera(Camera):
    """Streams from the configured URL; no still image."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, name: str, source: str) -> None:
        """Use this name and source."""
        super().__init__()
        self._attr_name = name
        self._attr_unique_id = f"rtcc_bench_{name}"
        self._source = source

    async def stream_source(self) -> str:
        """Return the configured URL."""
        return self._source

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """No still image."""
        return None
