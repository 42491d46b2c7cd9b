"""A camera whose stream source is any URL (the benchmarks' counting proxy)."""

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

CONF_STREAM_SOURCE = "stream_source"

PLATFORM_SCHEMA = CAMERA_PLATFORM_SCHEMA.extend(
    {
        probatio.Required(CONF_NAME): cv.string,
        probatio.Required(CONF_STREAM_SOURCE): cv.string,
    }
)


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Add one camera per platform entry."""
    async_add_entities([BenchCamera(config[CONF_NAME], config[CONF_STREAM_SOURCE])])


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
