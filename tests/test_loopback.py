"""Tests for the loopback stream sources' shared parts: readers and the server."""

import asyncio
from fractions import Fraction
import io

import aiohttp
from aiohttp import web
import av
from av.container import OutputContainer
from av.stream import Stream
import pytest

from custom_components.rtcc_share.live.loopback import (
    LoopbackReader,
    LoopbackServer,
    async_send,
)


@pytest.fixture(autouse=True)
def loopback(socket_enabled: None) -> None:
    """The server listens on loopback."""


def _h264(container: OutputContainer) -> list[Stream]:
    stream = container.add_mux_stream("h264", rate=25)
    stream.time_base = Fraction(1, 90_000)
    return [stream]


def _packets(count: int) -> list[av.Packet[Stream]]:
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = 64, 48, "yuv420p"
    codec.time_base = Fraction(1, 90_000)
    codec.options = {"tune": "zerolatency"}
    packets = []
    for index in range(count):
        frame = av.VideoFrame(64, 48, "yuv420p")
        frame.pts, frame.time_base = index * 3600, codec.time_base
        packets.extend(codec.encode(frame))
    return packets


async def test_a_reader_far_behind_is_cut_off() -> None:
    """A reader that stops reading is ended, not buffered without bound."""
    reader = LoopbackReader(asyncio.get_running_loop(), _h264, buffer_bytes=10)
    reader._put(b"12345678", 0.0)
    reader._put(b"12345678", 0.0)
    assert reader.ended
    reader._put(b"1", 0.0)
    assert reader.queue.get_nowait() is None
    assert reader.queue.empty()


async def test_a_reader_starts_at_a_keyframe() -> None:
    """Packets before a reader's first keyframe are not sent to it."""
    key, delta = _packets(2)
    assert key.is_keyframe and not delta.is_keyframe
    reader = LoopbackReader(asyncio.get_running_loop(), _h264)
    reader.mux(delta, 0.0)
    assert not reader.started
    reader.mux(key, 0.0, index=1)  # not the video
    assert not reader.started
    reader.mux(key, 0.0)
    reader.mux(delta, 0.0)
    await asyncio.sleep(0)
    first, _ = reader.queue.get_nowait()
    assert first[0] == 0x47  # MPEG-TS
    assert reader.queue.qsize() == 1
    reader.close_muxer()
    reader.close_muxer()


async def test_shifted_timestamps() -> None:
    """A reader's timestamps are shifted by its own amount."""
    reader = LoopbackReader(asyncio.get_running_loop(), _h264, shift=90_000)
    for packet in _packets(3):
        reader.mux(packet, 0.0)
    await asyncio.sleep(0)
    data = b""
    while not reader.queue.empty():
        item = reader.queue.get_nowait()
        assert item is not None
        data += item[0]
    reader.close_muxer()
    with av.open(io.BytesIO(data), format="mpegts") as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert [p.pts for p in packets] == [90_000, 93_600, 97_200]
    assert packets[0].is_keyframe


async def test_server_needs_the_secret_and_streams() -> None:
    """Only the URL's credentials open a path; a reader's bytes are streamed."""
    loop = asyncio.get_running_loop()
    reader = LoopbackReader(loop, _h264)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await async_send(request, reader, sent.append)

    sent: list[float] = []
    server = LoopbackServer({"/x.ts": handle})
    assert not server.is_open
    with pytest.raises(RuntimeError):
        server.url("/x.ts")
    await server.async_open()
    url = server.url("/x.ts")
    assert url.startswith("http://rtcc_share:") and "@127.0.0.1:" in url
    bare = "http://" + url.split("@")[1]
    async with aiohttp.ClientSession() as session:
        async with session.get(bare) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        reader._put(b"abc", 1.0)
        loop.call_later(0.05, reader.end)
        async with session.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp2t"
            assert await response.read() == b"abc"
    assert sent == [1.0]
    await server.async_close()
    await server.async_close()
    assert not server.is_open
