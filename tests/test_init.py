"""Setup, unload and removal of an entry, and changes to it."""

import base64
from datetime import timedelta
import errno
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share import audit_file
from custom_components.rtcc_share.config_flow import (
    CONF_KEY_MODE,
    KEY_MODE_KEEP,
    KEY_MODE_PUBLIC_KEY,
)
from custom_components.rtcc_share.const import (
    CONF_AGENCY_NAME,
    CONF_CAMERA_ENTITY_ID,
    CONF_VERIFICATION_KEY,
    DOMAIN,
)

from .common import (
    CAMERA,
    CITY_PUBLIC_KEY,
    CONSENT,
    EXTERNAL_URL,
    WEBHOOK_ID,
    WEBHOOK_URL,
    City,
    requested,
    turn_on_consent,
)
from .conftest import SourceCamera


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
    assert hass.states.get(CONSENT).state == "off"
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
    assert hass.states.get(CONSENT).state == "unavailable"


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


def _secret(start: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(start, start + 32))).decode()


async def _reconfigure(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> None:
    """Rotate the key through the real reconfigure flow."""
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "change_key"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_AGENCY_NAME: "Jackson PD RTCC",
            CONF_KEY_MODE: KEY_MODE_PUBLIC_KEY,
            CONF_VERIFICATION_KEY: key,
        },
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def _grant(
    hass: HomeAssistant, client: Any, city: City, activation_id: str
) -> dict[str, Any]:
    body, headers = city.sign(requested(activation_id))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def test_key_rotation_during_and_around_a_share_keeps_one_chain(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three rotations, during and around shares: one chain, every receipt, one store."""
    client = await hass_client_no_auth()
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )
    receipts = [(await _grant(hass, client, city, "A-1"))["receipt"]]
    await _reconfigure(hass, integration, _secret(1))  # during a share: it ends
    assert integration.runtime_data.session.live is None
    receipts.append((await _grant(hass, client, City(_secret(1)), "A-2"))["receipt"])
    await _reconfigure(hass, integration, _secret(2))  # during the next one
    await _reconfigure(hass, integration, _secret(3))  # while idle
    # Timers a stopped session left behind would fire now and write stale records.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(days=46))
    await hass.async_block_till_done()

    audit = integration.runtime_data.audit
    assert (await audit.async_verify()).valid
    records = await audit.async_export(None, None)
    hashes = {f"sha256:{record['hash']}" for record in records}
    assert set(receipts) <= hashes
    events = [record["event"] for record in records]
    assert events.count("key_rotated") == 3
    assert "recovered" not in events
    assert events.count("consent_off") == 1  # one lapse, from the live session
    assert not list(Path(hass.config.path(DOMAIN)).glob("*torn*"))
    stored = hass_storage[f"{DOMAIN}.{integration.entry_id}.session"]["data"]
    assert [h["activation_id"] for h in stored["history"]] == ["A-1", "A-2"]
    assert all(h["ended"] for h in stored["history"])
    # The city is refused with an old key and accepted with the new one.
    body, headers = City(_secret(2)).sign(requested("A-3"))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 401
    # The reload is the update listener's, as Home Assistant expects.
    assert "should use it for scheduling a reload" not in caplog.text


async def test_setup_failing_half_way_leaves_nothing_running(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """A platform that fails to set up: no webhook, no listener, no timer left."""
    for dependency in ("http", "stream", "webhook"):
        assert await async_setup_component(hass, dependency, {})
    # Migrated already: the migration's own save is not the setup's to undo.
    hass.config_entries.async_update_entry(
        config_entry,
        data={
            **config_entry.data,
            CONF_CAMERA_ENTITY_ID: er.async_get(hass).async_get(CAMERA).id,
        },
        version=2,
    )
    listeners_before = dict(hass.bus.async_listeners())
    with patch.object(
        hass.config_entries,
        "async_forward_entry_setups",
        side_effect=RuntimeError("platform failed"),
    ):
        assert not await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert WEBHOOK_ID not in hass.data.get("webhook", {})
    assert dict(hass.bus.async_listeners()) == listeners_before


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


async def _change_key(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> str:
    """Submit Reconfigure → Change the agency or the key; return the abort reason."""
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "change_key"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    await hass.async_block_till_done()
    return str(result["reason"])


async def test_a_new_agency_name_keeps_a_live_share(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Only the name changes: no reload, the share goes on, the device shows it."""
    client = await hass_client_no_auth()
    await turn_on_consent(hass)
    grant = await _grant(hass, client, city, "A-1")
    assert (
        await _change_key(
            hass,
            integration,
            {CONF_AGENCY_NAME: "Hinds County RTCC", CONF_KEY_MODE: KEY_MODE_KEEP},
        )
        == "agency_changed"
    )
    session = integration.runtime_data.session
    assert session.live is not None
    assert session.live.grant.activation_id == "A-1"
    assert (
        await client.get(grant["stream_url"].removeprefix(EXTERNAL_URL))
    ).status == 200
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, integration.entry_id), integration.entry_id
    )
    assert device is not None
    assert device.model == "Shared with Hinds County RTCC"
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [r["event"] for r in records][-2:] == [
        "activation_granted",
        "options_changed",
    ]
    assert records[-1]["changed"] == ["agency_name"]


async def test_a_new_key_applies_even_while_the_log_cannot_be_written(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key change protects the resident: it never waits for the audit log."""
    client = await hass_client_no_auth()
    real = audit_file._pwrite_all

    def full(fd: int, data: bytes, offset: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_file, "_pwrite_all", full)
    assert (
        await _change_key(
            hass,
            integration,
            {
                CONF_AGENCY_NAME: "Jackson PD RTCC",
                CONF_KEY_MODE: KEY_MODE_PUBLIC_KEY,
                CONF_VERIFICATION_KEY: CITY_PUBLIC_KEY,
            },
        )
        == "reconfigure_successful"
    )
    body, headers = city.sign(requested("A-1"))
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    assert response.status == 401
    monkeypatch.setattr(audit_file, "_pwrite_all", real)
    body, headers = City(CITY_PUBLIC_KEY).sign(requested("A-2", recipient=WEBHOOK_ID))
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    assert response.status == 403  # consent is off: verified with the new key
    records = await integration.runtime_data.audit.async_export(None, None)
    assert "key_rotated" in [r["event"] for r in records]
