"""Shared fixtures: a real camera with real H.264, the integration, the city."""

from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    setup_test_component_platform,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.rtcc_share import PLATFORMS
from custom_components.rtcc_share.const import (
    CONF_AGENCY_NAME,
    CONF_CAMERA_ENTITY_ID,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    DEFAULT_OPTIONS,
    DOMAIN,
)

from .common import CAMERA, ENTRY_ID, EXTERNAL_URL, HOME, SECRET, WEBHOOK_ID, City
from .mask_video import LiveFeed, make_bright_video
from .video import make_video


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/rtcc_share in every test."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format, under tests/snapshots/."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Give every test its own config directory (the audit logs live there)."""
    return str(tmp_path)


class SourceCamera(Camera):
    """A doorbell camera whose stream source is a real H.264 file."""

    _attr_name = "Front door"
    _attr_unique_id = "front_door"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, source: str | None) -> None:
        """Serve the given source."""
        super().__init__()
        self.source = source

    async def stream_source(self) -> str | None:
        """Return the file path (or None: a camera without a stream)."""
        return self.source

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """Return a still image."""
        return b"still-image"


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real H.264 video, 1 s keyframe interval, no audio."""
    return make_video(tmp_path_factory.mktemp("video") / "doorbell.mp4")


@pytest.fixture(scope="session")
def video_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real H.264 video with an AAC audio track."""
    return make_video(tmp_path_factory.mktemp("video") / "audio.mp4", audio=True)


@pytest.fixture(scope="session")
def bright_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of a bright, moving pattern (352x288, 10 fps): masks show against it."""
    return make_bright_video(tmp_path_factory.mktemp("video") / "bright.mp4", seconds=2)


@pytest.fixture
async def live_feed(
    socket_enabled: None, bright_video: Path
) -> AsyncIterator[LiveFeed]:
    """The bright clip as a live camera on loopback (masked views listen there too)."""
    async with LiveFeed(bright_video) as feed:
        yield feed


@pytest.fixture
def source_camera(video_file: Path) -> SourceCamera:
    """The resident's doorbell camera."""
    return SourceCamera(str(video_file))


@pytest.fixture
async def camera(hass: HomeAssistant, source_camera: SourceCamera) -> SourceCamera:
    """Set up the camera component with the doorbell camera, and the home."""
    await hass.config.async_update(
        latitude=HOME[0], longitude=HOME[1], external_url=EXTERNAL_URL
    )
    setup_test_component_platform(hass, "camera", [source_camera])
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    return source_camera


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """The entry's options (the defaults)."""
    return dict(DEFAULT_OPTIONS)


@pytest.fixture
def verification_key() -> str:
    """The configured key: a shared secret."""
    return SECRET


@pytest.fixture
def config_entry(
    hass: HomeAssistant, entry_options: dict[str, Any], verification_key: str
) -> MockConfigEntry:
    """The config entry for the front door camera."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title="Front door",
        unique_id=CAMERA,
        data={
            CONF_CAMERA_ENTITY_ID: CAMERA,
            CONF_AGENCY_NAME: "Jackson PD RTCC",
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            CONF_VERIFICATION_KEY: verification_key,
        },
        options=entry_options,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms the integration sets up (a platform's tests narrow it)."""
    return PLATFORMS


@pytest.fixture
async def integration(
    hass: HomeAssistant,
    camera: SourceCamera,
    config_entry: MockConfigEntry,
    platforms: list[Platform],
) -> AsyncGenerator[MockConfigEntry]:
    """Set up the integration; unload it at the end so no worker lingers."""
    with patch("custom_components.rtcc_share.PLATFORMS", platforms):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        yield config_entry
        if (
            hass.config_entries.async_get_entry(config_entry.entry_id)
            and config_entry.state.recoverable
        ):
            await hass.config_entries.async_unload(config_entry.entry_id)
            await hass.async_block_till_done()


@pytest.fixture
def city(verification_key: str) -> City:
    """The city's signing client."""
    return City(verification_key)


async def snapshot_entities(
    hass: HomeAssistant, snapshot: SnapshotAssertion, entry: MockConfigEntry
) -> None:
    """Compare the entry's entities (one platform) and states with the snapshot."""
    await snapshot_platform(hass, er.async_get(hass), snapshot, entry.entry_id)
