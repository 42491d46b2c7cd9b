"""The automation blueprints, loaded by Home Assistant's blueprint component."""

import asyncio
from collections.abc import Callable
from datetime import datetime
import json
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import EVENT_ENDED

from ..common import (
    CONSENT,
    EVENT,
    LIVE,
    STOP,
    WEBHOOK_URL,
    City,
    ended,
    requested,
    turn_on_consent,
)

ROOT = Path(__file__).parents[2]
SOURCE = ROOT / "blueprints" / "automation" / "rtcc_share"
# The integration's minimum; its entities are what the blueprints need.
MIN_HA = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))["homeassistant"]
BLUEPRINTS = sorted(path.name for path in SOURCE.glob("*.yaml"))

AUTOMATION = "automation.rtcc"


@pytest.fixture(autouse=True)
def installed_blueprints(hass_config_dir: str) -> None:
    """Install the repository's blueprints as a user would, into <config>/blueprints."""
    target = Path(hass_config_dir, "blueprints", "automation", "rtcc_share")
    target.mkdir(parents=True)
    for name in BLUEPRINTS:
        shutil.copy(SOURCE / name, target / name)


async def use_blueprint(hass: HomeAssistant, name: str, **inputs: Any) -> None:
    """Set up one automation from a blueprint; fail if it does not load."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "alias": "rtcc",
                    "use_blueprint": {"path": f"rtcc_share/{name}", "input": inputs},
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get(AUTOMATION).state == "on"


async def use_schedule(
    hass: HomeAssistant, start: str, end: str, weekdays: list[str] | None = None
) -> None:
    """Set up the consent schedule for the front door (every day by default)."""
    days = {} if weekdays is None else {"weekdays": weekdays}
    await use_blueprint(
        hass,
        "sharing_schedule.yaml",
        consent_switch=CONSENT,
        start_time=start,
        end_time=end,
        **days,
    )


def consent(hass: HomeAssistant) -> str:
    """Return the consent switch's state."""
    return hass.states.get(CONSENT).state


# Every blueprint


def test_all_blueprints_present() -> None:
    """The three documented blueprints exist."""
    assert BLUEPRINTS == [
        "notify_and_confirm.yaml",
        "share_while_away.yaml",
        "sharing_schedule.yaml",
    ]


@pytest.mark.parametrize("name", BLUEPRINTS)
async def test_blueprint_metadata(hass: HomeAssistant, name: str) -> None:
    """Each passes HA's blueprint schema, with the project's metadata."""
    # HA's own loader: it knows !input.
    blueprint = Blueprint(
        await hass.async_add_executor_job(yaml_util.load_yaml, str(SOURCE / name)),
        expected_domain="automation",
        path=f"rtcc_share/{name}",
        schema=BLUEPRINT_SCHEMA,
    )
    metadata = blueprint.metadata
    assert metadata["domain"] == "automation"
    assert metadata["source_url"] == (
        "https://github.com/rtcc-share/rtcc_share/blob/main/"
        f"blueprints/automation/rtcc_share/{name}"
    )
    assert metadata["homeassistant"] == {"min_version": MIN_HA}
    assert metadata["author"]
    assert metadata["description"]
    # The integration's own entities are offered from this integration only.
    for spec in metadata["input"].values():
        selector = spec.get("selector", {})
        for entity_filter in selector.get("entity", {}).get("filter", []):
            if entity_filter["domain"] in (
                "switch",
                "event",
                "button",
                "binary_sensor",
            ):
                assert entity_filter["integration"] == "rtcc_share"


# sharing_schedule.yaml


def local(text: str) -> datetime:
    """A local time (the test instance is in US/Pacific)."""
    return dt_util.parse_datetime(text).replace(tzinfo=dt_util.get_default_time_zone())


