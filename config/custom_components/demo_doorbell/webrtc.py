"""The demo doorbell over WebRTC: its clip's H.264 relayed, not transcoded.

Reads the clip itself rather than the live view: that view is served by Home
Assistant's loop, which a reader of it must never block on when it closes.
"""

import asyncio
from collections import deque
from pathlib import Path
import threading
import time
from urllib.parse import urlsplit

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
import av
import av.bitstream
from homeassistant.components.camera import Camera, async_register_webrtc_provider
from homeassistant.core import HomeAssistant, callback

from .clip import packets
from .relay import RelayProvider


class ClipTrack(MediaStreamTrack):
    """The looped clip at real-time pace, as Annex B packets (what RTP carries)."""

    kind = "video"

    def __init__(self, hass: HomeAssistant, clip: Path) -> None:
        """Start at the clip's first keyframe."""
        super().__init__()
        self._hass = hass
        self._stop = threading.Event()
        self._packets = packets(clip, self._stop)
        self._annexb: av.bitstream.BitStreamFilterContext | None = None
        self._pending: deque[tuple[av.Packet, float]] = deque()
        self._start: float | None = None

    def _read(self) -> None:
        """Demux and filter the next packet (blocking: in the executor)."""
        if (item := next(self._packets, None)) is None:
            return
        packet, at = item
        if self._annexb is None:
            self._annexb = av.bitstream.BitStreamFilterContext(
                "h264_mp4toannexb", packet.stream
            )
        time_base = packet.time_base  # filtering empties the packet
        for filtered in self._annexb.filter(packet):
            filtered.time_base = time_base
            self._pending.append((filtered, at))

    async def recv(self) -> av.Packet:
        """The next packet, when its time comes."""
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            await self._hass.async_add_executor_job(self._read)
        packet, at = self._pending.popleft()
        if self._start is None:
            self._start = time.monotonic() - at
        if (ahead := self._start + at - time.monotonic()) > 0:
            await asyncio.sleep(ahead)
        return packet

    def stop(self) -> None:
        """End the clip's reading (no thread to join)."""
        super().stop()
        self._stop.set()


class ClipRelayProvider(RelayProvider):
    """Serve the demo doorbell's clip to WebRTC viewers."""

    def __init__(self, hass: HomeAssistant, clip: Path, live_path: str) -> None:
        """Relay this clip for the camera whose source is the live view."""
        super().__init__(hass)
        self.clip = clip
        self.live_path = live_path

    @property
    def domain(self) -> str:
        """Return the demo doorbell's domain."""
        return "demo_doorbell"

    @callback
    def async_is_supported(self, stream_source: str) -> bool:
        """Only the demo doorbell's live view."""
        return urlsplit(stream_source).path == self.live_path

    async def async_open_track(self, camera: Camera) -> MediaStreamTrack:
        """The clip from its start."""
        return ClipTrack(self.hass, self.clip)


@callback
def async_setup_webrtc(hass: HomeAssistant, clip: Path, live_path: str) -> None:
    """Register the provider."""
    async_register_webrtc_provider(hass, ClipRelayProvider(hass, clip, live_path))
