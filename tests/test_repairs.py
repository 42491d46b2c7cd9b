"""Repair issues: raised where the fault is found, gone as soon as it is."""

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import DOMAIN
from custom_components.rtcc_share.models import AuditEvent

from .common import City, requested
from .conftest import WEBHOOK_ID

CONSENT = "switch.front_door_consent_to_share"


def _issues(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    return {
        issue_id.removesuffix(f"_{entry.entry_id}")
        for domain, issue_id in ir.async_get(hass).issues
        if domain == DOMAIN
    }


def _break_audit(integration: MockConfigEntry, tmp_path: Path) -> Path:
    audit = integration.runtime_data.audit
    working = audit.path
    blocker = tmp_path / "file"
    blocker.write_text("")
    audit.path = blocker / "log.jsonl"
    return working


async def test_audit_issue_clears_on_any_successful_append(
    hass: HomeAssistant, integration: MockConfigEntry, tmp_path: Path
) -> None:
    """Not only a grant: the next record that can be written clears the issue."""
    audit = integration.runtime_data.audit
    working = _break_audit(integration, tmp_path)
    assert (
        await audit.async_try_append(AuditEvent.CONSENT_OFF, cause="resident") is None
    )
    assert _issues(hass, integration) == {"audit_log_unavailable"}
    audit.path = working
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )
    assert _issues(hass, integration) == set()


async def test_issues_cleared_on_unload_and_removal(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    tmp_path: Path,
) -> None:
    """An unloaded or removed entry leaves no issue behind."""
    audit = integration.runtime_data.audit
    working = _break_audit(integration, tmp_path)
    await audit.async_try_append(AuditEvent.CONSENT_OFF, cause="resident")
    assert _issues(hass, integration)
    assert await hass.config_entries.async_unload(integration.entry_id)
    assert _issues(hass, integration) == set()
    audit.path = working
    assert await hass.config_entries.async_setup(integration.entry_id)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )
    await hass.config.async_update(external_url=None)
    body, headers = city.sign(requested())
    client = await hass_client_no_auth()
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 503
    assert _issues(hass, integration) == {"no_external_url"}
    assert await hass.config_entries.async_remove(integration.entry_id)
    assert _issues(hass, integration) == set()
