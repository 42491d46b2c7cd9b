"""Cameras that stream real H.264 over WebRTC (aiortc), all on loopback.

`RingLikeCamera` negotiates natively, the way Home Assistant's Ring camera
(homeassistant/components/ring/camera.py) does with ring_doorbell 0.9's
`RingWebRtcStream`: the offer handler registers the session with
ring_doorbell at once, fetches a ticket, opens Ring's websocket, sends the
offer there and returns (`connecting`, when set, holds it there); the answer
and every candidate come later through `send_message`. The answer says
`sendrecv` to a receive-only offer. The candidates are trickled after the
answer, each with only its `sdp_m_line_index` (Ring's `or 0`), and nothing
ever says that there are no more: Home Assistant drops Ring's empty
candidate. (ring_doorbell notes that since September 2024 Ring's answer may
carry its candidates itself: `candidates_in_answer`.) A candidate from the
viewer without `sdp_m_line_index` is refused with Ring's message. How long
Ring's servers take for each step is not known; the model takes no time of
its own but the spacing of its trickled candidates.

`NestLikeCamera` registers its session only when its offer handler returns,
with the answer (Nest's `generate_web_rtc_stream` is one API call; `api`,
when set, holds it there).

`LoopbackProvider` is a registered WebRTC provider (as go2rtc is) for a
camera that has a stream source; it answers with every candidate inside.
`Go2rtcLikeProvider` supports a camera by its stream source's scheme and
streams whatever the camera's stream source is at each offer, as Home
Assistant's go2rtc provider does (`_update_stream_source`).
"""

import asyncio
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.sdp import candidate_from_sdp
from homeassistant.components.camera import (
    Camera,
    CameraEntityFeature,
    CameraWebRTCProvider,
    WebRTCAnswer,
    WebRTCCandidate,
    WebRTCError,
    WebRTCSendMessage,
)
from homeassistant.core import callback
from homeassistant.exceptions import HomeAssistantError
from webrtc_models import RTCIceCandidateInit


class Peers:
    """The camera side's aiortc peer connections, one per session id."""

    def __init__(self, video: Path) -> None:
        """Send the given H.264 file, decoded and re-encoded by aiortc."""
        self.video = video
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.offers: list[str] = []
        self.remote_candidates: list[RTCIceCandidateInit] = []
        self.closed: list[str] = []
        self.closing: set[asyncio.Task[None]] = set()

    async def answer(
        self, offer: str, session_id: str, media: str | None = None
    ) -> str:
        """Return the aiortc answer (with its candidates) to the offer.

        It sends `media` (a live source), or else the video file, looped.
        """
        self.offers.append(offer)
        pc = self.pcs[session_id] = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player = (
            MediaPlayer(str(self.video), loop=True)
            if media is None
            # Opening a live source blocks: the event loop may be serving it.
            else await asyncio.to_thread(MediaPlayer, media, timeout=10)
        )
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                # Like a doorbell: H.264 only (aiortc answers what it can).
                transceiver._codecs = [
                    codec
                    for codec in transceiver._codecs
                    if codec.mimeType == "video/H264"
                ]
                pc.addTrack(player.video)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def add_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Apply a viewer's candidate."""
        self.remote_candidates.append(candidate)
        ice = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        ice.sdpMid = candidate.sdp_mid
        ice.sdpMLineIndex = candidate.sdp_m_line_index
        await self.pcs[session_id].addIceCandidate(ice)

    def close(self, session_id: str) -> None:
        """End a session: its media stops."""
        self.closed.append(session_id)
        if (pc := self.pcs.pop(session_id, None)) is not None:
            self.closing.add(asyncio.get_running_loop().create_task(pc.close()))

    async def async_close_all(self) -> None:
        """Close whatever is left at the end of a test."""
        for pc in list(self.pcs.values()):
            await pc.close()
        self.pcs.clear()
        await asyncio.gather(*self.closing)


def split_answer(sdp: str) -> tuple[str, list[tuple[int, str]]]:
    """Split an answer into its candidate-less text and (m-line index, candidate)."""
    lines: list[str] = []
    candidates: list[tuple[int, str]] = []
    index = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        if line.startswith("a=candidate:"):
            candidates.append((index, line[2:]))
        elif line != "a=end-of-candidates":
            lines.append(line)
    return "\r\n".join(lines) + "\r\n", candidates


