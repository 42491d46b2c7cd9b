"""The share session: notifications, restarts, races, rejected requests."""

import asyncio
from datetime import timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_NOTIFY_TARGETS,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_ENDED,
    stop_action,
)
from custom_components.rtcc_share.models import EndReason, Granted, Refused
from custom_components.rtcc_share.webhook import parse_payload

from .common import City, requested
from .conftest import WEBHOOK_ID

CONSENT = "switch.front_door_consent_to_share"
STREAMS = "stream"


async def _consent(hass: HomeAssistant, on: bool = True) -> None:
    await hass.services.async_call(
        "switch", "turn_on" if on else "turn_off", {"entity_id": CONSENT}, blocking=True
    )


async def _activate(
    client: Any, city: City, activation_id: str = "A-1"
) -> tuple[int, dict[str, Any]]:
    body, headers = city.sign(requested(activation_id))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    return response.status, await response.json()


async def _events(integration: MockConfigEntry) -> list[str]:
    records = await integration.runtime_data.audit.async_export(None, None)
    return [record["event"] for record in records]


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_NOTIFY_TARGETS: [
                "notify.mobile_app_phone",
                "notify.kitchen_display",
                "notify.missing",
            ],
        }
    ],
)
async def test_resident_is_notified_and_can_stop_from_phone(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Start and end notify every target; the phone's Stop action ends the share."""
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "mobile_app_phone", calls.append)
    hass.services.async_register("notify", "send_message", calls.append)
    hass.states.async_set("notify.kitchen_display", "unknown")
    await _consent(hass)
    status, _ = await _activate(await hass_client_no_auth(), city)
    assert status == 201
    await hass.async_block_till_done(wait_background_tasks=True)
    phone = next(c for c in calls if c.service == "mobile_app_phone")
    action = phone.data["data"]["actions"][0]["action"]
    assert action == stop_action(integration.entry_id)
    assert "Jackson PD RTCC" in phone.data["message"]
    entity_call = next(c for c in calls if c.service == "send_message")
    assert entity_call.data["entity_id"] == "notify.kitchen_display"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    # Markdown-escaped: the city's values render as the text they are.
    assert any(r"shots\_fired" in n["message"] for n in notifications.values())

    ended = async_capture_events(hass, EVENT_ENDED)
    hass.bus.async_fire("mobile_app_notification_action", {"action": "OTHER"})
    await hass.async_block_till_done()
    assert integration.runtime_data.session.live is not None
    hass.bus.async_fire("mobile_app_notification_action", {"action": action})
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in ended] == ["stopped_by_resident"]
    assert len([c for c in calls if c.service == "mobile_app_phone"]) == 2


async def test_interrupted_share_found_on_restart(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
) -> None:
    """A share live when Home Assistant died is recorded as interrupted."""
    await _consent(hass)
    assert (await _activate(await hass_client_no_auth(), city))[0] == 201
    # What a crash leaves on disk: the session store with the share still live.
    key = f"{DOMAIN}.{integration.entry_id}.session"
    stored = json.loads(json.dumps(hass_storage[key]))
    await hass.config_entries.async_unload(integration.entry_id)
    hass_storage[key] = stored
    assert await hass.config_entries.async_setup(integration.entry_id)
    await hass.async_block_till_done()
    events = await _events(integration)
    assert events[-1] == "interrupted"
    session = integration.runtime_data.session
    assert session.live is None
    assert list(session.history)[-1].end_reason == "interrupted"
    # Recording the interruption keeps consent as it was, in memory and on disk.
    assert session.consent_on
    assert hass_storage[key]["data"]["consent"]["on"] is True
    assert (await integration.runtime_data.audit.async_verify()).valid


