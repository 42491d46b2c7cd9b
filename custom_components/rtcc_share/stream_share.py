"""A share's lifecycle and its token-scoped HLS view.

Each activation gets its own `Stream` on the source camera's stream source
(made by `live_hls`, with HLS settings of its own). It is never given a
`stream` access token, so HA's `/api/hls/` views cannot reach it; it is
served only by this module's view under a per-activation token. That lets
the view log every viewer request and makes revocation exact: once the token
is dropped, every URL under it answers 404.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
import re
import secrets
from typing import Any, Final

from aiohttp import web
from homeassistant.components.camera.helper import get_camera_from_entity_id
from homeassistant.components.camera.prefs import (
    DynamicStreamSettings,
    get_dynamic_camera_stream_settings,
)
from homeassistant.components.stream import HLS_PROVIDER, Stream
from homeassistant.components.stream.const import ATTR_STREAMS, AUDIO_CODECS
from homeassistant.components.stream.core import StreamOutput, StreamView
from homeassistant.components.stream.hls import HlsInitView, HlsPartView, HlsSegmentView
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .live_hls import (
    STREAM_DOMAIN,
    ShareMasterPlaylistView,
    SharePlaylistView,
    create_live_stream,
)

URL_PREFIX: Final = f"/api/{DOMAIN}/hls"
# Keeps the output alive past the share's end, so a viewer who opens the URL
# late still gets video; revocation, not idleness, ends it.
IDLE_MARGIN_S: Final = 60
# Standard RTSP demuxer option: only SETUP the video track, so audio never
# leaves the camera.
RTSP_VIDEO_ONLY: Final = {"allowed_media_types": "video"}
# The viewer table, one record each, holds this many addresses; later ones are
# summed into one "other viewers" record, whose distinct addresses are
# counted up to OTHER_VIEWERS_COUNTED.
VIEWERS_KEPT: Final = 50
OTHER_VIEWERS_COUNTED: Final = 10_000
# A flood of new addresses changes the resident's viewer count at most this often.
VIEWER_UPDATE_INTERVAL_S: Final = 1.0

_SHARES: HassKey[dict[str, ShareStream]] = HassKey(f"{DOMAIN}_shares")


_FILES: Final[tuple[tuple[re.Pattern[str], StreamView], ...]] = (
    (re.compile(r"master_playlist\.m3u8"), ShareMasterPlaylistView()),
    (re.compile(r"playlist\.m3u8"), SharePlaylistView()),
    (re.compile(r"init\.mp4"), HlsInitView()),
    (re.compile(r"segment/(?P<sequence>\d{1,12})\.m4s"), HlsSegmentView()),
    (
        re.compile(r"segment/(?P<sequence>\d{1,12})\.(?P<part_num>\d{1,6})\.m4s"),
        HlsPartView(),
    ),
)


class AudioNotRemovableError(HomeAssistantError):
    """The source carries audio that cannot be filtered out."""


@dataclass(slots=True)
class ViewerRecord:
    """What one client address fetched."""

    first: datetime
    last: datetime
    requests: int = 0
    bytes: int = 0

    def as_dict(self, address: str | None) -> dict[str, Any]:
        """Return the record for the audit log: one address's, or the others' sum."""
        return {
            **({} if address is None else {"address": address}),
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "requests": self.requests,
            "bytes": self.bytes,
        }

    def count(self, now: datetime, size: int) -> None:
        """Count one served request."""
        self.last = now
        self.requests += 1
        self.bytes += size


@dataclass(slots=True)
class ShareStream:
    """One activation's dedicated stream and the log of who viewed it."""

    stream: Stream
    token: str
    provider: StreamOutput | None = None
    viewers: dict[str, ViewerRecord] = field(default_factory=dict)
    # The addresses beyond VIEWERS_KEPT, summed: never listed one by one.
    other_viewers: ViewerRecord | None = None
    other_addresses: set[str] = field(default_factory=set)
    revoked: bool = False
    # Called when new client addresses start viewing (the resident sees it):
    # at once, then at most once per VIEWER_UPDATE_INTERVAL_S.
    on_new_viewer: Callable[[], None] | None = None
    _update_unsub: CALLBACK_TYPE | None = field(default=None, init=False, repr=False)
    _update_pending: bool = field(default=False, init=False, repr=False)
    # Called once if audio the share must not carry shows up in the source
    # (after a reconnect, say); every URL already answers 404 by then.
    on_audio_appeared: Callable[[], None] | None = None
    audio_appeared: bool = False

    @property
    def path(self) -> str:
        """Return the master playlist's path (no host)."""
        return f"{URL_PREFIX}/{self.token}/master_playlist.m3u8"

    @property
    def viewer_count(self) -> int:
        """Return the number of distinct addresses (others counted up to a cap)."""
        return len(self.viewers) + len(self.other_addresses)

    def viewer_summary(self) -> list[dict[str, Any]]:
        """Return the kept viewers' records, then the others' sum if any."""
        summary = [record.as_dict(address) for address, record in self.viewers.items()]
        if (others := self.other_viewers) is not None:
            summary.append(
                {"other_addresses": len(self.other_addresses), **others.as_dict(None)}
            )
        return summary

    def log_request(self, address: str, size: int) -> None:
        """Count one served request."""
        now = dt_util.utcnow()
        if (record := self.viewers.get(address)) is None:
            if len(self.viewers) < VIEWERS_KEPT:
                record = self.viewers[address] = ViewerRecord(first=now, last=now)
                self._viewer_added()
            else:
                record = self.other_viewers = self.other_viewers or ViewerRecord(
                    first=now, last=now
                )
                if (
                    address not in self.other_addresses
                    and len(self.other_addresses) < OTHER_VIEWERS_COUNTED
                ):
                    self.other_addresses.add(address)
                    self._viewer_added()
        record.count(now, size)

    @callback
    def _viewer_added(self) -> None:
        if self.on_new_viewer is None:
            return
        if self._update_unsub is not None:
            self._update_pending = True
            return
        self.on_new_viewer()
        self._update_unsub = async_call_later(
            self.stream.hass, VIEWER_UPDATE_INTERVAL_S, self._update_interval_over
        )

    @callback
    def _update_interval_over(self, _now: datetime) -> None:
        self._update_unsub = None
        if self._update_pending:
            self._update_pending = False
            self._viewer_added()

    @callback
    def async_audio_appeared(self) -> None:
        """Withdraw every URL at once, then tell the session."""
        if self.audio_appeared:
            return
        self.audio_appeared = True
        hass = self.stream.hass
        self.revoked = True
        hass.data[_SHARES].pop(self.token, None)
        hass.async_create_background_task(
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
        if self._update_unsub is not None:
            self._update_unsub()
            self._update_unsub = None
        self._cleanup_outputs()
        await self.stream.stop()
        # A segment the worker queued before it stopped would restart the
        # output's idle timer: let it land, then clear again.
        await asyncio.sleep(0)
        self._cleanup_outputs()
        streams: list[Stream] = self.stream.hass.data[STREAM_DOMAIN][ATTR_STREAMS]
        if self.stream in streams:
            streams.remove(self.stream)


def async_setup_view(hass: HomeAssistant) -> None:
    """Register the view once for all entries (from the integration's setup)."""
    hass.data[_SHARES] = {}
    hass.http.register_view(ShareHlsView())


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
) -> ShareStream:
    """Create the activation's own stream, not yet started.

    Raise AudioNotRemovableError before anything is granted if the source
    has audio that cannot be kept out; audio that appears later is gated.
    """
    camera = get_camera_from_entity_id(hass, camera_entity_id)
    camera_settings = await get_dynamic_camera_stream_settings(hass, camera_entity_id)
    stream = create_live_stream(
        hass,
        source,
        camera.stream_options,
        # A copy: the camera's own settings may ask to preload its stream.
        DynamicStreamSettings(orientation=camera_settings.orientation),
        f"{DOMAIN}.{camera_entity_id}",
    )
    share = ShareStream(stream=stream, token=secrets.token_hex(32))
    try:
        if not share_audio:
            # Every reconnect, every kind of source: a segment with audio is
            # never served, and the share ends.
            stream.on_non_video = share.async_audio_appeared
            await _async_exclude_audio(hass, stream)
        share.provider = stream.add_provider(
            HLS_PROVIDER, timeout=duration_s + IDLE_MARGIN_S
        )
    except Exception:
        await share.async_teardown()
        raise
    return share


