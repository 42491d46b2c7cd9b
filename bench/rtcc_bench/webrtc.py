"""WebRTC for the benchmarks' feed (benchmarks only): a go2rtc-like provider and a Ring-like doorbell.

Both relay the demo clip's H.264 feed (MPEG-TS on loopback, served by the
harness's feed process) over WebRTC with the demo doorbell's relay: the first
frame waits for the feed's next keyframe.

- `FeedRelayProvider` is a registered WebRTC provider, as go2rtc is: it
  answers within the offer handler, every candidate in the answer.
- `RingLikeCamera` streams only over WebRTC and signals the way Home
  Assistant's Ring camera does with ring_doorbell 0.9 (the model of
  tests/webrtc_camera.py): its offer handler returns once the offer is sent;
  the answer comes later, without candidates and saying `sendrecv`; then
  each candidate on its own, `TRICKLE_INTERVAL_S` apart, with only its m-line
  index; nothing ever says there are no more. Ring's own servers add their
  latency to each step, which no benchmark here can measure.
"""

import asyncio
from typing import Final
from urllib.parse import urlsplit

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer
from homeassistant.components.camera import (
    Camera,
    CameraEntityFeature,
    RTCIceCandidateInit,
    WebRTCAnswer,
    WebRTCCandidate,
    WebRTCSendMessage,
    async_register_webrtc_provider,
)
from homeassistant.components.camera.webrtc import WebRTCMessage
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from custom_components.demo_doorbell.relay import RelayProvider

# The benchmarks' feed process (harness.feed_url), never the demo doorbell's
# own live view: that one is served by this loop, which the player's
# blocking thread join on close would then deadlock.
FEED_PATH = "/live.ts"
# As tests/webrtc_camera.py's Ring-like camera.
TRICKLE_INTERVAL_S: Final = 0.05
_NO_PROBING: Final = {"probesize": "32", "analyzeduration": "0"}


class FeedRelayProvider(RelayProvider):
    """Serve the feed process's MPEG-TS over WebRTC, packets relayed as they are."""

    @property
    def domain(self) -> str:
        """Return the bench's domain."""
        return "rtcc_bench"

    @callback
    def async_is_supported(self, stream_source: str) -> bool:
        """Only the feed process's MPEG-TS."""
        return urlsplit(stream_source).path == FEED_PATH

    async def async_open_track(self, camera: Camera) -> MediaStreamTrack:
        """Read the camera's feed."""
        source = await camera.stream_source()
        assert source is not None
        return await self.async_open_feed(source)

    async def async_open_feed(self, source: str) -> MediaStreamTrack:
        """Read a feed (closing joins the reader thread: quick, see FEED_PATH).

        The feed is known to be H.264 in MPEG-TS: no probing, which would
        read 1.5 s of it before the first answer (a camera bridge such as
        go2rtc holds no such wait either).
        """
        player = await self.hass.async_add_executor_job(
            lambda: MediaPlayer(
                source, format="mpegts", decode=False, options=_NO_PROBING
            )
        )
        return player.video


class _RingFeedRelay(FeedRelayProvider):
    """The relay behind a Ring-like camera, which has no stream source."""

    def __init__(self, hass: HomeAssistant, feed: str) -> None:
        super().__init__(hass)
        self.feed = feed

    async def async_open_track(self, camera: Camera) -> MediaStreamTrack:
        return await self.async_open_feed(self.feed)


class RingLikeCamera(Camera):
    """A doorbell that streams the feed only over WebRTC, signalled like Ring."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, name: str, feed: str) -> None:
        """Read this feed; offer no stream source."""
        super().__init__()
        self._attr_name = name
        self._attr_unique_id = f"rtcc_bench_{name}"
        self._feed = feed
        self._relay: _RingFeedRelay | None = None

    async def async_added_to_hass(self) -> None:
        """Make the relay on this Home Assistant."""
        await super().async_added_to_hass()
        self._relay = _RingFeedRelay(self.hass, self._feed)

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """No still image."""
        return None

    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Send the offer on; the answer and the candidates come later."""
        assert self._relay is not None
        self.hass.async_create_background_task(
            self._relay.async_handle_async_webrtc_offer(
                self, offer_sdp, session_id, self._ring_like(send_message)
            ),
            "rtcc_bench Ring-like answer",
        )

    def _ring_like(self, send_message: WebRTCSendMessage) -> WebRTCSendMessage:
        @callback
        def send(message: WebRTCMessage) -> None:
            if not isinstance(message, WebRTCAnswer):
                send_message(message)
                return
            lines: list[str] = []
            candidates: list[tuple[int, str]] = []
            index = -1
            for line in message.answer.splitlines():
                if line.startswith("m="):
                    index += 1
                if line.startswith("a=candidate:"):
                    candidates.append((index, line[2:]))
                elif line != "a=end-of-candidates":
                    lines.append("a=sendrecv" if line == "a=sendonly" else line)
            send_message(WebRTCAnswer("\r\n".join(lines) + "\r\n"))
            self.hass.async_create_background_task(
                _trickle(send_message, candidates), "rtcc_bench Ring-like candidates"
            )

        return send

    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Take a viewer candidate as Ring does (the relay needs none)."""
        if candidate.sdp_m_line_index is None:
            msg = "The sdp_m_line_index is required for ring webrtc streaming"
            raise HomeAssistantError(msg)

    @callback
    def close_webrtc_session(self, session_id: str) -> None:
        """Stop the session's media."""
        if self._relay is not None:
            self._relay.async_close_session(session_id)


async def _trickle(
    send_message: WebRTCSendMessage, candidates: list[tuple[int, str]]
) -> None:
    for index, candidate in candidates:
        await asyncio.sleep(TRICKLE_INTERVAL_S)
        send_message(
            WebRTCCandidate(RTCIceCandidateInit(candidate, sdp_m_line_index=index))
        )


async def async_setup_webrtc(hass: HomeAssistant) -> None:
    """Register the provider."""
    async_register_webrtc_provider(hass, FeedRelayProvider(hass))
