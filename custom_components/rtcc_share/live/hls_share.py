"""The HLS share: one activation's own stream, from prepare to teardown.

Each activation gets its own `Stream` on the source camera's stream source
(made by `hls_stream`, with HLS settings of its own). It is never given a
`stream` access token, so HA's `/api/hls/` views cannot reach it; it is
served only by `hls_view` under a per-activation token. That lets the view
log every viewer request and makes revocation exact: once the token is
dropped, every URL under it answers 404.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.components.camera.helper import get_camera_from_entity_id
from homeassistant.components.camera.prefs import (
    DynamicStreamSettings,
    get_dynamic_camera_stream_settings,
)
from homeassistant.components.stream import HLS_PROVIDER, Stream
from homeassistant.components.stream.const import ATTR_STREAMS, AUDIO_CODECS
from homeassistant.components.stream.core import StreamOutput
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

from ..const import DOMAIN
from . import tokens
from .hls_stream import STREAM_DOMAIN, create_live_stream
from .viewers import Throttle, ViewerTable

# Keeps the output alive past the share's end, so a viewer who opens the URL
# late still gets video; revocation, not idleness, ends it.
IDLE_MARGIN_S: Final = 60
# Standard RTSP demuxer option: only SETUP the video track, so audio never
# leaves the camera.
RTSP_VIDEO_ONLY: Final = {"allowed_media_types": "video"}


class AudioNotRemovableError(HomeAssistantError):
    """The source carries audio that cannot be filtered out."""


@dataclass(slots=True)
class HlsShare:
    """One activation's dedicated stream and the log of who viewed it."""

    stream: Stream
    token: str = field(default_factory=tokens.HLS.new)
    provider: StreamOutput | None = None
    table: ViewerTable = field(default_factory=ViewerTable)
    revoked: bool = False
    # Tells the resident that new client addresses started viewing.
    viewers_changed: Throttle = field(init=False)
    # Called once if audio the share must not carry shows up in the source
    # (after a reconnect, say); every URL already answers 404 by then.
    on_audio_appeared: Callable[[], None] | None = None
    audio_appeared: bool = False

    def __post_init__(self) -> None:
        """Throttle the viewer count's updates on the stream's Home Assistant."""
        self.viewers_changed = Throttle(self.stream.hass)

    @property
    def path(self) -> str:
        """Return the master playlist's path (no host)."""
        return f"{tokens.HLS.prefix}/{self.token}/master_playlist.m3u8"

    @property
    def viewer_count(self) -> int:
        """Return the number of distinct addresses (others counted up to a cap)."""
        return self.table.count

    def viewer_summary(self) -> list[dict[str, Any]]:
        """Return the kept viewers' records, then the others' sum if any."""
        return self.table.summary()

    def log_request(self, address: str, size: int) -> None:
        """Count one served request."""
        if self.table.log_request(address, size, dt_util.utcnow()):
            self.viewers_changed()

    @callback
    def revoke(self) -> None:
        """End access at once: every URL under the token answers 404 from now."""
        self.revoked = True
        tokens.remove(self.stream.hass, self)

    @callback
    def async_audio_appeared(self) -> None:
        """Withdraw every URL at once, then tell the session."""
        if self.audio_appeared:
            return
        self.audio_appeared = True
        self.revoke()
        self.stream.hass.async_create_background_task(
            self.async_teardown(), f"{DOMAIN} audio appeared"
        )
        if self.on_audio_appeared is not None:
            self.on_audio_appeared()

    def _cleanup_outputs(self) -> None:
        # HA's own shutdown may already have dropped the outputs, not their timers.
        for provider in {self.provider, *self.stream.outputs().values()}:
            if provider is not None:
                provider.cleanup()
                # Releases LL-HLS requests blocked waiting for the next part.
                provider.part_put()

    async def async_teardown(self) -> None:
        """Stop the worker and drop the stream; safe to call again."""
        self.viewers_changed.cancel()
        self._cleanup_outputs()
        await self.stream.stop()
        # A segment the worker queued before it stopped would restart the
        # output's idle timer: let it land, then clear again.
        await asyncio.sleep(0)
        self._cleanup_outputs()
        streams: list[Stream] = self.stream.hass.data[STREAM_DOMAIN][ATTR_STREAMS]
        if self.stream in streams:
            streams.remove(self.stream)


def _has_audio(source: str, pyav_options: dict[str, str]) -> bool:
    """Probe the source for an audio track the stream worker would remux."""
    import av  # noqa: PLC0415

    # The container's stream list is enough: skip decoding-level probing, which
    # on a live source waits for a keyframe.
    options = {**pyav_options, "probesize": "32", "analyzeduration": "0"}
    with av.open(source, options=options, timeout=10) as container:
        return any(
            stream.codec_context.name in AUDIO_CODECS
            for stream in container.streams.audio
        )


async def _async_exclude_audio(hass: HomeAssistant, stream: Stream) -> None:
    """Keep audio out at the source, or raise AudioNotRemovableError."""
    if stream.source.startswith(("rtsp://", "rtsps://")):
        stream.pyav_options.update(RTSP_VIDEO_ONLY)
    elif await hass.async_add_executor_job(
        _has_audio, stream.source, dict(stream.pyav_options)
    ):
        raise AudioNotRemovableError


async def async_prepare(
    hass: HomeAssistant,
    camera_entity_id: str,
    source: str,
    *,
    share_audio: bool,
    duration_s: int,
    local: bool = False,
) -> HlsShare:
    """Create the activation's own stream, not yet started.

    Raise AudioNotRemovableError before anything is granted if the source
    has audio that cannot be kept out; audio that appears later is gated.
    A `local` source is a stream inside the home that already follows the
    audio rule, the camera's masked picture (`masked_source`, video only by
    construction) or instant start's prebuffer (`prebuffer`, audio only if
    shared): it is not probed for audio, and is opened without the camera's
    own options (they were used to read the camera).
    """
    camera = get_camera_from_entity_id(hass, camera_entity_id)
    camera_settings = await get_dynamic_camera_stream_settings(hass, camera_entity_id)
    stream = create_live_stream(
        hass,
        source,
        {} if local else camera.stream_options,
        # A copy: the camera's own settings may ask to preload its stream.
        DynamicStreamSettings(orientation=camera_settings.orientation),
        f"{DOMAIN}.{camera_entity_id}",
    )
    share = HlsShare(stream=stream)
    try:
        if not share_audio:
            # Every reconnect, every kind of source: a segment with audio is
            # never served, and the share ends.
            stream.on_non_video = share.async_audio_appeared
            if not local:
                await _async_exclude_audio(hass, stream)
        share.provider = stream.add_provider(
            HLS_PROVIDER, timeout=duration_s + IDLE_MARGIN_S
        )
    except Exception:
        await share.async_teardown()
        raise
    return share


async def async_start(hass: HomeAssistant, share: HlsShare) -> None:
    """Start a prepared stream and open its URL."""
    try:
        await share.stream.start()
    except Exception:
        await share.async_teardown()
        raise
    tokens.add(hass, share)


async def async_revoke(hass: HomeAssistant, share: HlsShare) -> None:
    """End access at once: the token first, then the worker."""
    share.revoke()
    await share.async_teardown()
