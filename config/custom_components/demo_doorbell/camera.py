"""The demo doorbell camera and the live MPEG-TS view that feeds it."""

import asyncio
import io
from pathlib import Path
import threading
import time
from typing import Any

from aiohttp import web
import av
from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
from homeassistant.util import dt as dt_util

from .clip import FPS, SECONDS, Stopped, draw, generate_clip, packets
from .webrtc import async_setup_webrtc

LIVE_PATH = "/api/demo_doorbell/live.ts"
LOOPBACK = {"127.0.0.1", "::1"}


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


def _serve(clip: Path, writer: _QueueWriter, stop: threading.Event) -> None:
    """Remux the clip into MPEG-TS at real-time pace until the viewer leaves."""
    with av.open(str(clip)) as template, av.open(writer, "w", format="mpegts") as out:
        stream = out.add_stream_from_template(template.streams.video[0])
        start = time.monotonic()
        for packet, at in packets(clip, stop):
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
    """Add the camera once its clip exists, without holding up the start."""
    path = Path(hass.config.path("demo_doorbell.mp4"))
    stop = threading.Event()

    @callback
    def _stopping(_: Event) -> None:
        stop.set()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stopping)

    async def _offer() -> None:
        # The first start encodes the clip (seconds); the camera appears
        # only when it can stream, so nobody picks a camera that cannot.
        try:
            clip = await hass.async_add_executor_job(generate_clip, path, stop)
        except Stopped:
            return
        hass.http.register_view(LiveView(clip))
        async_setup_webrtc(hass, clip, LIVE_PATH)
        async_add_entities([DemoDoorbell(hass)])

    hass.async_create_background_task(_offer(), "demo_doorbell clip")


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
        draw(index).save(buffer, "JPEG")
        return buffer.getvalue()