async def test_consent_off_racing_grants_never_leaves_a_live_stream(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """However a grant and consent-off or stop interleave, nothing stays live."""
    session = integration.runtime_data.session
    outcomes = set()
    # Keep the daily limits out of the way.
    with patch.object(session.history, "past_shares", return_value=[]):
        for round_ in range(100):
            await _consent(hass)
            request = parse_payload(json.dumps(requested(f"R-{round_}")).encode())
            grant = asyncio.ensure_future(
                integration.runtime_data.activations.async_request(request)
            )
            for _ in range(round_ % 25):
                await asyncio.sleep(0)
            if round_ % 2:
                await _consent(hass, on=False)
            else:
                await session.async_end(EndReason.STOPPED_BY_RESIDENT)
                await _consent(hass, on=False)
            match await grant:
                case Granted():
                    outcomes.add("granted")
                case Refused(reason=reason):
                    outcomes.add(reason)
            assert session.live is None, round_
            assert not hass.data[STREAMS]["streams"], round_
    assert "granted" in outcomes
    assert "consent_off" in outcomes


async def test_consent_on_refused_without_audit(
    hass: HomeAssistant, integration: MockConfigEntry, tmp_path: Any
) -> None:
    """Consent cannot be turned on while the audit log cannot be written."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    integration.runtime_data.audit.path = blocker / "log.jsonl"
    with pytest.raises(HomeAssistantError) as err:
        await _consent(hass)
    assert err.value.translation_key == "audit_log_unavailable"
    assert hass.states.get(CONSENT).state == "off"


async def test_rejections_counted_logged_and_audited(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unauthenticated requests: a counter, one log line a minute, one audit record."""
    client = await hass_client_no_auth()
    for _ in range(5):
        response = await client.post(
            f"/api/webhook/{WEBHOOK_ID}",
            data=b"{}",
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 401
    # A burst is shown once, a second later: no state write per forged request.
    assert hass.states.get("sensor.front_door_rejected_requests").state == "0"
    freezer.tick(timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_rejected_requests").state == "5"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_")]
    assert len([m for m in ours if "Rejected unauthenticated" in m]) == 1
    assert not [m for m in ours if WEBHOOK_ID in m]
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    records = await integration.runtime_data.audit.async_export(None, None)
    failed = [r for r in records if r["event"] == "authentication_failed"]
    assert [r["count"] for r in failed] == [5]


async def test_camera_going_unavailable_while_idle_does_nothing(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Only a live share is ended by the camera going away."""
    hass.states.async_set("camera.front_door", "unavailable")
    await hass.async_block_till_done()
    assert integration.runtime_data.session.live is None


async def test_stream_that_cannot_be_created_is_refused_before_any_grant(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream that cannot be created is a refusal: nothing granted, nothing counted."""
    await _consent(hass)

    def unusable(*args: Any, **kwargs: Any) -> None:
        raise HomeAssistantError("Stream integration is not set up.")

    monkeypatch.setattr(
        "custom_components.rtcc_share.live.hls_stream.create_stream", unusable
    )
    status, body = await _activate(await hass_client_no_auth(), city)
    assert (status, body) == (503, {"error": "camera_unavailable"})
    events = await _events(integration)
    assert "activation_granted" not in events
    assert events[-1] == "activation_refused"
    assert list(integration.runtime_data.session.history) == []


async def test_stream_failing_after_the_grant_counts_and_uses_up_the_id(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """A recorded grant whose stream fails to start has ended and counts for the day."""
    await _consent(hass)
    client = await hass_client_no_auth()
    with patch(
        "homeassistant.components.stream.Stream.start", side_effect=OSError("boom")
    ):
        status, body = await _activate(client, city)
    assert (status, body) == (503, {"error": "camera_unavailable"})
    assert (await _events(integration))[-2:] == ["activation_granted", "share_ended"]
    assert integration.runtime_data.session.activations_in_window() == 1
    # The same id cannot be granted again: it has ended.
    status, body = await _activate(client, city)
    assert status == 200
    assert body["status"] == "ended"
    assert (await _events(integration)).count("activation_granted") == 1


async def test_lapse_on_restore_turns_consent_off(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Consent restored after its lapse turns itself off and says so."""
    session = integration.runtime_data.session
    await session.async_restore_consent(True, dt_util.utcnow() - timedelta(days=46))
    assert not session.consent_on
    assert (await _events(integration))[-1] == "consent_off"


async def test_share_times_are_the_instants_it_really_has(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """`started_at` and `expires_at` are exact: the expiry timer uses the same instant."""
    await _consent(hass)
    with patch(
        "custom_components.rtcc_share.session.async_track_point_in_utc_time"
    ) as track:
        status, body = await _activate(await hass_client_no_auth(), city)
    assert status == 201
    grant = integration.runtime_data.session.live.grant
    assert grant.started.microsecond == grant.expires.microsecond == 0
    assert dt_util.parse_datetime(body["started_at"]) == grant.started
    assert dt_util.parse_datetime(body["expires_at"]) == grant.expires
    [(_, _, when)] = [call.args for call in track.call_args_list]
    assert when == grant.expires
