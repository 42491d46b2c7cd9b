"""Diagnostics carry state, never a secret."""

import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import CONF_NOTIFY_TARGETS, DEFAULT_OPTIONS

from .common import SECRET, City, requested
from .conftest import EXTERNAL_URL, WEBHOOK_ID

CONSENT = "switch.front_door_consent_to_share"
STOP = "button.front_door_stop_sharing_now"


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Key, webhook id, stream URL and token never appear; state does."""
    assert await async_setup_component(hass, "diagnostics", {})
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )
    body, headers = city.sign(requested())
    client = await hass_client_no_auth()
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    granted = await response.json()
    token = granted["stream_url"].split("/")[-2]
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, integration)
    text = json.dumps(diagnostics)
    for secret in (SECRET, WEBHOOK_ID, token, granted["stream_url"]):
        assert secret not in text
    assert diagnostics["entry"]["data"]["verification_key"] == "**REDACTED**"
    assert diagnostics["session"]["consent_on"] is True
    assert diagnostics["session"]["live"]["activation_id"] == "JPD-RTCC-0017"
    assert diagnostics["audit"]["valid"] is True
    assert diagnostics["audit"]["last_records"][-1]["event"] == "activation_granted"


@pytest.mark.parametrize(
    "entry_options",
    [{**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: ["notify.mobile_app_residents_phone"]}],
)
async def test_diagnostics_redact_viewers_and_notify_targets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Who watched (their addresses) and the resident's phones stay private."""
    assert await async_setup_component(hass, "diagnostics", {})
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )
    body, headers = city.sign(requested())
    client = await hass_client_no_auth()
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    path = (await response.json())["stream_url"].removeprefix(EXTERNAL_URL)
    assert (await client.get(path)).status == 200  # a viewer from 127.0.0.1
    await hass.services.async_call(
        "button", "press", {"entity_id": STOP}, blocking=True
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, integration)
    text = json.dumps(diagnostics)
    assert "127.0.0.1" not in text
    assert "mobile_app_residents_phone" not in text
    [ended] = [
        r for r in diagnostics["audit"]["last_records"] if r["event"] == "share_ended"
    ]
    assert ended["viewers"][0]["address"] == "**REDACTED**"
    # The resident's own audit log keeps the address.
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [r for r in records if r["event"] == "share_ended"][0]["viewers"][0][
        "address"
    ] == "127.0.0.1"
