"""The police-view camera shows the resident the shared picture, masked as the city sees it."""

from collections.abc import Generator
import io
from pathlib import Path
from unittest.mock import patch

from homeassistant.components.camera import (
    DOMAIN as CAMERA_DOMAIN,
    StreamType,
    async_get_image,
    async_get_stream_source,
    async_register_webrtc_provider,
)
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import numpy as np
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.rtcc_share.const import CONF_PRIVACY_MASKS, DEFAULT_OPTIONS
from custom_components.rtcc_share.live.masked_source import (
    MaskedSource,
    MaskUnavailableError,
)

from .common import CAMERA, POLICE_VIEW
from .conftest import SourceCamera, snapshot_entities
from .mask_video import LiveFeed, brightest_masked, painted_area
from .webrtc_camera import Go2rtcLikeProvider


async def test_police_view_proxies_source(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """Same stream source and still image as the doorbell; idle while not shared."""
    assert await async_get_stream_source(hass, POLICE_VIEW) == camera.source
    assert (await async_get_image(hass, POLICE_VIEW)).content == b"still-image"
    assert hass.states.get(POLICE_VIEW).state == "idle"


async def test_police_view_when_source_is_off(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """A turned-off source gives no stream and no image."""
    camera._attr_is_on = False
    assert await async_get_stream_source(hass, POLICE_VIEW) is None
    try:
        image = await async_get_image(hass, POLICE_VIEW)
    except HomeAssistantError:
        image = None
    assert image is None


@pytest.fixture
def fixed_token() -> Generator[None]:
    """Give every camera the same access token (part of its state)."""
    with patch("random.SystemRandom.getrandbits", return_value=123123123123):
        yield


@pytest.mark.parametrize("platforms", [[Platform.CAMERA]])
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    fixed_token: None,
    integration: MockConfigEntry,
) -> None:
    """The police-view camera after setup."""
    await snapshot_entities(hass, snapshot, integration)


async def test_police_view_unavailable_with_its_source(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """The police view is unavailable while the source camera is, and back after."""
    camera._attr_available = False
    camera.async_write_ha_state()
    await hass.async_block_till_done()
    assert hass.states.get(CAMERA).state == STATE_UNAVAILABLE
    assert hass.states.get(POLICE_VIEW).state == STATE_UNAVAILABLE
    camera._attr_available = True
    camera.async_write_ha_state()
    await hass.async_block_till_done()
    assert hass.states.get(POLICE_VIEW).state == "idle"


async def test_police_view_unavailable_without_its_source(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A source camera that is gone (removed, or not loaded) leaves no police view."""
    hass.states.async_remove(CAMERA)
    await hass.async_block_till_done()
    assert hass.states.get(POLICE_VIEW).state == STATE_UNAVAILABLE


MASKS = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))
MASKED = {**DEFAULT_OPTIONS, CONF_PRIVACY_MASKS: [list(mask) for mask in MASKS]}


def _luma(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))


@pytest.mark.parametrize("entry_options", [MASKED])
async def test_police_view_shows_the_masked_picture(
    live_feed: LiveFeed,
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: SourceCamera,
) -> None:
    """What the city would see: the masked source, and its masked snapshot."""
    camera.source = live_feed.url
    source = await async_get_stream_source(hass, POLICE_VIEW)
    masked = integration.runtime_data.masked.current
    assert masked is not None
    assert source == masked.url != live_feed.url
    picture = _luma((await async_get_image(hass, POLICE_VIEW)).content)
    assert picture.shape == (288, 352)
    assert brightest_masked(picture, MASKS) <= 20
    height, width = picture.shape
    assert picture[~painted_area(MASKS, width, height)].mean() > 150
    # The city's view and the resident's are one source.
    assert (await async_get_stream_source(hass, POLICE_VIEW)) == source


@pytest.mark.parametrize("entry_options", [MASKED])
async def test_police_view_of_a_camera_without_stream_source_shows_nothing(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """With masks, a camera whose video does not pass through the home: no view."""
    camera.source = None
    assert await async_get_stream_source(hass, POLICE_VIEW) is None
    with pytest.raises(HomeAssistantError):
        await async_get_image(hass, POLICE_VIEW)


@pytest.mark.parametrize("entry_options", [MASKED])
async def test_police_view_without_a_masked_snapshot_has_no_image(
    hass: HomeAssistant, integration: MockConfigEntry, socket_enabled: None
) -> None:
    """The masking cannot give a picture: no image (never the camera's own)."""
    with (
        patch.object(MaskedSource, "async_snapshot", side_effect=MaskUnavailableError),
        pytest.raises(HomeAssistantError),
    ):
        await async_get_image(hass, POLICE_VIEW)


async def test_police_view_follows_the_masks(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: SourceCamera,
    socket_enabled: None,
) -> None:
    """Masks set or removed: Home Assistant's stream and WebRTC providers follow.

    A go2rtc-like provider supports HTTP sources, not the doorbell's file: the
    Police view gets WebRTC only through the masked source.
    """
    provider = Go2rtcLikeProvider(Path(camera.source or ""))
    unregister = async_register_webrtc_provider(hass, provider)
    await hass.async_block_till_done()
    police_view = hass.data[CAMERA_DOMAIN].get_entity(POLICE_VIEW)
    stream = await police_view.async_create_stream()
    assert stream.source == camera.source
    assert (
        StreamType.WEB_RTC not in police_view.camera_capabilities.frontend_stream_types
    )

    hass.config_entries.async_update_entry(integration, options=MASKED)
    await hass.async_block_till_done()
    masked = integration.runtime_data.masked.current
    assert masked is not None
    assert stream.source == masked.url
    assert StreamType.WEB_RTC in police_view.camera_capabilities.frontend_stream_types

    hass.config_entries.async_update_entry(integration, options=dict(DEFAULT_OPTIONS))
    await hass.async_block_till_done()
    assert stream.source == camera.source
    assert (
        StreamType.WEB_RTC not in police_view.camera_capabilities.frontend_stream_types
    )
    unregister()
    await hass.async_block_till_done()


@pytest.mark.parametrize("entry_options", [MASKED])
async def test_police_view_stream_stops_when_there_is_nothing_to_mask(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: SourceCamera,
    socket_enabled: None,
) -> None:
    """New masks for a camera that lost its stream source: the stream is dropped."""
    police_view = hass.data[CAMERA_DOMAIN].get_entity(POLICE_VIEW)
    assert await police_view.async_create_stream() is not None
    camera.source = None
    hass.config_entries.async_update_entry(
        integration, options={**MASKED, CONF_PRIVACY_MASKS: [[0, 0, 0.5, 0.5]]}
    )
    await hass.async_block_till_done()
    assert police_view.stream is None
