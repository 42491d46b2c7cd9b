"""Diagnostics carry state, never a secret."""

import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .common import SECRET, WEBHOOK_ID, WEBHOOK_URL, City, requested, turn_on_consent


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Key, webhook id, stream URL and token never appear; state does."""
    assert await async_setup_component(hass, "diagnostics", {})
    await turn_on_consent(hass)
    body, headers = city.sign(requested())
    client = await hass_client_no_auth()
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
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
