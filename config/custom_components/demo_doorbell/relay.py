"""A go2rtc-like WebRTC provider: H.264 relayed as it is (development only).

Shared by the demo doorbell (webrtc.py here) and the benchmarks' feed cameras
(bench/rtcc_bench/webrtc.py). aiortc is a development dependency: nothing of
the integration imports this. Packets are relayed without transcoding, the
way go2rtc relays a camera's RTSP; ICE uses loopback only.
"""

from abc import abstractmethod
from typing import Any
from unittest.mock import patch

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from homeassistant.components.camera import (
    Camera,
    CameraWebRTCProvider,
    WebRTCAnswer,
    WebRTCSendMessage,
)
from homeassistant.core import HomeAssistant, callback
from webrtc_models import RTCIceCandidateInit


class RelayProvider(CameraWebRTCProvider):
    """Answer offers with one H.264 video track; subclasses supply the track."""

    def __init__(self, hass: HomeAssistant) -> None:
        """No sessions yet."""
        self.hass = hass
        self.pcs: dict[str, Any] = {}

    @abstractmethod
    async def async_open_track(self, camera: Camera) -> MediaStreamTrack:
        """Return the camera's H.264 packets as a video track."""

    async def async_handle_async_webrtc_offer(
        self,
        camera: Camera,
        offer_sdp: str,
        session_id: str,
        send_message: WebRTCSendMessage,
    ) -> None:
        """Answer with every candidate (aiortc gathers before answering)."""
        track = await self.async_open_track(camera)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[session_id] = pc
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                codecs = transceiver._codecs  # noqa: SLF001 - H.264 relay only
                transceiver._codecs = [  # noqa: SLF001
                    c for c in codecs if c.mimeType == "video/H264"
                ]
                pc.addTrack(track)
        with patch.object(aioice.ice, "get_host_addresses", return_value=["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createAnswer())
        send_message(WebRTCAnswer(pc.localDescription.sdp))

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Ignore trickled candidates: the answer's loopback host ones suffice."""

    @callback
    def async_close_session(self, session_id: str) -> None:
        """Stop the session's media."""
        if (pc := self.pcs.pop(session_id, None)) is not None:
            self.hass.async_create_background_task(
                pc.close(), f"{self.domain} WebRTC close"
            )
