"""The only code that touches Home Assistant's `stream` component.

Each activation gets its own `Stream` on the source camera's stream source.
It is never given a `stream` access token, so HA's `/api/hls/` views cannot
reach it; it is served only by this module's view under a per-activation
token. That lets the view log every viewer request and makes revocation
exact: once the token is dropped, every URL under it answers 404.

The share's stream has HLS settings of its own, chosen for live viewing (a
segment at every keyframe, short parts); Home Assistant's `stream:` settings
and the camera's own stream are left as they are.
"""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
import re
import secrets
from typing import Any, Final, cast, override

from aiohttp import web
from homeassistant.components.camera.helper import get_camera_from_entity_id
from homeassistant.components.camera.prefs import (
    DynamicStreamSettings,
    get_dynamic_camera_stream_settings,
)
from homeassistant.components.stream import (
    CONF_EXTRA_PART_WAIT_TIME,
    HLS_PROVIDER,
    Stream,
    create_stream,
)
from homeassistant.components.stream.const import (
    ATTR_STREAMS,
    AUDIO_CODECS,
    FORMAT_CONTENT_TYPE,
    SEGMENT_DURATION_ADJUSTER,
    SOURCE_TIMEOUT,
)
from homeassistant.components.stream.core import (
    Segment,
    StreamOutput,
    StreamSettings,
    StreamView,
)
from homeassistant.components.stream.fmp4utils import get_codec_string
from homeassistant.components.stream.hls import (
    HlsInitView,
    HlsMasterPlaylistView,
    HlsPartView,
    HlsPlaylistView,
    HlsSegmentView,
    HlsStreamOutput,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

STREAM_DOMAIN: Final = "stream"
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
# The worker opens the source without estimating its frame rate, which reads
# about 20 frames first (1.3 s at 15 fps, before anything is muxed); it
# still waits for the codec parameters. Nothing downstream uses the rate.
FAST_OPEN: Final = {"fpsprobesize": "0"}
# HA cuts a segment at the first keyframe past the minimum duration, so this
# gives a segment per keyframe, at most one a second: the first picture is
# playable one keyframe interval after the source opens.
SEGMENT_MIN_S: Final = 1.0
# HA's worker cuts a part once 0.9 x this has passed, and reports no part as
# longer than this. At 0.55 s a 1 s keyframe interval splits into two even
# parts at 10, 12, 15, 20, 25 and 30 fps, none longer than the target; at
# 0.5 s most of those rates leave a one-frame third part, a request of its own.
PART_TARGET_S: Final = 0.55

# How far behind the newest part a player should stay and start: three part
# targets, the HLS spec's recommended PART-HOLD-BACK.
PART_HOLD_BACK_S: Final = 3 * PART_TARGET_S

_SHARES: HassKey[dict[str, ShareStream]] = HassKey(f"{DOMAIN}_shares")


def _newest_complete(track: StreamOutput) -> Segment | None:
    return next((s for s in reversed(track.get_segments()) if s.complete), None)


async def _async_first_segment(stream: Stream) -> Segment | None:
    """Wait until a complete segment exists; None if the share's output went."""
    track = stream.add_provider(HLS_PROVIDER)
    await stream.start()
    deadline = asyncio.get_running_loop().time() + SOURCE_TIMEOUT
    while (segment := _newest_complete(track)) is None:
        if (
            stream.outputs().get(HLS_PROVIDER) is not track
            or asyncio.get_running_loop().time() > deadline
        ):
            return None
        # Every part wakes this, the one completing a segment included.
        await track.part_recv(timeout=track.stream_settings.hls_part_timeout)
    return segment


def _m3u8(body: str) -> web.Response:
    response = web.Response(
        body=body.encode(), headers={"Content-Type": FORMAT_CONTENT_TYPE[HLS_PROVIDER]}
    )
    response.enable_compression(web.ContentCoding.gzip)
    return response


class ShareMasterPlaylistView(HlsMasterPlaylistView):
    """HA's master playlist, answered once one segment is complete, not two."""

    @override
    async def handle(
        self, request: web.Request, stream: Stream, sequence: str, part_num: str
    ) -> web.Response:
        if (segment := await _async_first_segment(stream)) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        # As HA computes them, from that segment and its init section.
        bandwidth = round(segment.data_size_with_init * 8 / segment.duration * 1.2)
        # HA writes an H.264 level below 1.6 with one hex digit ("avc1.6400a"),
        # which browsers refuse as an unknown codec.
        codecs = re.sub(
            r"\b(avc[1-4]\.[0-9a-f]{4})([0-9a-f])(?=,|$)",
            r"\g<1>0\2",
            get_codec_string(segment.init),
        )
        return _m3u8(
            f'#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codecs}"\n'
            "playlist.m3u8\n"
        )


class SharePlaylistView(HlsPlaylistView):
    """HA's media playlist; a plain request is answered after one segment."""

    @classmethod
    @override
    def render(cls, track: HlsStreamOutput) -> str:
        playlist = super().render(track)
        if not track.stream_settings.ll_hls:  # HA turns it off for HLS sources
            return playlist
        # Players start and stay this far behind the newest part.
        return re.sub(
            r"PART-HOLD-BACK=[\d.]+(?P<rest>\n#EXT-X-START:TIME-OFFSET=)-[\d.]+",
            rf"PART-HOLD-BACK={PART_HOLD_BACK_S:.3f}\g<rest>-{PART_HOLD_BACK_S:.3f}",
            playlist,
        )

    @override
    async def handle(
        self, request: web.Request, stream: Stream, sequence: str, part_num: str
    ) -> web.Response:
        if request.query.get("_HLS_msn") or request.query.get("_HLS_part"):
            return await super().handle(request, stream, sequence, part_num)
        if await _async_first_segment(stream) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return _m3u8(self.render(cast(HlsStreamOutput, stream.outputs()[HLS_PROVIDER])))


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


def _boxes(data: bytes, kind: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Return (start, end) of each box of this kind directly in data[start:end]."""
    found = []
    while start + 8 <= end:
        size = int.from_bytes(data[start : start + 4]) or end - start
        if size < 8:
            break
        if data[start + 4 : start + 8] == kind:
            found.append((start, min(start + size, end)))
        start += size
    return found


def has_non_video_track(init: bytes) -> bool:
    """Return True if an MP4 init section declares any track but video."""
    for moov in _boxes(init, b"moov", 0, len(init)):
        for trak in _boxes(init, b"trak", moov[0] + 8, moov[1]):
            handlers = [
                init[hdlr[0] + 16 : hdlr[0] + 20]
                for mdia in _boxes(init, b"mdia", trak[0] + 8, trak[1])
                for hdlr in _boxes(init, b"hdlr", mdia[0] + 8, mdia[1])
            ]
            # A track whose kind cannot be read counts as not video.
            if handlers != [b"vide"]:
                return True
    return False


class _VideoOnlyHlsOutput(HlsStreamOutput):
    """HA's HLS output that never keeps a segment carrying anything but video.

    HA's worker reopens the source on every reconnect and remuxes whatever
    audio it finds then; every segment's init section says what it carries,
    and it is known before any of the segment's data can be served.
    """

    on_non_video: Callable[[], None]

    @callback
    @override
    def _async_put(self, segment: Segment) -> None:
        if has_non_video_track(segment.init):
            # Dropped: no viewer can ask for it, nor for its parts.
            self.on_non_video()
            return
        super()._async_put(segment)


class _ShareStreamCore(Stream):
    """A share's Stream: every HLS output it makes can be held to video only."""

    # Set when the share carries no audio.
    on_non_video: Callable[[], None] | None = None

    @override
    def add_provider(self, fmt: str, timeout: int | None = None) -> StreamOutput:
        provider = super().add_provider(fmt, timeout)
        # Also outputs made again after HA dropped an idle one.
        if self.on_non_video is not None and type(provider) is HlsStreamOutput:
            # The output HA made, with the gate (same state, one method more).
            provider.__class__ = _VideoOnlyHlsOutput
            cast(_VideoOnlyHlsOutput, provider).on_non_video = self.on_non_video
        return provider


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


def share_stream_settings(options: Mapping[str, str | bool | float]) -> StreamSettings:
    """Return a share's LL-HLS settings, the rest derived as HA derives its own."""
    return StreamSettings(
        ll_hls=True,
        min_segment_duration=SEGMENT_MIN_S - SEGMENT_DURATION_ADJUSTER,
        part_target_duration=PART_TARGET_S,
        hls_advance_part_limit=max(int(3 / PART_TARGET_S), 3),
        hls_part_timeout=2 * PART_TARGET_S
        + float(options.get(CONF_EXTRA_PART_WAIT_TIME, 0)),
    )


def _create_stream(
    hass: HomeAssistant,
    source: str,
    options: Mapping[str, str | bool | float],
    dynamic_settings: DynamicStreamSettings,
    label: str,
) -> _ShareStreamCore:
    """Return a registered Stream with the share's own settings."""
    # HA's create_stream validates the camera's options and turns them into
    # PyAV options; the share's Stream takes its place with its own settings.
    template = create_stream(
        hass,
        source,
        options=options,
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    stream = _ShareStreamCore(
        hass,
        source,
        pyav_options=template.pyav_options,
        stream_settings=share_stream_settings(options),
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    streams: list[Stream] = hass.data[STREAM_DOMAIN][ATTR_STREAMS]
    streams[streams.index(template)] = stream
    return stream


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
    stream = _create_stream(
        hass,
        source,
        camera.stream_options,
        # A copy: the camera's own settings may ask to preload its stream.
        DynamicStreamSettings(orientation=camera_settings.orientation),
        f"{DOMAIN}.{camera_entity_id}",
    )
    # The camera's own options win.
    stream.pyav_options = {**FAST_OPEN, **stream.pyav_options}
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