async def async_start(hass: HomeAssistant, share: ShareStream) -> None:
    """Start a prepared stream and open its URL."""
    try:
        await share.stream.start()
    except Exception:
        await share.async_teardown()
        raise
    hass.data[_SHARES][share.token] = share


async def async_revoke(hass: HomeAssistant, share: ShareStream) -> None:
    """End access at once: the token first, then the worker."""
    share.revoked = True
    hass.data[_SHARES].pop(share.token, None)
    await share.async_teardown()


class ShareHlsView(HomeAssistantView):
    """Serve a share's HLS files under its token, logging each viewer."""

    url = URL_PREFIX + r"/{token:[a-f0-9]{64}}/{file:.+}"
    name = f"api:{DOMAIN}:hls"
    requires_auth = False
    cors_allowed = True

    async def get(
        self, request: web.Request, token: str, file: str
    ) -> web.StreamResponse:
        """Serve one file of a live share, or 404."""
        share = request.app[KEY_HASS].data[_SHARES].get(token)
        match = next(
            (
                (view, found.groupdict())
                for pattern, view in _FILES
                if (found := pattern.fullmatch(file))
            ),
            None,
        )
        if share is None or match is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        view, parts = match
        try:
            response = await view.handle(
                request,
                share.stream,
                parts.get("sequence", ""),
                parts.get("part_num", ""),
            )
        except Exception:
            # A request woken by revocation finds the output torn down.
            if not share.revoked:
                raise
            response = web.Response(status=HTTPStatus.NOT_FOUND)
        if share.revoked:
            # A request that raced the revocation may have restarted the worker.
            await share.async_teardown()
            return web.Response(status=HTTPStatus.NOT_FOUND)
        body = getattr(response, "body", None)
        share.log_request(
            request.remote or "unknown", len(body) if isinstance(body, bytes) else 0
        )
        return response
