"""The share's HLS, tuned for live viewing.

A share's `Stream` has HLS settings of its own (a segment at every keyframe,
short parts); Home Assistant's `stream:` settings and the camera's own stream
are left as they are. Its HLS outputs can be held to video only, and its
playlists answer after one segment and start players near live.
"""

import asyncio
from collections.abc import Callable, Mapping
from http import HTTPStatus
import re
from typing import Final, cast, override

from aiohttp import web
from homeassistant.components.camera.prefs import DynamicStreamSettings
from homeassistant.components.stream import (
    CONF_EXTRA_PART_WAIT_TIME,
    HLS_PROVIDER,
    Stream,
    create_stream,
)
from homeassistant.components.stream.const import (
    ATTR_STREAMS,
    FORMAT_CONTENT_TYPE,
    SEGMENT_DURATION_ADJUSTER,
    SOURCE_TIMEOUT,
)
from homeassistant.components.stream.core import Segment, StreamOutput, StreamSettings
from homeassistant.components.stream.fmp4utils import get_codec_string
from homeassistant.components.stream.hls import (
    HlsMasterPlaylistView,
    HlsPlaylistView,
    HlsStreamOutput,
)
from homeassistant.core import HomeAssistant, callback

STREAM_DOMAIN: Final = "stream"

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


def create_live_stream(
    hass: HomeAssistant,
    source: str,
    options: Mapping[str, str | bool | float],
    dynamic_settings: DynamicStreamSettings,
    label: str,
) -> LiveHlsStream:
    """Return a registered Stream with the share's own settings, not started."""
    # HA's create_stream validates the camera's options and turns them into
    # PyAV options; the share's Stream takes its place with its own settings.
    template = create_stream(
        hass,
        source,
        options=options,
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    stream = LiveHlsStream(
        hass,
        source,
        # The camera's own options win.
        pyav_options={**FAST_OPEN, **template.pyav_options},
        stream_settings=share_stream_settings(options),
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    streams: list[Stream] = hass.data[STREAM_DOMAIN][ATTR_STREAMS]
    streams[streams.index(template)] = stream
    return stream


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


class LiveHlsStream(Stream):
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
