"""A live IP camera for tests: real-time H.264 in MPEG-TS over HTTP.

Like a real camera, and unlike a file, it plays in real time and a new
connection joins in the middle of a keyframe interval. Like an RTSP camera
(the share's stream worker once failed on exactly this), the frames sent
before a connection's first keyframe carry no timestamps. A test can make
it drop (every connection closed, new ones refused with 404) or hang (every
connection kept open but silent, new ones never answered) for some seconds.

Served by Home Assistant's own HTTP server in the test (`LiveCamera.view`),
which the stream worker's thread reaches over loopback TCP.
"""

import asyncio
from fractions import Fraction
import functools
import io
from pathlib import Path
from typing import Final

from aiohttp import web
import av
from homeassistant.helpers.http import HomeAssistantView
import numpy as np

FPS: Final = 10
WIDTH, HEIGHT = 160, 96
# MPEG-TS timestamps tick at 90 kHz.
TICKS: Final = 90000 // FPS
TS_PACKET: Final = 188


@functools.cache
def _clip(keyframe_s: float) -> tuple[tuple[bytes, bool], ...]:
    """Two keyframe intervals of H.264 (Annex B, headers at every keyframe)."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    gop = round(keyframe_s * FPS)
    encoder.options = {
        "bf": "0",
        "g": str(gop),
        "x264-params": f"repeat-headers=1:keyint_min={gop}:scenecut=0",
    }
    packets = []
    for index in range(2 * gop):
        pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        pixels[:, :, 0] = (np.arange(WIDTH) + index * 4) % 256
        pixels[:, :, 1] = index * 3 % 256
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode())
    return tuple((bytes(p), p.is_keyframe) for p in packets)


def _strip_timestamps(data: bytes) -> bytes:
    """Remove PTS and DTS from every PES header in these TS packets."""
    out = bytearray(data)
    for start in range(0, len(out) - TS_PACKET + 1, TS_PACKET):
        if out[start] != 0x47 or not out[start + 1] & 0x40:  # no PES starts here
            continue
        pes = start + 4
        if out[start + 3] & 0x20:  # adaptation field
            pes += 1 + out[start + 4]
        if out[pes : pes + 3] != b"\x00\x00\x01":
            continue
        flags = out[pes + 7]
        size = {0x80: 5, 0xC0: 10}.get(flags & 0xC0, 0)
        out[pes + 7] = flags & 0x3F
        # Stuffing bytes in their place keep every length as it was.
        out[pes + 9 : pes + 9 + size] = b"\xff" * size
    return bytes(out)


class _Sender:
    """The clip as MPEG-TS from a given frame on, one frame at a time.

    Frames before the first keyframe go out without timestamps.
    """

    def __init__(self, clip: tuple[tuple[bytes, bool], ...], first: int) -> None:
        self._clip = clip
        self._next = first
        self._keyframe_seen = False
        self._sink = io.BytesIO()
        self._output = av.open(
            self._sink, "w", format="mpegts", options={"flush_packets": "1"}
        )
        self._stream = self._output.add_stream("h264", rate=FPS)
        self._stream.width, self._stream.height = WIDTH, HEIGHT

    def frame(self) -> bytes:
        """Return the next frame's TS packets."""
        data, keyframe = self._clip[self._next % len(self._clip)]
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = Fraction(1, 90000)
        packet.pts = packet.dts = self._next * TICKS
        packet.is_keyframe = keyframe
        self._output.mux(packet)
        self._next += 1
        self._keyframe_seen = self._keyframe_seen or keyframe
        written = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return written if self._keyframe_seen else _strip_timestamps(written)

    def close(self) -> None:
        """Close the muxer."""
        self._output.close()


def write_recording(
    path: Path, keyframe_s: float, join_s: float, seconds: float
) -> Path:
    """Write what such a camera sends a connection, as an MPEG-TS file."""
    sender = _Sender(_clip(keyframe_s), round(join_s * FPS))
    with path.open("wb") as file:
        for _ in range(round(seconds * FPS)):
            file.write(sender.frame())
    sender.close()
    return path


class LiveCamera:
    """One camera: a keyframe every keyframe_s, joined join_s after a keyframe."""

    def __init__(self, name: str, keyframe_s: float, join_s: float = 0.0) -> None:
        """Serve at /api/test_camera/<name>.ts once `view` is registered."""
        self.path = f"/api/test_camera/{name}.ts"
        self.clip = _clip(keyframe_s)
        self.gop = round(keyframe_s * FPS)
        self.join = round(join_s * FPS)
        self.connections = 0
        self._gone_until = 0.0
        self._silent_until = 0.0
        self._events: set[asyncio.Event] = set()

    @property
    def view(self) -> HomeAssistantView:
        """The view serving the camera (register it with hass.http)."""
        camera = self

        class _View(HomeAssistantView):
            url = camera.path
            name = f"test_camera:{camera.path}"
            requires_auth = False

            async def get(self, request: web.Request) -> web.StreamResponse:
                return await camera.serve(request)

        return _View()

    def drop(self, seconds: float) -> None:
        """Close every connection now; refuse new ones for seconds."""
        self._gone_until = asyncio.get_running_loop().time() + seconds
        self._wake()

    def hang(self, seconds: float) -> None:
        """Keep every connection open and silent for seconds, answer no new one."""
        self._silent_until = asyncio.get_running_loop().time() + seconds
        self._wake()

    def _wake(self) -> None:
        for event in self._events:
            event.set()

    async def _sleep_until(self, moment: float) -> None:
        """Sleep until moment, or until the camera drops or hangs."""
        event = asyncio.Event()
        self._events.add(event)
        try:
            delay = moment - asyncio.get_running_loop().time()
            async with asyncio.timeout(max(delay, 0)):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            self._events.discard(event)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Stream from mid-interval, in real time, until dropped or left."""
        loop = asyncio.get_running_loop()
        while loop.time() < self._silent_until:
            await self._sleep_until(self._silent_until)
        if loop.time() < self._gone_until:
            return web.Response(status=404)
        self.connections += 1
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await response.prepare(request)
        sender = _Sender(self.clip, self.join)
        due = loop.time()
        try:
            while loop.time() >= self._gone_until:
                if loop.time() < self._silent_until:
                    # What was not sent meanwhile is lost, as with a camera.
                    await self._sleep_until(self._silent_until)
                    due = loop.time()
                    continue
                await response.write(sender.frame())
                due += 1 / FPS
                await self._sleep_until(due)
        except ConnectionError:
            pass
        finally:
            sender.close()
        return response

    def __repr__(self) -> str:
        """Say what camera this is (in failing assertions)."""
        return f"LiveCamera({self.path}, gop {self.gop}, join {self.join})"
