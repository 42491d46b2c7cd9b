"""Instant start (the resident's opt-in): a share serves from the camera's newest keyframe.

Without it, a share's first picture waits for the camera's next keyframe:
about one keyframe interval after the grant (4 s for many doorbells on
Wi-Fi). With it, an entry's `Prebuffer` runs while, and only while, the
entry is loaded, consent is on and the `instant_start` option is on: the
camera's stream stays open inside the home with its newest keyframe
interval buffered, and a grant's HLS share reads the prebuffer instead of
the camera. Its stream worker gets the buffered interval at once and cuts
its first segment where that ends, so players have a picture at once.

What the city may get from before the grant: at most that one keyframe
interval (the grant's audit record says how old it was at most). Nothing
leaves the home before a grant: the prebuffer serves only loopback readers
holding its secret URL, never logged. Audio follows the share's rule (read
from an RTSP camera only if audio is shared, never passed on otherwise).
Consent off, the option off and unloading stop it at once.
"""

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
import functools
import logging
import secrets
from typing import Any

from homeassistant.components.camera import async_get_stream_source
from homeassistant.components.stream import Stream
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from ..const import CONF_INSTANT_START, CONF_SHARE_AUDIO, DOMAIN, signal_update
from .hls_stream import LiveHlsStream
from .masked_view import camera_pyav_options
from .prebuffer import Burst, CameraSource, Prebuffer

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrebufferedSource:
    """One share's reading of the prebuffer."""

    url: str
    # The PyAV options to open it with.
    pyav_options: dict[str, str]
    # The buffered video its newest connection began with (Prebuffer.burst).
    burst: Callable[[], Burst | None]
    # How old the buffered keyframe was when the share was prepared (None
    # without one).
    lookback_s: float | None

    def attach(self, stream: Stream) -> None:
        """Read the prebuffer in a share's stream; cut its first segment at the burst."""
        stream.pyav_options.update(self.pyav_options)
        if isinstance(stream, LiveHlsStream):
            stream.burst = self.burst

    def audit_fields(self) -> dict[str, Any]:
        """Return what the grant's audit record says of it."""
        return {
            "instant_start": True,
            "lookback_s": None
            if self.lookback_s is None
            else round(self.lookback_s, 2),
        }


class InstantStart:
    """Runs one entry's prebuffer while consent and the option are on."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        camera_entity_id: Callable[[], str],
        wanted: Callable[[], dict[str, Any] | None],
        sharing: Callable[[], bool],
    ) -> None:
        """Follow the entry.

        wanted(): its options while consent is on, else None; sharing():
        whether a share is live (new options wait for its end).
        """
        self._hass = hass
        self._entry_id = entry_id
        self._camera = camera_entity_id
        self._wanted = wanted
        self._sharing = sharing
        self._prebuffer: Prebuffer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def prebuffer(self) -> Prebuffer | None:
        """Return the running prebuffer, if any."""
        return self._prebuffer

    @callback
    def async_start(self) -> Callable[[], None]:
        """Follow the entry's state from now on; return the unsubscribe."""
        self.async_follow()
        return async_dispatcher_connect(
            self._hass, signal_update(self._entry_id), self.async_follow
        )

    @callback
    def async_follow(self) -> None:
        """Run, restart or stop the prebuffer as consent and the options say."""
        options = None if self._stopped else self._wanted()
        audio = None
        if options is not None and options.get(CONF_INSTANT_START):
            audio = bool(options.get(CONF_SHARE_AUDIO))
        current = self._prebuffer
        if current is not None and current.audio != audio:
            if options is not None and self._sharing():
                # A live share may be reading it: new options apply from the
                # next share, as every option does (consent off stops it now).
                return
            self._prebuffer = None
            current.halt()
            self._background(current.async_close(), "stop")
        if audio is not None and self._prebuffer is None:
            self._prebuffer = Prebuffer(self._async_camera, audio=audio)
            self._background(self._async_open(self._prebuffer), "start")

    async def async_stop(self) -> None:
        """Stop for good (unload): at once, then wait for the prebuffer's end."""
        self._stopped = True
        self.async_follow()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def diagnostics(self) -> dict[str, Any]:
        """Return what the prebuffer is doing (no URL, no secret)."""
        prebuffer = self._prebuffer
        if prebuffer is None:
            return {"running": False}
        seconds, size = prebuffer.buffered()
        return {
            "running": prebuffer.running,
            "camera_connected": prebuffer.connected,
            "audio": prebuffer.audio,
            "buffered_s": round(seconds, 2),
            "buffered_bytes": size,
            **asdict(prebuffer.stats),
        }

    def reader_url(self, purpose: str) -> str | None:
        """Return a fresh name's URL of the prebuffer, if it has the camera open.

        For another reader inside the home (the privacy-mask pipeline), asked
        at each of its connections: each gets the buffered interval.
        """
        prebuffer = self._prebuffer
        if prebuffer is None or not prebuffer.connected:
            return None
        return prebuffer.url(f"{purpose}_{secrets.token_hex(8)}")

    def share_source(self) -> PrebufferedSource | None:
        """Return a new share's reading of the prebuffer, if it has the camera open."""
        prebuffer = self._prebuffer
        if prebuffer is None or not prebuffer.connected:
            return None
        name = f"share_{secrets.token_hex(8)}"
        return PrebufferedSource(
            url=prebuffer.url(name),
            pyav_options=prebuffer.reader_options,
            burst=functools.partial(prebuffer.burst, name),
            lookback_s=prebuffer.lookback(),
        )

    def _background(self, job: Coroutine[Any, Any, None], what: str) -> None:
        task = self._hass.async_create_background_task(
            job, f"{DOMAIN} instant start {what}", eager_start=True
        )
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _async_open(self, prebuffer: Prebuffer) -> None:
        try:
            await prebuffer.async_open()
        except OSError as err:
            _LOGGER.warning("Instant start could not begin: %s", type(err).__name__)
            if self._prebuffer is prebuffer:
                self._prebuffer = None
            await prebuffer.async_close()

    async def _async_camera(self) -> CameraSource | None:
        """Return the camera's stream source and options (asked at each connection)."""
        camera = self._camera()
        try:
            if (url := await async_get_stream_source(self._hass, camera)) is None:
                return None
            return CameraSource(url, camera_pyav_options(self._hass, camera, url))
        except HomeAssistantError:
            return None