def at(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Callable[[str], Any]:
    """Return a coroutine function that moves the clock and fires due timers."""

    async def _at(text: str) -> None:
        moment = local(text)
        freezer.move_to(moment)
        async_fire_time_changed(hass, moment)
        await hass.async_block_till_done()

    return _at


async def test_schedule_turns_consent_on_and_off(
    hass: HomeAssistant, integration: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """On at the start on chosen weekdays, off at the end; other days stay off."""
    clock = at(hass, freezer)
    await clock("2026-11-02 07:00:00")  # a Monday
    await use_schedule(hass, "08:00:00", "18:00:00", ["mon", "wed"])
    assert consent(hass) == "off"

    await clock("2026-11-02 08:00:00")
    assert consent(hass) == "on"
    await clock("2026-11-02 12:00:00")
    assert consent(hass) == "on"
    await clock("2026-11-02 18:00:00")
    assert consent(hass) == "off"

    await clock("2026-11-03 08:00:00")  # Tuesday: not chosen
    assert consent(hass) == "off"
    await clock("2026-11-03 18:00:00")
    assert consent(hass) == "off"

    await clock("2026-11-04 08:00:00")  # Wednesday
    assert consent(hass) == "on"
    await clock("2026-11-04 18:00:00")
    assert consent(hass) == "off"


async def test_schedule_overnight_window_belongs_to_its_start_day(
    hass: HomeAssistant, integration: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """22:00-06:00 on Friday runs into Saturday morning, not Saturday night."""
    clock = at(hass, freezer)
    await clock("2026-11-06 12:00:00")  # a Friday
    await use_schedule(hass, "22:00:00", "06:00:00", ["fri"])
    await clock("2026-11-06 22:00:00")
    assert consent(hass) == "on"
    await clock("2026-11-07 06:00:00")
    assert consent(hass) == "off"
    await clock("2026-11-07 22:00:00")  # Saturday
    assert consent(hass) == "off"


@pytest.mark.parametrize(
    ("moment", "consent_before", "consent_after"),
    [
        ("2026-11-02 20:00:00", "on", "off"),  # Monday evening, after the window
        ("2026-11-03 09:30:00", "off", "on"),  # Tuesday, inside the window
        ("2026-11-03 09:30:00", "on", "on"),
    ],
)
async def test_schedule_corrects_consent_when_home_assistant_starts(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    moment: str,
    consent_before: str,
    consent_after: str,
) -> None:
    """At start, consent is set as the window says (default: every weekday)."""
    await at(hass, freezer)(moment)
    await hass.services.async_call(
        "switch", f"turn_{consent_before}", {"entity_id": CONSENT}, blocking=True
    )
    await use_schedule(hass, "08:00:00", "18:00:00")
    assert consent(hass) == consent_before
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    await hass.async_block_till_done()
    assert consent(hass) == consent_after


# share_while_away.yaml


def person(
    hass: HomeAssistant, entity_id: str, state: str, zones: list[str] | None = None
) -> None:
    """Set a person's location as the person integration would."""
    hass.states.async_set(entity_id, state, {"in_zones": zones or []})


async def test_away_consent_follows_the_people(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """On only once everybody is away; off as soon as anybody is home or unknown."""
    person(hass, "person.a", "home", ["zone.home"])
    person(hass, "person.b", "home", ["zone.home"])
    await use_blueprint(
        hass,
        "share_while_away.yaml",
        consent_switch=CONSENT,
        persons=["person.a", "person.b"],
    )
    person(hass, "person.a", "not_home")
    await hass.async_block_till_done()
    assert consent(hass) == "off"

    person(hass, "person.b", "Work", ["zone.work"])
    await hass.async_block_till_done()
    assert consent(hass) == "on"

    person(hass, "person.a", "home", ["zone.home"])
    await hass.async_block_till_done()
    assert consent(hass) == "off"

    person(hass, "person.a", "not_home")
    await hass.async_block_till_done()
    assert consent(hass) == "on"
    person(hass, "person.b", "unavailable")
    await hass.async_block_till_done()
    assert consent(hass) == "off"


async def test_away_ends_a_live_share_when_someone_comes_home(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
) -> None:
    """Coming home withdraws consent, which ends the live share at once."""
    person(hass, "person.a", "not_home")
    await use_blueprint(
        hass, "share_while_away.yaml", consent_switch=CONSENT, persons=["person.a"]
    )
    person(hass, "person.a", "Shop")  # a state change: the blueprint evaluates
    await hass.async_block_till_done()
    assert consent(hass) == "on"
    status, _ = await grant(hass_client_no_auth)
    assert status == 201
    assert hass.states.get(LIVE).state == "on"

    person(hass, "person.a", "home", ["zone.home"])
    await hass.async_block_till_done()
    assert consent(hass) == "off"
    assert hass.states.get(LIVE).state == "off"


async def test_away_by_zone_count(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Without people chosen, the zone's count of people decides."""
    await hass.config.async_update(latitude=32.29876, longitude=-90.18481)
    assert await async_setup_component(hass, "zone", {})
    person(hass, "person.a", "home", ["zone.home"])
    await hass.async_block_till_done()
    await use_blueprint(hass, "share_while_away.yaml", consent_switch=CONSENT)
    assert hass.states.get("zone.home").state == "1"

    person(hass, "person.a", "not_home")
    await hass.async_block_till_done()
    assert hass.states.get("zone.home").state == "0"
    assert consent(hass) == "on"

    person(hass, "person.a", "home", ["zone.home"])
    await hass.async_block_till_done()
    assert consent(hass) == "off"


# notify_and_confirm.yaml


async def grant(
    hass_client_no_auth: ClientSessionGenerator, activation_id: str = "JPD-RTCC-0017"
) -> tuple[int, dict[str, Any]]:
    """Have the city activate, signed as in tests/test_webhook.py."""
    http = await hass_client_no_auth()
    body, headers = City().sign(requested(activation_id))
    response = await http.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status, await response.json()


async def city_end(hass_client_no_auth: ClientSessionGenerator) -> int:
    """Have the city end the activation."""
    http = await hass_client_no_auth()
    body, headers = City().sign(ended())
    response = await http.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status


@pytest.fixture
async def phone(hass: HomeAssistant, integration: MockConfigEntry) -> list[ServiceCall]:
    """A phone's notify action, the notify_and_confirm automation, consent on."""
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "mobile_app_phone", calls.append)
    await use_blueprint(
        hass,
        "notify_and_confirm.yaml",
        activation_event=EVENT,
        live_share=LIVE,
        stop_button=STOP,
        notify_action="notify.mobile_app_phone",
    )
    await turn_on_consent(hass)
    return calls


async def eventually(check: Callable[[], bool]) -> None:
    """Wait until check() holds.

    Not async_block_till_done: it would also wait for the automation's
    wait_for_trigger, which runs until the share ends.
    """
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.01)


def running(hass: HomeAssistant) -> int:
    """Return how many runs of the automation are in progress."""
    return int(hass.states.get(AUTOMATION).attributes["current"])


async def test_notify_then_stop_from_the_phone(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    phone: list[ServiceCall],
) -> None:
    """A grant notifies with a Stop button; tapping it ends the share, consent stays."""
    ends = async_capture_events(hass, EVENT_ENDED)
    status, _ = await grant(hass_client_no_auth)
    assert status == 201
    await eventually(lambda: len(phone) == 1)

    data = phone[0].data
    assert data["title"] == "Camera shared with police"
    assert data["message"].startswith("Front door is shared with the police")
    assert "(shots_fired, CAD-20-118233)" in data["message"]
    assert "operator op-17" in data["message"]
    expires = dt_util.parse_datetime(hass.states.get(LIVE).attributes["expires"])
    assert f"until {dt_util.as_local(expires):%H:%M}." in data["message"]
    assert data["data"]["actions"] == [
        {"action": "RTCC_SHARE_STOP", "title": "Stop sharing"}
    ]
    await eventually(lambda: running(hass) == 1)

    hass.bus.async_fire("mobile_app_notification_action", {"action": "OTHER"})
    await asyncio.sleep(0.1)
    assert hass.states.get(LIVE).state == "on"

    hass.bus.async_fire("mobile_app_notification_action", {"action": "RTCC_SHARE_STOP"})
    await eventually(lambda: hass.states.get(LIVE).state == "off")
    await hass.async_block_till_done()
    assert [event.data["reason"] for event in ends] == ["stopped_by_resident"]
    assert consent(hass) == "on"
    assert running(hass) == 0


async def test_notify_wait_ends_with_the_share(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    phone: list[ServiceCall],
) -> None:
    """When the city ends the share the automation stops waiting; a late tap is inert."""
    assert (await grant(hass_client_no_auth))[0] == 201
    await eventually(lambda: running(hass) == 1 and len(phone) == 1)

    assert await city_end(hass_client_no_auth) == 200
    await eventually(lambda: running(hass) == 0)
    await hass.async_block_till_done()

    presses = async_capture_events(hass, "call_service")
    hass.bus.async_fire("mobile_app_notification_action", {"action": "RTCC_SHARE_STOP"})
    await hass.async_block_till_done()
    assert presses == []


async def test_notify_only_for_grants(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    phone: list[ServiceCall],
) -> None:
    """A refusal fires the event entity too, but sends no notification."""
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": CONSENT}, blocking=True
    )
    status, body = await grant(hass_client_no_auth)
    assert (status, body) == (403, {"error": "consent_off"})
    await hass.async_block_till_done()
    assert hass.states.get(EVENT).attributes["event_type"] == "refused"
    assert phone == []
    assert running(hass) == 0


async def test_notify_not_for_a_restored_grant(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    phone: list[ServiceCall],
) -> None:
    """An event entity re-added with a restored `granted` state sends no alert."""
    assert (await grant(hass_client_no_auth))[0] == 201
    await eventually(lambda: len(phone) == 1)
    granted = hass.states.get(EVENT)
    assert granted.attributes["event_type"] == "granted"

    # What a restart after a crash looks like to the automation.
    hass.states.async_remove(EVENT)
    hass.states.async_set(EVENT, granted.state, granted.attributes)
    await asyncio.sleep(0.1)
    assert len(phone) == 1
    assert running(hass) == 1  # still the first run, waiting for a tap
