"""The HLS share's playlists: answered after one segment, starting players near live.

Players see the worker's segments numbered from 1, not 0 (`SEQUENCE_OFFSET`):
in the playlists, in blocking requests and in the segment and part URLs.
"""

import asyncio
from http import HTTPStatus
import re
from typing import Final, cast, override

from aiohttp import web
from homeassistant.components.stream import HLS_PROVIDER, Stream
from homeassistant.components.stream.const import FORMAT_CONTENT_TYPE, SOURCE_TIMEOUT
from homeassistant.components.stream.core import Segment, StreamOutput
from homeassistant.components.stream.fmp4utils import get_codec_string
from homeassistant.components.stream.hls import (
    HlsMasterPlaylistView,
    HlsPartView,
    HlsPlaylistView,
    HlsSegmentView,
    HlsStreamOutput,
)

from .hls_stream import PART_TARGET_S

# How far behind the newest part a player should stay and start: three part
# targets, the HLS spec's recommended PART-HOLD-BACK.
PART_HOLD_BACK_S: Final = 3 * PART_TARGET_S

# What players see is the worker's media sequence number plus this. hls.js
# (1.7.4, and its main branch) reads a part of segment 0 as no part when it
# checks its buffer after an append (`appendedPart?.fragment.sn || -1`), so
# it forgets segment 0 after each of its parts and, while segment 0 is the
# newest in the playlist, fetches its parts again and again, as fast as the
# link allows, until the next segment's first part is listed.
SEQUENCE_OFFSET: Final = 1
_PUBLIC_NUMBER = re.compile(r"(?:(?<=#EXT-X-MEDIA-SEQUENCE:)|(?<=\./segment/))\d+")


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


def _public_numbers(playlist: str) -> str:
    """Renumber HA's media playlist: its sequence and its segment and part URLs."""
    return _PUBLIC_NUMBER.sub(
        lambda number: str(int(number[0]) + SEQUENCE_OFFSET), playlist
    )


def _worker_sequence(sequence: str) -> str | None:
    """The worker's number of a segment in the share's URLs; None for no segment."""
    number = int(sequence) - SEQUENCE_OFFSET
    return str(number) if number >= 0 else None


def _worker_query(request: web.Request) -> web.Request:
    """The request with its `_HLS_msn` in the worker's numbers.

    A number below the first (0) waits for the first segment. Anything but a
    number of at most 12 digits (as in the URLs) is left for HA's checks.
    """
    msn = request.query.get("_HLS_msn", "")
    if not (msn.isdecimal() and len(msn) <= 12):
        return request
    worker = max(int(msn) - SEQUENCE_OFFSET, 0)
    return request.clone(rel_url=request.rel_url.update_query(_HLS_msn=worker))


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
        playlist = _public_numbers(super().render(track))
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
            return await super().handle(
                _worker_query(request), stream, sequence, part_num
            )
        if await _async_first_segment(stream) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return _m3u8(self.render(cast(HlsStreamOutput, stream.outputs()[HLS_PROVIDER])))


class ShareSegmentView(HlsSegmentView):
    """HA's segment view, under the share's numbers."""

    @override
    async def handle(
        self, request: web.Request, stream: Stream, sequence: str, part_num: str
    ) -> web.StreamResponse:
        if (worker := _worker_sequence(sequence)) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return await super().handle(request, stream, worker, part_num)


class SharePartView(HlsPartView):
    """HA's part view, under the share's numbers."""

    @override
    async def handle(
        self, request: web.Request, stream: Stream, sequence: str, part_num: str
    ) -> web.Response:
        if (worker := _worker_sequence(sequence)) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return await super().handle(request, stream, worker, part_num)
