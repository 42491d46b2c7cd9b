"""The police-view camera shows the resident the shared source."""

from collections.abc import Generator
from unittest.mock import patch

from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from .common import CAMERA, POLICE_VIEW
from .conftest import SourceCamera, snapshot_entities


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
