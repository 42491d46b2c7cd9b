"""The entry's privacy masks in force, and the one masked source they make.

While masks are set, every view of the camera reads one `MaskedSource`:
the share's HLS stream, the Police view camera (Home Assistant's own stream
of it, its snapshots) and a WebRTC provider such as go2rtc, which reads the
Police view camera's stream source. The source is made on first use, once
the camera has a stream source (it is opened with the PyAV options Home
Assistant's `stream` would use for it), and made anew, with a new URL and
secret, when the masks change.

Closing a masked source stops it at once; only waiting for its thread, which
a camera that stalled mid-read holds for up to its read timeout, is bounded
here and left to finish in the background.
"""

import asyncio
from collections.abc import Callable, Sequence
import logging
from typing import Final

from homeassistant.components.camera import async_get_stream_source
from homeassistant.components.camera.helper import get_camera_from_entity_id
from homeassistant.components.camera.prefs import DynamicStreamSettings
from homeassistant.components.stream import create_stream
from homeassistant.components.stream.const import ATTR_STREAMS
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from ..const import DOMAIN
from .hls_stream import FAST_OPEN, STREAM_DOMAIN
from .masked_source import MaskedSource
from .masks import Mask

_LOGGER = logging.getLogger(__name__)

# How long closing waits for the masking's thread before leaving it be.
CLOSE_WAIT_S: Final = 2.0


def camera_pyav_options(
    hass: HomeAssistant, camera_entity_id: str, source: str
) -> dict[str, str]:
    """Return the PyAV options Home Assistant's stream opens this camera with.

    HA's create_stream validates the camera's stream options and turns them
    into PyAV options for this source; the Stream it makes is never started.
    """
    camera = get_camera_from_entity_id(hass, camera_entity_id)
    template = create_stream(
        hass,
        source,
        options=camera.stream_options,
        dynamic_stream_settings=DynamicStreamSettings(),
    )
    hass.data[STREAM_DOMAIN][ATTR_STREAMS].remove(template)
    # As the share's own stream opens a camera; the camera's options win.
    return {**FAST_OPEN, **template.pyav_options}


class MaskedView:
    """The masks in force for one camera and its masked source."""

    def __init__(
        self,
        hass: HomeAssistant,
        camera_entity_id: Callable[[], str],
        masks: Sequence[Mask],
        *,
        prebuffered: Callable[[], str | None] | None = None,
    ) -> None:
        """Mask the camera `camera_entity_id()` names (asked at each use).

        prebuffered(): instant start's prebuffer of the camera, if it runs
        (asked at each connection to the camera): read instead of the camera.
        """
        self._hass = hass
        self._camera = camera_entity_id
        self._prebuffered = prebuffered
        self.masks: tuple[Mask, ...] = tuple(masks)
        self._source: MaskedSource | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._closed = False

    @property
    def current(self) -> MaskedSource | None:
        """Return the masked source if one is open (none is opened here)."""
        return self._source

    @property
    def closed(self) -> bool:
        """Return True once closed: nothing may be shown any more."""
        return self._closed

    async def async_source(self) -> MaskedSource | None:
        """Return the masked source, opened on first use.

        None without masks, once closed, or while the camera has no stream
        source: there is nothing to mask then.
        """
        async with self._lock:
            if self._source is None and not self._closed and self.masks:
                self._source = await self._async_open()
            return self._source

    async def async_set_masks(self, masks: Sequence[Mask]) -> None:
        """Use new masks: the old source stops, the next use opens a new one."""
        async with self._lock:
            old, self._source = self._source, None
            self.masks = tuple(masks)
        for listener in list(self._listeners):
            listener()
        if old is not None:
            await self._async_close(old)

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call listener (in the event loop) whenever the masks change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def async_close(self) -> None:
        """Stop masking for good (unload)."""
        async with self._lock:
            self._closed = True
            old, self._source = self._source, None
        if old is not None:
            await self._async_close(old)

    async def _async_stream_source(self) -> str | None:
        try:
            return await async_get_stream_source(self._hass, self._camera())
        except HomeAssistantError:
            return None

    async def _async_masked_input(self) -> str | None:
        """What the masking reads: the prebuffer if it runs, else the camera."""
        if self._prebuffered is not None and (url := self._prebuffered()):
            return url
        return await self._async_stream_source()

    async def _async_open(self) -> MaskedSource | None:
        camera = self._camera()
        if (source := await self._async_stream_source()) is None:
            return None
        try:
            options = camera_pyav_options(self._hass, camera, source)
        except HomeAssistantError as err:
            _LOGGER.warning(
                "The privacy-masked view of %s cannot be made: %s",
                camera,
                type(err).__name__,
            )
            return None
        masked = MaskedSource(
            self._async_masked_input, self.masks, pyav_options=options
        )
        await masked.async_open()
        return masked

    async def _async_close(self, masked: MaskedSource) -> None:
        # Readers' connections end and the pipeline stops before the first
        # await of async_close; only joining its thread can take long.
        task = self._hass.async_create_background_task(
            masked.async_close(), f"{DOMAIN} privacy mask close", eager_start=True
        )
        await asyncio.wait({task}, timeout=CLOSE_WAIT_S)
