"""The entry follows its camera: stored by registry id, migrated, renamed, added once."""

from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    setup_test_component_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_AGENCY_NAME,
    CONF_CAMERA_ENTITY_ID,
    DOMAIN,
    EVENT_GRANTED,
)

from .common import (
    CAMERA,
    EXTERNAL_URL,
    HOME,
    WEBHOOK_URL,
    City,
    requested,
    turn_on_consent,
)
from .conftest import SourceCamera

RENAMED = "camera.porch"


async def _grant(hass: HomeAssistant, client: Any, city: City, activation: str) -> int:
    await turn_on_consent(hass)
    body, headers = city.sign(requested(activation))
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status


async def test_entry_of_version_1_is_migrated_to_the_registry_id(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The camera's entity id becomes its registry id, in the data and unique id."""
    registry_id = entity_registry.async_get(CAMERA).id
    assert integration.version == 2
    assert integration.data[CONF_CAMERA_ENTITY_ID] == registry_id
    assert integration.unique_id == registry_id
    assert integration.runtime_data.session.camera_entity_id == CAMERA


async def test_renamed_camera_keeps_its_entry(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    hass_client_no_auth: ClientSessionGenerator,
    city: City,
) -> None:
    """After a rename the entry shares the same camera, and only it."""
    entity_registry.async_update_entity(CAMERA, new_entity_id=RENAMED)
    await hass.async_block_till_done()
    assert integration.state is ConfigEntryState.LOADED
    assert integration.runtime_data.session.camera_entity_id == RENAMED
    granted = async_capture_events(hass, EVENT_GRANTED)
    assert await _grant(hass, await hass_client_no_auth(), city, "A-RENAMED") == 201
    assert granted[0].data["camera_entity_id"] == RENAMED
    await integration.runtime_data.session.async_end("stopped_by_resident")
    # The same camera under its new name cannot be added a second time.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CAMERA_ENTITY_ID: RENAMED, CONF_AGENCY_NAME: "Jackson PD RTCC"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


class TestCameraWithoutRegistryEntry:
    """A camera without a unique id: no registry entry, so it cannot be renamed."""

    @pytest.fixture
    async def camera(self, hass: HomeAssistant, video_file: Path) -> SourceCamera:
        """A camera without a unique id: no registry entry, so it cannot be renamed."""
        await hass.config.async_update(
            latitude=HOME[0], longitude=HOME[1], external_url=EXTERNAL_URL
        )
        unregistered = SourceCamera(str(video_file))
        unregistered._attr_unique_id = None
        setup_test_component_platform(hass, "camera", [unregistered])
        assert await async_setup_component(
            hass, "camera", {"camera": {"platform": "test"}}
        )
        await hass.async_block_till_done()
        return unregistered

    async def test_camera_without_registry_entry_is_kept_by_entity_id(
        self,
        hass: HomeAssistant,
        camera: SourceCamera,
        integration: MockConfigEntry,
        hass_client_no_auth: ClientSessionGenerator,
        city: City,
    ) -> None:
        """Before and after the migration such a camera is stored by its entity id."""
        assert er.async_get(hass).async_get(CAMERA) is None
        assert integration.version == 2
        assert integration.data[CONF_CAMERA_ENTITY_ID] == CAMERA
        assert integration.unique_id == CAMERA
        assert await _grant(hass, await hass_client_no_auth(), city, "A-PLAIN") == 201
