"""A go2rtc-like WebRTC provider for the benchmarks' feed (benchmarks only).

It relays the demo clip's H.264 feed (MPEG-TS on loopback, served by the
harness's feed process) over WebRTC with the demo doorbell's relay: the first
frame waits for the feed's next keyframe.
"""

from urllib.parse import urlsplit

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer
from homeassistant.components.camera import Camera, async_register_webrtc_provider
from homeassistant.core import HomeAssistant, callback

from custom_components.demo_doorbell.relay import RelayProvider

# The benchmarks' feed process (harness.feed_url), never the demo doorbell's
# own live view: that one is served by this loop, which the player's
# blocking thread join on close would then deadlock.
FEED_PATH = "/live.ts"


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
        """Read the feed (closing joins the reader thread: quick, see FEED_PATH)."""
        source = await camera.stream_source()
        assert source is not None
        player = await camera.hass.async_add_executor_job(
            lambda: MediaPlayer(source, format="mpegts", decode=False)
        )
        return player.video


async def async_setup_webrtc(hass: HomeAssistant) -> None:
    """Register the provider."""
    async_register_webrtc_provider(hass, FeedRelayProvider(hass))
