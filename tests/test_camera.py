"""The police-view camera shows the resident the shared source."""

from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .common import POLICE_VIEW
from .conftest import SourceCamera


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
