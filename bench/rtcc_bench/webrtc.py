"""A go2rtc-like WebRTC provider for the benchmarks' feed (benchmarks only).

It relays the demo clip's H.264 feed (MPEG-TS on loopback, served by the
harness's feed process) over WebRTC
with aiortc, without transcoding, the way go2rtc relays a camera's RTSP: the
first frame waits for the feed's next keyframe. ICE uses loopback only.
"""

from typing import Any
from unittest.mock import patch
from urllib.parse import urlsplit

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from homeassistant.components.camera import (
    Camera,
    CameraWebRTCProvider,
    RTCIceCandidateInit,
    WebRTCAnswer,
    WebRTCSendMessage,
    async_register_webrtc_provider,
)
from homeassistant.core import HomeAssistant, callback

# The benchmarks' feed process (harness.feed_url), never the demo doorbell's
# own live view: that one is served by this loop, which the player's
# blocking thread join on close would then deadlock.
FEED_PATH = "/live.ts"


class RelayProvider(CameraWebRTCProvider):
    """Serve the demo doorbell's feed over WebRTC, packets relayed as they are."""

    def __init__(self) -> None:
        """No sessions yet."""
        self.hass: HomeAssistant | None = None
        self.pcs: dict[str, Any] = {}

    @property
    def domain(self) -> str:
        """Return the bench's domain."""
        return "rtcc_bench"

    @callback
    def async_is_supported(self, stream_source: str) -> bool:
        """Only the feed process's MPEG-TS."""
        return urlsplit(stream_source).path == FEED_PATH

    async def async_handle_async_webrtc_offer(
        self,
        camera: Camera,
        offer_sdp: str,
        session_id: str,
        send_message: WebRTCSendMessage,
    ) -> None:
        """Answer with every candidate (aiortc gathers before answering)."""
        source = await camera.stream_source()
        assert source is not None
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player = await camera.hass.async_add_executor_job(
            lambda: MediaPlayer(source, format="mpegts", decode=False)
        )
        self.hass = camera.hass
        self.pcs[session_id] = pc
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                codecs = transceiver._codecs  # noqa: SLF001 - H.264 relay only
                transceiver._codecs = [  # noqa: SLF001
                    c for c in codecs if c.mimeType == "video/H264"
                ]
                pc.addTrack(player.video)
        with patch.object(aioice.ice, "get_host_addresses", return_value=["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createAnswer())
        send_message(WebRTCAnswer(pc.localDescription.sdp))

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Candidates are all in the offer (the bench client does not trickle)."""

    @callback
    def async_close_session(self, session_id: str) -> None:
        """Stop the session's media."""
        if (pc := self.pcs.pop(session_id, None)) is not None:
            # Stopping the player joins its reader thread: quick, as the feed
            # comes from another process (never serve it from this loop).
            self.hass.async_create_background_task(pc.close(), "rtcc_bench close")


async def async_setup_webrtc(hass: HomeAssistant) -> None:
    """Register the provider."""
    async_register_webrtc_provider(hass, RelayProvider())
