"""A live camera whose keyframes the test knows: real-time H.264 (+ AAC) in MPEG-TS.

The camera runs on its own clock from the moment it starts: frame `n` is
due `n / FPS` seconds in, a keyframe every `keyframe_s`, whether or not
anyone is connected. A connection joins at the frame due now (mid-GOP, as
with a real camera). Every frame carries its number twice: as its PTS
(`n * TICKS`), and painted into the picture (`frame_number`), which
survives any remux or re-encode. The picture is otherwise bright and
moving everywhere (`mask_video.bright_planes`), so masks can be checked.

Served on its own loopback port (aiohttp, like `mask_video.LiveFeed`);
connections are counted, and the camera can drop every connection.
"""

import asyncio
from fractions import Fraction
import functools
import io
import socket
from typing import Final, Self

from aiohttp import web
import av
import numpy as np

from .mask_video import bright_planes

FPS: Final = 10
WIDTH, HEIGHT = 192, 128
TICKS: Final = 90_000 // FPS
# The frame number is painted as 8 bits, most significant first: 16x16
# blocks along the bottom left, white for 1, black for 0.
BITS: Final = 8
BLOCK: Final = 16
AUDIO_RATE: Final = 16_000
AUDIO_FRAME: Final = 1024


@functools.cache
def clip(keyframe_s: float) -> tuple[tuple[bytes, bool], ...]:
    """Two keyframe intervals of H.264 (Annex B), frame n numbered n."""
    gop = round(keyframe_s * FPS)
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.options = {
        "bf": "0",
        "g": str(gop),
        "crf": "20",
        "x264-params": f"repeat-headers=1:keyint_min={gop}:scenecut=0",
    }
    packets = []
    for number in range(2 * gop):
        planes = bright_planes(number, WIDTH, HEIGHT)
        for bit in range(BITS):
            on = number >> (BITS - 1 - bit) & 1
            planes[HEIGHT - BLOCK : HEIGHT, bit * BLOCK : (bit + 1) * BLOCK] = (
                235 if on else 16
            )
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = number
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode())
    assert len(packets) == 2 * gop
    return tuple((bytes(p), p.is_keyframe) for p in packets)


@functools.cache
def _audio_frame() -> bytes:
    """One AAC frame of a quiet tone, with its ADTS header."""
    sink = io.BytesIO()
    with av.open(sink, "w", format="adts") as output:
        stream = output.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        samples = np.sin(np.arange(AUDIO_FRAME * 4) / 5).astype(np.float32) * 0.1
        for index in range(4):
            frame = av.AudioFrame.from_ndarray(
                samples[None, index * AUDIO_FRAME : (index + 1) * AUDIO_FRAME],
                format="fltp",
                layout="mono",
            )
            frame.sample_rate, frame.pts = AUDIO_RATE, index * AUDIO_FRAME
            output.mux(stream.encode(frame))
            if sink.tell():
                break
    data = sink.getvalue()
    # The first ADTS frame only.
    return data[: (data[3] & 0x03) << 11 | data[4] << 3 | data[5] >> 5]


def frame_number(frame: av.VideoFrame) -> int:
    """Return the number painted into a decoded frame (modulo 256)."""
    luma = frame.to_ndarray(format="gray")
    height = luma.shape[0]
    number = 0
    for bit in range(BITS):
        block = luma[
            height - BLOCK + 4 : height - 4, bit * BLOCK + 4 : (bit + 1) * BLOCK - 4
        ]
        number = number << 1 | int(block.mean() > 128)
    return number


class _Sender:
    """One connection's MPEG-TS muxer."""

    def __init__(self, audio: bool) -> None:
        self._sink = io.BytesIO()
        self._output = av.open(
            self._sink, "w", format="mpegts", options={"flush_packets": "1"}
        )
        self._video = self._output.add_stream("h264", rate=FPS)
        self._video.width, self._video.height = WIDTH, HEIGHT
        self._audio = None
        if audio:
            self._audio = self._output.add_stream("aac", rate=AUDIO_RATE)
            self._audio.layout = "mono"
        self._audio_sent = 0

    def frame(self, number: int, data: bytes, keyframe: bool) -> bytes:
        """Return the TS packets of video frame `number` and the audio up to it."""
        packet = av.Packet(data)
        packet.stream = self._video
        packet.time_base = Fraction(1, 90_000)
        packet.pts = packet.dts = number * TICKS
        packet.is_keyframe = keyframe
        self._output.mux(packet)
        if self._audio is not None:
            ticks = AUDIO_FRAME * 90_000 // AUDIO_RATE
            if not self._audio_sent:
                self._audio_sent = number * TICKS // ticks
            while self._audio_sent * ticks <= number * TICKS:
                sound = av.Packet(_audio_frame())
                sound.stream = self._audio
                sound.time_base = Fraction(1, 90_000)
                sound.pts = sound.dts = self._audio_sent * ticks
                self._output.mux(sound)
                self._audio_sent += 1
        written = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return written

    def close(self) -> None:
        self._output.close()


class GopCamera:
    """The camera: a keyframe every keyframe_s, on its own clock."""

    def __init__(self, keyframe_s: float = 1.0, *, audio: bool = False) -> None:
        """Run once started (as an async context manager)."""
        self.clip = clip(keyframe_s)
        self.gop = round(keyframe_s * FPS)
        self.audio = audio
        self.url = ""
        self.connections = 0
        self.open = 0
        self._started = 0.0
        self._runner: web.AppRunner | None = None
        self._drop = asyncio.Event()

    async def __aenter__(self) -> Self:
        """Start the clock; listen on an ephemeral loopback port."""
        app = web.Application()
        app.router.add_get("/camera.ts", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/camera.ts"
        self._started = asyncio.get_running_loop().time()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving."""
        assert self._runner is not None
        self.drop()
        await self._runner.cleanup()

    def now(self) -> int:
        """Return the number of the frame due now."""
        return int((asyncio.get_running_loop().time() - self._started) * FPS)

    def due(self, number: int) -> float:
        """Return when (event loop time) frame `number` is sent."""
        return self._started + number / FPS

    def keyframe_at_or_before(self, number: int) -> int:
        """Return the number of the newest keyframe at or before frame `number`."""
        return number // self.gop * self.gop

    def drop(self) -> None:
        """End every connection now (new ones are served)."""
        self._drop.set()
        self._drop = asyncio.Event()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        self.connections += 1
        self.open += 1
        drop = self._drop
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        sender = _Sender(self.audio)
        number = self.now()
        try:
            await response.prepare(request)
            while not drop.is_set():
                data, keyframe = self.clip[number % len(self.clip)]
                await response.write(sender.frame(number, data, keyframe))
                number += 1
                delay = self.due(number) - loop.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await drop.wait()
                    except TimeoutError:
                        pass
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            sender.close()
        return response
