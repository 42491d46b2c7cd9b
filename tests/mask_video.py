"""Real H.264 for the privacy-mask tests: bright, moving, detailed everywhere.

Every pixel is bright (luma 100-235) and changes from frame to frame, right
up to any mask's edges, so a masked box that lets anything of the camera's
through shows it.
"""

import asyncio
from collections.abc import Sequence
from fractions import Fraction
import io
from pathlib import Path
import socket
import threading
import time
from typing import Any, Self

from aiohttp import web
import av
import numpy as np

from custom_components.rtcc_share.live.mask_frames import MACROBLOCK
from custom_components.rtcc_share.live.masks import Mask, mask_box

FPS = 10


def bright_planes(index: int, width: int, height: int, detail: int = 2) -> np.ndarray:
    """Return frame `index` as a yuv420p array (luma rows, then U, then V).

    Moving diagonal stripes, 64 / detail pixels apart; with more detail, a
    moving sawtooth too (more than the masked view's bitrate cap carries).
    """
    y, x = np.mgrid[0:height, 0:width]
    stripes = ((x * detail + y * 2 + index * 8) % 64) < 32
    ramp = (x + y + index) % 36 if detail > 2 else y * 35 // height
    luma = 100 + 100 * stripes + ramp
    chroma_y, chroma_x = np.mgrid[0 : height // 2, 0 : width // 2]
    u = (chroma_x * 3 + index * 9) % 200 + 28
    v = (chroma_y * 5 + index * 7) % 200 + 28
    return np.concatenate(
        [
            luma.astype(np.uint8),
            *(p.astype(np.uint8).reshape(-1, width) for p in (u, v)),
        ]
    )


def make_bright_video(
    path: Path,
    width: int = 352,
    height: int = 288,
    seconds: float = 4,
    fps: int = FPS,
    detail: int = 2,
) -> Path:
    """Write an MP4 of the bright pattern; a keyframe every second, no audio."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = fps
        video.codec_context.options = {"bf": "0", "sc_threshold": "0", "crf": "18"}
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(
                bright_planes(index, width, height, detail), format="yuv420p"
            )
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


def luma(frame: av.VideoFrame) -> np.ndarray:
    """Return a decoded frame's luma plane (limited range, as H.264 carries it)."""
    assert frame.format.name == "yuv420p"
    plane = frame.planes[0]
    return (
        np.frombuffer(plane, np.uint8)
        .reshape(-1, plane.line_size)[: plane.height, : plane.width]
        .copy()
    )


def painted_area(masks: Sequence[Mask], width: int, height: int) -> np.ndarray:
    """Return where the masks are painted: whole macroblocks around each."""
    painted = np.zeros((height, width), dtype=bool)
    for mask in masks:
        x0, y0, x1, y1 = mask_box(mask, width, height, MACROBLOCK)
        painted[y0:y1, x0:x1] = True
    return painted


def brightest_masked(picture: np.ndarray, masks: Sequence[Mask]) -> int:
    """Return the brightest luma inside any mask's own rectangle."""
    height, width = picture.shape
    return max(
        int(picture[y0:y1, x0:x1].max())
        for x0, y0, x1, y1 in (mask_box(mask, width, height) for mask in masks)
    )


class LiveFeed:
    """A clip as a live camera: looped, real-time MPEG-TS over loopback HTTP.

    Each connection starts at the clip's start (a keyframe) and is counted.
    """

    def __init__(self, clip: Path) -> None:
        """Serve this clip once started."""
        self.clip = clip
        self.url = ""
        self.connections = 0
        self.open = 0
        self._runner: web.AppRunner | None = None
        self._threads: list[threading.Thread] = []

    async def __aenter__(self) -> Self:
        """Listen on an ephemeral loopback port."""
        app = web.Application()
        app.router.add_get("/live.ts", self._live)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/live.ts"
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving; wait for every serving thread."""
        assert self._runner is not None
        await self._runner.cleanup()
        for thread in self._threads:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)

    async def _live(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        self.open += 1
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        stop = threading.Event()

        class Sink(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: Any) -> int:
                loop.call_soon_threadsafe(queue.put_nowait, bytes(data))
                return len(data)

        thread = threading.Thread(target=self._serve, args=(Sink(), stop))
        self._threads.append(thread)
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        try:
            await response.prepare(request)
            thread.start()
            while True:
                await response.write(await queue.get())
        except ConnectionError:
            pass
        finally:
            stop.set()
            self.open -= 1
        return response

    def _serve(self, sink: io.RawIOBase, stop: threading.Event) -> None:
        """Remux the clip, looped, at real-time pace until stop."""
        with av.open(sink, "w", format="mpegts") as out:
            stream: Any = None
            started = time.monotonic()
            offset = 0  # in the clip's time base
            while not stop.is_set():
                with av.open(str(self.clip)) as source:
                    video = source.streams.video[0]
                    base = video.time_base or Fraction(1, 90_000)
                    stream = stream or out.add_stream_from_template(video)
                    end = offset
                    for packet in source.demux(video):
                        if stop.is_set() or packet.pts is None:
                            break
                        packet.pts += offset
                        packet.dts = (packet.dts or 0) + offset
                        end = max(end, packet.pts + (packet.duration or 0))
                        ahead = float(packet.pts * base) - (time.monotonic() - started)
                        if ahead > 0:
                            stop.wait(ahead)
                        packet.stream = stream
                        out.mux(packet)
                    offset = end
