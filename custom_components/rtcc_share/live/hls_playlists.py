"""The HLS share's playlists: answered after one segment, starting players near live.

Players see the worker's segments numbered from 1, not 0 (`SEQUENCE_OFFSET`):
in the playlists, in blocking requests and in the segment and part URLs.

While the share is live they never answer 404: a playlist that cannot be
made yet (the camera has sent nothing usable since the grant) is a 503 a
player retries; 404 means the share has ended.
"""

import asyncio
from dataclasses import replace
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

from . import hls_reload
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


def _not_yet() -> web.Response:
    """The share is live but has no video yet: come back soon."""
    return web.Response(
        status=HTTPStatus.SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
    )


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
            return _not_yet()
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
        # A connection's first segment may end before the camera's next
        # keyframe: players must not take every segment as a starting point.
        playlist = _public_numbers(super().render(track)).replace(
            "#EXT-X-INDEPENDENT-SEGMENTS\n", ""
        )
        # HA keeps the EXT-X-DISCONTINUITY a segment was first listed with,
        # also once it is the first segment, whose discontinuity sequence
        # number EXT-X-DISCONTINUITY-SEQUENCE already is (hls.js then counts
        # one discontinuity too many and gives up).
        playlist = re.sub(
            r"^(#EXT-X-START:.*\n)#EXT-X-DISCONTINUITY\n",
            r"\1",
            playlist,
            flags=re.MULTILINE,
        )
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
        try:
            wanted = hls_reload.parse(request.query)
        except ValueError:
            return web.Response(status=HTTPStatus.BAD_REQUEST)
        if wanted is None:
            if await _async_first_segment(stream) is None:
                return _not_yet()
        else:
            # In the worker's numbers; one below the first waits for the first.
            wanted = replace(wanted, msn=max(wanted.msn - SEQUENCE_OFFSET, 0))
            track = cast(HlsStreamOutput, stream.add_provider(HLS_PROVIDER))
            await stream.start()
            if wanted.too_far_ahead(track):
                return web.Response(status=HTTPStatus.BAD_REQUEST)
            if not await hls_reload.async_wait(stream, track, wanted, SOURCE_TIMEOUT):
                return web.Response(status=HTTPStatus.NOT_FOUND)  # the share ended
            if track.last_segment is None:
                return _not_yet()
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
