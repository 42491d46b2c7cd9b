"""The share session: notifications, restarts, races, rejected requests."""

import asyncio
from datetime import timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
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
    EVENT_GRANTED,
    stop_action,
)
from custom_components.rtcc_share.dry_run import TEST_SHARE_DURATION_S
from custom_components.rtcc_share.live import tokens
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
    # The incident type's label, not its code.
    assert any("(Shots fired, " in n["message"] for n in notifications.values())

    ended = async_capture_events(hass, EVENT_ENDED)
    hass.bus.async_fire("mobile_app_notification_action", {"action": "OTHER"})
    await hass.async_block_till_done()
    assert integration.runtime_data.session.live is not None
    hass.bus.async_fire("mobile_app_notification_action", {"action": action})
    # The end's notifications are the entry's background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)
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


# The resident's test run.

TEST_BUTTON = "button.front_door_run_a_test_share"
STOP_BUTTON = "button.front_door_stop_sharing_now"
LIVE = "binary_sensor.front_door_live_share"
EVENT = "event.front_door_activation"


async def _press(hass: HomeAssistant, button: str) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": button}, blocking=True
    )


@pytest.mark.parametrize(
    "entry_options",
    [{**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone"]}],
)
async def test_test_share_shows_everything_and_shares_nothing(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Consent off, a test run: notified, live, audited as a test; no URL, no count."""
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "mobile_app_phone", calls.append)
    granted = async_capture_events(hass, EVENT_GRANTED)
    ended = async_capture_events(hass, EVENT_ENDED)
    session = integration.runtime_data.session
    assert not session.consent_on
    await _press(hass, TEST_BUTTON)
    await hass.async_block_till_done(wait_background_tasks=True)

    # What the resident sees: the live-share sensor, the police view, the
    # event entity, the bus, the notification and the phone, all marked.
    live = hass.states.get(LIVE)
    assert live.state == "on"
    assert live.attributes["test"] is True
    assert live.attributes["activation_id"].startswith("TEST-")
    assert hass.states.get("camera.front_door_police_view").state == "streaming"
    event = hass.states.get(EVENT)
    assert event.attributes["event_type"] == "granted"
    assert event.attributes["test"] is True
    assert [e.data["test"] for e in granted] == [True]
    [notification] = persistent_notification._async_get_or_create_notifications(
        hass
    ).values()
    assert notification["title"] == "TEST – Camera shared with police"
    assert notification["message"].startswith("This is a test you started")
    [phone] = calls
    assert phone.data["title"] == "TEST – Camera shared with police"
    assert phone.data["data"]["actions"][0]["action"] == stop_action(
        integration.entry_id
    )

    # Nothing the city could reach, nothing counted.
    assert session.live.grant.stream_url is None
    assert session.live.grant.webrtc_url is None
    assert session.live.views == []
    assert hass.data[tokens._VIEWS] == {}
    assert list(session.history) == []
    assert (
        hass.states.get("sensor.front_door_activations_in_the_last_24_hours").state
        == "0"
    )
    assert hass.states.get("sensor.front_door_last_activation").state == "unknown"

    # It ends by itself after a minute.
    grant = session.live.grant
    assert grant.expires - grant.started == timedelta(seconds=TEST_SHARE_DURATION_S)
    freezer.move_to(grant.expires)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(LIVE).state == "off"
    assert [(e.data["reason"], e.data["test"]) for e in ended] == [("expired", True)]
    [notification] = persistent_notification._async_get_or_create_notifications(
        hass
    ).values()
    assert notification["title"] == "TEST – Camera sharing ended"
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [r["event"] for r in records] == ["test_share_started", "test_share_ended"]
    start, end = records
    assert start["activation_id"] == end["activation_id"]
    assert (end["reason"], end["duration_s"]) == ("expired", TEST_SHARE_DURATION_S)
    # The transparency report is about the city: a test is not in it.
    report = await integration.runtime_data.audit.async_transparency_report()
    assert report == []
    assert list(session.history) == []


async def test_test_share_never_beside_a_share(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Not while the city views the camera, nor twice at once: translated errors."""
    await _consent(hass)
    assert (await _activate(await hass_client_no_auth(), city))[0] == 201
    with pytest.raises(ServiceValidationError) as err:
        await _press(hass, TEST_BUTTON)
    assert err.value.translation_key == "test_share_while_sharing"
    assert "Jackson PD RTCC" in str(err.value)
    assert not integration.runtime_data.session.live.test
    await _press(hass, STOP_BUTTON)
    await _press(hass, TEST_BUTTON)
    with pytest.raises(ServiceValidationError) as err:
        await _press(hass, TEST_BUTTON)
    assert err.value.translation_key == "test_share_running"
    assert str(err.value).startswith("A test share is already running")
    assert (await _events(integration)).count("test_share_started") == 1


async def test_real_activation_ends_a_test_run_first(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """A city's grant is never refused for a test run: it ends, recorded, first."""
    ended = async_capture_events(hass, EVENT_ENDED)
    await _consent(hass)
    await _press(hass, TEST_BUTTON)
    status, body = await _activate(await hass_client_no_auth(), city)
    assert status == 201
    assert body["activation_id"] == "A-1"
    live = integration.runtime_data.session.live
    assert not live.test
    assert live.grant.stream_url == body["stream_url"]
    assert [(e.data["reason"], e.data.get("test")) for e in ended] == [
        ("activation_arrived", True)
    ]
    assert (await _events(integration))[-3:] == [
        "test_share_started",
        "test_share_ended",
        "activation_granted",
    ]
    records = await integration.runtime_data.audit.async_export(None, None)
    assert records[-2]["reason"] == "activation_arrived"


async def test_city_requests_refused_or_misaddressed_leave_a_test_run_alone(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """A refused request does not end a test run; the city cannot end or repeat it."""
    client = await hass_client_no_auth()
    session = integration.runtime_data.session
    await _press(hass, TEST_BUTTON)
    test_id = session.live.request.activation_id
    # Consent is off: refused, and the test goes on.
    assert await _activate(client, city) == (403, {"error": "consent_off"})
    assert session.live.test
    # The test's id is nothing the city can end.
    body, headers = city.sign(
        {"type": "activation.ended", "activation_id": test_id, "operator": {"id": "x"}}
    )
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 404
    assert session.live.test
    # Nor repeat: a request with its id is a new activation, never the test's grant.
    await _consent(hass)
    status, grant = await _activate(client, city, test_id)
    assert status == 201
    assert "stream_url" in grant
    assert not session.live.test


async def test_test_share_stopped_from_the_phone_or_by_consent(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """The phone's Stop action and turning consent off end a test run too."""
    ended = async_capture_events(hass, EVENT_ENDED)
    session = integration.runtime_data.session
    await _press(hass, TEST_BUTTON)
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": stop_action(session.entry_id)}
    )
    await hass.async_block_till_done()
    assert session.live is None
    await _consent(hass)
    await _press(hass, TEST_BUTTON)
    await _consent(hass, on=False)
    assert session.live is None
    assert [e.data["reason"] for e in ended] == ["stopped_by_resident", "consent_off"]


async def test_test_share_needs_the_audit_log(
    hass: HomeAssistant, integration: MockConfigEntry, tmp_path: Any
) -> None:
    """No record, no test run: a translated error, nothing live."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    integration.runtime_data.audit.path = blocker / "log.jsonl"
    with pytest.raises(HomeAssistantError) as err:
        await _press(hass, TEST_BUTTON)
    assert err.value.translation_key == "test_share_audit_log_unavailable"
    assert integration.runtime_data.session.live is None
    assert hass.states.get(LIVE).state == "off"