class RingLikeCamera(Camera):
    """A doorbell that streams only over WebRTC, negotiated by the entity."""

    _attr_name = "Front door"
    _attr_unique_id = "front_door"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, video: Path) -> None:
        """Stream the given file; `refuse`/`silent` make it fail."""
        super().__init__()
        self.peers = Peers(video)
        self.refuse = False
        self.silent = False
        self.candidates_in_answer = False
        # Seconds between two trickled candidates.
        self.trickle_interval = 0.05
        # Holds the offer handler until set (Ring's ticket and websocket).
        self.connecting: asyncio.Event | None = None
        # The session ids the offer handler was called with.
        self.received: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Send the offer to 'Ring'; everything comes back through send_message."""
        self.received.append(session_id)
        if self.connecting is not None:
            await self.connecting.wait()
        if self.silent:
            return
        task = asyncio.get_running_loop().create_task(
            self._negotiate(offer_sdp, session_id, send_message)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _negotiate(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        if session_id in self.peers.closed:
            # Closed while the offer was on its way: 'Ring' never starts it.
            return
        if self.refuse:
            send_message(WebRTCError("1", "Ring refused the offer"))
            return
        sdp = await self.peers.answer(offer_sdp, session_id)
        answer, candidates = split_answer(sdp)
        if self.candidates_in_answer:
            answer, candidates = sdp.replace("a=end-of-candidates\r\n", ""), []
        send_message(WebRTCAnswer(answer.replace("a=sendonly", "a=sendrecv")))
        for index, candidate in candidates:
            await asyncio.sleep(self.trickle_interval)
            send_message(
                WebRTCCandidate(
                    RTCIceCandidateInit(candidate, sdp_m_line_index=index or 0)
                )
            )

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Apply a viewer candidate; Ring needs its m-line index."""
        if candidate.sdp_m_line_index is None:
            msg = "The sdp_m_line_index is required for ring webrtc streaming"
            raise HomeAssistantError(msg)
        await self.peers.add_candidate(session_id, candidate)

    @callback
    def close_webrtc_session(self, session_id: str) -> None:
        """Close the session at 'Ring'."""
        self.peers.close(session_id)


class NestLikeCamera(RingLikeCamera):
    """A camera that registers its session only as its offer handler returns."""

    def __init__(self, video: Path) -> None:
        """Stream the given file; `api` holds the offer handler until set."""
        super().__init__(video)
        self.api: asyncio.Event | None = None
        # The sessions registered, in order.
        self.registered: list[str] = []

    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Ask 'Google' for a stream; register it and answer when it comes."""
        self.received.append(session_id)
        if self.api is not None:
            await self.api.wait()
        answer = await self.peers.answer(offer_sdp, session_id)
        self.registered.append(session_id)
        send_message(WebRTCAnswer(answer))


class ProviderCamera(Camera):
    """A camera with a stream source, served over WebRTC by a provider."""

    _attr_name = "Front door"
    _attr_unique_id = "front_door"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, source: str) -> None:
        """Serve the given source."""
        super().__init__()
        self.source = source

    async def stream_source(self) -> str | None:
        """Return the file path."""
        return self.source


class LoopbackProvider(CameraWebRTCProvider):
    """A WebRTC provider (like go2rtc) that answers with all its candidates."""

    def __init__(self, video: Path, source: str | None = None) -> None:
        """Serve the given file for a camera whose source is `source` (or it)."""
        self.peers = Peers(video)
        self.source = str(video) if source is None else source

    @property
    def domain(self) -> str:
        """Return a made-up provider domain."""
        return "loopback_webrtc"

    @callback
    def async_is_supported(self, stream_source: str) -> bool:
        """Support the one source only."""
        return stream_source == self.source

    async def async_handle_async_webrtc_offer(
        self,
        camera: Camera,
        offer_sdp: str,
        session_id: str,
        send_message: WebRTCSendMessage,
    ) -> None:
        """Answer within the call, candidates included."""
        send_message(WebRTCAnswer(await self.peers.answer(offer_sdp, session_id)))

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Apply a viewer candidate."""
        await self.peers.add_candidate(session_id, candidate)

    @callback
    def async_close_session(self, session_id: str) -> None:
        """Close the session."""
        self.peers.close(session_id)


class Go2rtcLikeProvider(LoopbackProvider):
    """A provider that, like go2rtc, streams the camera's current stream source."""

    def __init__(self, video: Path) -> None:
        """Support what go2rtc supports here: RTSP and HTTP sources."""
        super().__init__(video)
        # The stream source of each offer's camera, as the provider read it.
        self.sources: list[str] = []

    @callback
    def async_is_supported(self, stream_source: str) -> bool:
        """Support a source by its scheme."""
        return stream_source.partition(":")[0] in {"rtsp", "rtsps", "http", "https"}

    async def async_handle_async_webrtc_offer(
        self,
        camera: Camera,
        offer_sdp: str,
        session_id: str,
        send_message: WebRTCSendMessage,
    ) -> None:
        """Read the camera's stream source now and stream it."""
        source = await camera.stream_source()
        if source is None or not self.async_is_supported(source):
            send_message(WebRTCError("go2rtc_webrtc_offer_failed", "no source"))
            return
        self.sources.append(source)
        send_message(
            WebRTCAnswer(await self.peers.answer(offer_sdp, session_id, source))
        )


async def async_settle_peers() -> None:
    """Cancel what aiortc/aioice leave running after `close()` (consent checks)."""
    await asyncio.sleep(0.05)
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task()
        and "/aio" in (code := task.get_coro().cr_code.co_filename)  # type: ignore[union-attr]
        and ("/aiortc/" in code or "/aioice/" in code)
    ]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
