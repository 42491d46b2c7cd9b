"""Diagnostics carry state, never a secret."""

import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.rtcc_share.const import (
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_NOTIFY_TARGETS,
    CONF_TURN_SECRET,
    DEFAULT_OPTIONS,
)

from .common import (
    EXTERNAL_URL,
    SECRET,
    WEBHOOK_ID,
    WEBHOOK_URL,
    City,
    requested,
    turn_on_consent,
)

NOTIFY_TARGET = "notify.mobile_app_residents_phone"
TURN_SECRET = "turn-secret-0123456789abcdefghijk"
# Moments, and the hashes and receipt derived from them, change from run to run;
# so does the registry id by which the entry stores its camera (the entity id
# it resolves to is shown as the session's `camera`).
VOLATILE = props(
    "consent_lapses_at",
    "started_at",
    "expires_at",
    "started",
    "expires",
    "first",
    "last",
    "ts",
    "hash",
    "prev",
    "receipt",
    # The master playlist's size carries the measured bandwidth.
    "bytes",
    "camera_entity_id",
)
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


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Notify the resident's phone, whose service name must not show."""
    return {**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: [NOTIFY_TARGET]}


@pytest.fixture
async def watched(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """A live share with one viewer (from 127.0.0.1); diagnostics set up."""
    assert await async_setup_component(hass, "diagnostics", {})
    await turn_on_consent(hass)
    body, headers = city.sign(requested())
    client = await hass_client_no_auth()
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    stream_url = (await response.json())["stream_url"]
    viewer = await client.get(stream_url.removeprefix(EXTERNAL_URL))
    assert viewer.status == 200


@pytest.mark.usefixtures("watched")
async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The whole download during a live share with one viewer.

    The viewer's address and the notify target show redacted.
    """
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, integration)
    assert diagnostics == snapshot(exclude=VOLATILE)


@pytest.mark.usefixtures("watched")
async def test_diagnostics_redact_viewers_and_notify_targets(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    integration: MockConfigEntry,
) -> None:
    """Who watched (their addresses) and the resident's phones stay private."""
    await hass.services.async_call(
        "button", "press", {"entity_id": STOP}, blocking=True
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, integration)
    text = json.dumps(diagnostics)
    assert "127.0.0.1" not in text
    assert NOTIFY_TARGET not in text
    [ended] = [
        r for r in diagnostics["audit"]["last_records"] if r["event"] == "share_ended"
    ]
    assert ended["viewers"][0]["address"] == "**REDACTED**"
    # The resident's own audit log keeps the address.
    records = await integration.runtime_data.audit.async_export(None, None)
    [ended] = [r for r in records if r["event"] == "share_ended"]
    assert ended["viewers"][0]["address"] == "127.0.0.1"


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_ICE_SERVERS: ["turn:turn.example.org:3478 city fixed-turn-password"],
            CONF_TURN_SECRET: TURN_SECRET,
            CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True,
        }
    ],
)
async def test_diagnostics_redact_turn_credentials(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    integration: MockConfigEntry,
) -> None:
    """The TURN shared secret and a fixed TURN password never show."""
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, integration)
    text = json.dumps(diagnostics)
    assert TURN_SECRET not in text
    assert "fixed-turn-password" not in text
    options = diagnostics["entry"]["options"]
    assert options[CONF_TURN_SECRET] == options[CONF_ICE_SERVERS] == "**REDACTED**"
    assert options[CONF_ICE_STATIC_CREDENTIALS_ACCEPTED] is True
