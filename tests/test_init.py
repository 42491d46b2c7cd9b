"""Setup, unload and removal of an entry."""

from pathlib import Path

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtcc_share.const import DOMAIN

from .conftest import CAMERA, EXTERNAL_URL, WEBHOOK_ID, SourceCamera


async def test_setup_creates_entities_on_one_device(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Every entity sits on the entry's device; consent starts off."""
    entries = er.async_entries_for_config_entry(entity_registry, integration.entry_id)
    assert {e.domain for e in entries} == {
        "binary_sensor",
        "button",
        "camera",
        "event",
        "sensor",
        "switch",
    }
    assert len({e.device_id for e in entries}) == 1
    assert hass.states.get("switch.front_door_consent_to_share").state == "off"
    assert hass.states.get("binary_sensor.front_door_live_share").state == "off"


async def test_unload_removes_webhook(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Unloading unregisters the webhook and the entities go unavailable."""
    handlers = hass.data["webhook"]
    assert WEBHOOK_ID in handlers
    assert await hass.config_entries.async_unload(integration.entry_id)
    assert integration.state is ConfigEntryState.NOT_LOADED
    assert WEBHOOK_ID not in handlers
    assert hass.states.get("switch.front_door_consent_to_share").state == "unavailable"


async def test_remove_entry_deletes_stored_state(
    hass: HomeAssistant, integration: MockConfigEntry, hass_storage: dict
) -> None:
    """Removing the entry deletes the session and seen-id stores."""
    assert await hass.config_entries.async_remove(integration.entry_id)
    await hass.async_block_till_done()
    assert not [key for key in hass_storage if key.startswith(DOMAIN)]
    assert webhook.async_generate_path(WEBHOOK_ID) not in str(hass.data["webhook"])


async def test_unwritable_audit_log_retries_setup(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """No audit log, no sharing: setup waits until the log can be written."""
    Path(hass.config.path(DOMAIN)).write_text("not a folder")
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert WEBHOOK_ID not in hass.data.get("webhook", {})


async def test_no_external_url_raises_a_repair_at_setup(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """No external HTTPS URL to give the city: a repair, until there is one."""
    issues = ir.async_get(hass)
    issue_id = f"no_external_url_{config_entry.entry_id}"
    await hass.config.async_update(
        external_url=None, internal_url="http://192.168.1.20:8123"
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "no_external_url"
    assert issue.translation_placeholders == {"camera": CAMERA}
    await hass.config.async_update(external_url=EXTERNAL_URL)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    await hass.config.async_update(external_url=None)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None
