"""The demo doorbell camera and the live MPEG-TS view that feeds it."""

import asyncio
from collections.abc import Iterator
from fractions import Fraction
import io
from pathlib import Path
import threading
import time
from typing import Any

from aiohttp import web
import av
from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
from homeassistant.util import dt as dt_util
import numpy as np
from PIL import Image, ImageDraw

FPS = 15
SECONDS = 30
WIDTH, HEIGHT = 640, 360
LIVE_PATH = "/api/demo_doorbell/live.ts"
LOOPBACK = {"127.0.0.1", "::1"}


def _draw(index: int) -> Image.Image:
    """One frame: moving colour bars, the clip clock, a caption."""
    x = np.arange(WIDTH)
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    phase = (x + index * 6) % WIDTH
    pixels[:, :, 0] = (phase * 255 // WIDTH).astype(np.uint8)
    pixels[:, :, 1] = ((WIDTH - phase) * 255 // WIDTH).astype(np.uint8)
    pixels[:, :, 2] = 96
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    seconds = index / FPS
    draw.rectangle((20, 20, 620, 120), fill=(0, 0, 0))
    draw.text((36, 28), "RTCC demo doorbell", fill=(255, 255, 255), font_size=28)
    draw.text(
        (36, 64),
        f"clip time {int(seconds // 60):02d}:{seconds % 60:04.1f}",
        fill=(255, 220, 0),
        font_size=40,
    )
    return image


def generate_clip(path: Path) -> Path:
    """Encode the clip once: H.264, a keyframe every second, no audio."""
    if path.exists():
        return path
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = FPS
        stream.codec_context.options = {
            "bf": "0",
            "sc_threshold": "0",
            "preset": "veryfast",
        }
        for index in range(SECONDS * FPS):
            frame = av.VideoFrame.from_image(_draw(index))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    partial.replace(path)
    return path


class _QueueWriter(io.RawIOBase):
    """File-like sink that hands muxed bytes to the event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]
    ) -> None:
        """Write into this loop's queue."""
        self._loop = loop
        self._queue = queue

    def writable(self) -> bool:
        """Accept writes."""
        return True

    def write(self, data: Any) -> int:
        """Block until the event loop has queued the bytes."""
        chunk = bytes(data)
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()
        return len(chunk)


def _packets(clip: Path, stop: threading.Event) -> Iterator[tuple[av.Packet, float]]:
    """The clip's packets forever, timestamps continued across loops."""
    offset = 0
    while not stop.is_set():
        with av.open(str(clip)) as source:
            video = source.streams.video[0]
            base = video.time_base or Fraction(1, 90000)
            end = offset
            for packet in source.demux(video):
                if stop.is_set():  # the viewer left: stop now, not after the pass
                    return
                if packet.pts is None:
                    continue
                packet.pts += offset
                packet.dts = (packet.dts or 0) + offset
                end = max(end, packet.pts + (packet.duration or 0))
                yield packet, float(packet.pts * base)
            offset = end


def _serve(clip: Path, writer: _QueueWriter, stop: threading.Event) -> None:
    """Remux the clip into MPEG-TS at real-time pace until the viewer leaves."""
    with av.open(str(clip)) as template, av.open(writer, "w", format="mpegts") as out:
        stream = out.add_stream_from_template(template.streams.video[0])
        start = time.monotonic()
        for packet, at in _packets(clip, stop):
            if (ahead := at - (time.monotonic() - start)) > 0:
                time.sleep(ahead)
            packet.stream = stream
            out.mux(packet)


class LiveView(HomeAssistantView):
    """Serve the endless stream to loopback clients only."""

    url = LIVE_PATH
    name = "api:demo_doorbell:live"
    requires_auth = False

    def __init__(self, clip: Path) -> None:
        """Serve this clip."""
        self.clip = clip

    async def get(self, request: web.Request) -> web.StreamResponse:
        """Stream until the client disconnects."""
        if request.remote not in LOOPBACK:
            return web.Response(status=403)
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)
        stop = threading.Event()
        writer = _QueueWriter(asyncio.get_running_loop(), queue)
        thread = threading.Thread(
            target=_serve,
            args=(self.clip, writer, stop),
            name="demo_doorbell",
            daemon=True,
        )
        thread.start()
        try:
            while True:
                await response.write(await queue.get())
        except ConnectionResetError, asyncio.CancelledError:
            pass
        finally:
            stop.set()
            while not queue.empty() or thread.is_alive():
                # Unblock a writer waiting on a full queue so the thread can end.
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.05)
        return response


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Generate the clip (once), serve it, and add the camera."""
    clip = await hass.async_add_executor_job(
        generate_clip, Path(hass.config.path("demo_doorbell.mp4"))
    )
    hass.http.register_view(LiveView(clip))
    async_add_entities([DemoDoorbell(hass)])


class DemoDoorbell(Camera):
    """A doorbell whose stream source is the loopback live view."""

    _attr_name = "Demo doorbell"
    _attr_unique_id = "demo_doorbell"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, hass: HomeAssistant) -> None:
        """Point at the live view on this instance's port."""
        super().__init__()
        port = hass.http.server_port or 8123
        self._source = f"http://127.0.0.1:{port}{LIVE_PATH}"

    async def stream_source(self) -> str:
        """Return the loopback MPEG-TS URL."""
        return self._source

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes:
        """Return the test pattern at the current clip time."""
        index = int(dt_util.utcnow().timestamp() * FPS) % (SECONDS * FPS)
        buffer = io.BytesIO()
        _draw(index).save(buffer, "JPEG")
        return buffer.getvalue()
