"""What the resident is told: in their language, with the city's values neutralised."""

from collections.abc import Mapping
import json
from pathlib import Path
import re
import sys
from typing import Any
import unicodedata

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.components.logbook.models import async_event_to_row
from homeassistant.components.logbook.processor import EventProcessor
from homeassistant.core import Event, HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_system import (
    METRIC_SYSTEM,
    US_CUSTOMARY_SYSTEM,
    UnitSystem,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_NOTIFY_TARGETS,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_ENDED,
    EVENT_GRANTED,
    EVENT_REFUSED,
    stop_action,
)
from custom_components.rtcc_share.texts import Texts, markdown_escape, plain, visible

from .common import ENTRY_ID, LIVE, City, requested
from .conftest import WEBHOOK_ID, SourceCamera

TRANSLATIONS = (
    Path(__file__).parent.parent / "custom_components" / DOMAIN / "translations"
)
# What a hostile city could put into the ids it sends.
HOSTILE_ID = "[click](https://evil.example/) ![px](https://t.example/p.png) **x** <img>"
# Ids that read differently from what they are: an override reverses the rest
# ("CAD-20-118233" shown as "332811-02-DAC"), isolates and marks reorder, zero
# widths hide, a line break and C1's NEL start a line of the city's own.
BIDI_INCIDENT_ID = "CAD-\u202e332811-02\u202c-\u2066x\u2069\u200b\u061c1"
BIDI_OPERATOR_ID = "op-17\u200f\u200e\n\x85Sharing stopped by the resident\u2028"
# Unicode's general categories of characters that are never seen as themselves.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _hidden(text: str) -> set[str]:
    return {c for c in text if unicodedata.category(c) in HIDDEN_CATEGORIES}


def _values(data: Mapping[str, Any]) -> str:
    """The text values as they are (a repr would escape what is searched for)."""
    return " ".join(str(value) for value in data.values())


def _entity_id(hass: HomeAssistant, platform: str, key: str) -> str:
    """Entity ids follow the language; unique ids do not."""
    [entry] = hass.config_entries.async_entries(DOMAIN)
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_{key}"
    )
    assert entity_id
    return entity_id


async def _grant(hass: HomeAssistant, client: Any, city: City, **changes: Any) -> None:
    await hass.services.async_call(
        "switch",
        "turn_on",
        {"entity_id": _entity_id(hass, "switch", "consent")},
        blocking=True,
    )
    body, headers = city.sign(requested("A-1", **changes))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 201, await response.text()
    await hass.async_block_till_done()


def _notification(hass: HomeAssistant) -> dict[str, Any]:
    [notification] = persistent_notification._async_get_or_create_notifications(
        hass
    ).values()
    return dict(notification)


def _logbook(hass: HomeAssistant, event_type: str, data: dict[str, Any]) -> str:
    processor = EventProcessor(hass, (EVENT_GRANTED, EVENT_REFUSED, EVENT_ENDED))
    [row] = processor.humanify([async_event_to_row(Event(event_type, data))])
    return str(row["message"])


@pytest.fixture
async def spanish(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The integration set up in a Home Assistant that speaks Spanish."""
    await hass.config.async_update(language="es")
    hass.config.components.add("recorder")
    assert await async_setup_component(hass, "logbook", {})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


async def test_notification_and_logbook_in_spanish(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    spanish: MockConfigEntry,
    city: City,
) -> None:
    """A Spanish-speaking resident reads the grant and the end in Spanish."""
    granted: list[Event] = []
    ended: list[Event] = []
    hass.bus.async_listen(EVENT_GRANTED, granted.append)
    hass.bus.async_listen(EVENT_ENDED, ended.append)
    await _grant(hass, await hass_client_no_auth(), city)
    notification = _notification(hass)
    assert notification["title"] == "Cámara compartida con la policía"
    # The incident type's label, the distance in metres, a 24-hour local time.
    until = dt_util.as_local(spanish.runtime_data.session.live.grant.expires)
    assert (
        "está viendo Front door por un incidente (Disparos, CAD-20-118233)"
        " a 110 m de su casa, comunicado por el operador op-17,"
        f" hasta las {until.hour}:{until.minute:02}."
    ) in notification["message"]
    assert _logbook(hass, EVENT_GRANTED, granted[0].data) == (
        "compartió la cámara con Jackson PD RTCC por el incidente Disparos"
        f" (CAD-20-118233) hasta las {until.hour}:{until.minute:02}"
    )
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": _entity_id(hass, "button", "stop_sharing")},
        blocking=True,
    )
    await hass.async_block_till_done()
    notification = _notification(hass)
    assert notification["title"] == "Se dejó de compartir la cámara"
    assert "detenido por el residente" in notification["message"]
    assert re.fullmatch(
        r"dejó de compartir con Jackson PD RTCC: detenido por el residente tras \d s",
        _logbook(hass, EVENT_ENDED, ended[0].data),
    )
    await hass.config_entries.async_unload(spanish.entry_id)


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: ["notify.phone"]}]
)
async def test_city_markup_never_reaches_the_resident_as_markup(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Links, images (tracking pixels), bold text and HTML in ids stay plain text."""
    hass.config.components.add("recorder")
    assert await async_setup_component(hass, "logbook", {})
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "phone", calls.append)
    granted: list[Event] = []
    hass.bus.async_listen(EVENT_GRANTED, granted.append)
    incident = {**requested()["incident"], "id": HOSTILE_ID}
    await _grant(
        hass,
        await hass_client_no_auth(),
        city,
        incident=incident,
        operator={"id": HOSTILE_ID},
    )
    markdown = _notification(hass)["message"]
    for markup in (r"\]\(", r"!\[", r"\*\*", "<img"):
        assert not re.search(r"(?<!\\)" + markup, markdown), markup
    # Escaped, not lost: Markdown renders exactly what the city sent.
    assert markdown_escape(HOSTILE_ID) in markdown
    await hass.async_block_till_done(wait_background_tasks=True)
    [call] = calls
    assert plain(HOSTILE_ID) in call.data["message"]
    assert HOSTILE_ID not in call.data["message"]
    message = _logbook(hass, EVENT_GRANTED, granted[0].data)
    assert plain(HOSTILE_ID) in message
    assert HOSTILE_ID not in message


def test_markdown_escape_and_plain() -> None:
    """Both neutralisers leave ordinary ids alone and break every construct."""
    assert plain("CAD-20-118233") == "CAD-20-118233"
    assert plain("op_17") == "op_17"
    assert plain("a\nb\x00c") == "a\ufffdb\ufffdc"
    assert markdown_escape("shots_fired") == r"shots\_fired"
    assert markdown_escape("[a](b)") == r"\[a\]\(b\)"


@pytest.mark.parametrize(
    "char",
    [
        *"\u202a\u202b\u202c\u202d\u202e",  # embeddings, overrides, pop
        *"\u2066\u2067\u2068\u2069",  # isolates
        *"\u200e\u200f\u061c",  # marks
        *"\u200b\u200c\u200d\u2060\ufeff\u00ad",  # zero widths, soft hyphen
        *"\x00\x07\x08\t\n\r\x1b\x7f",  # C0 and DEL
        *"\x80\x85\x9b\x9f",  # C1: NEL, CSI
        *"\u2028\u2029",  # line and paragraph separators
        "\U000e0041",  # a tag
        *"\u3164\u115f\ufe0f\u034f\ufff9",  # invisible letters, marks, anchor
    ],
    ids=lambda char: f"U+{ord(char):04X}",
)
def test_hidden_characters_are_shown_not_obeyed(char: str) -> None:
    """Each control, bidi, invisible or line-breaking character becomes one �."""
    assert visible(f"a{char}b") == "a\ufffdb"
    assert visible(f"a{char * 3}{char}b") == "a\ufffdb"
    assert plain(f"a{char}b") == "a\ufffdb"
    assert markdown_escape(f"a{char}b") == "a\ufffdb"


def test_visible_leaves_every_letter_and_shows_every_hidden_character() -> None:
    """All of Unicode: hidden categories become �; ordinary scripts stay as sent."""
    hidden = "".join(
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in HIDDEN_CATEGORIES
    )
    assert visible(f"x{hidden}y") == "x\ufffdy"
    for text in ("CAD-20-118233", "Ñandú", "שלום", "مرحبا", "警察", "😀 ok", "a b"):
        assert visible(text) == text
    assert visible(None) == "None"


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: ["notify.phone"]}]
)
async def test_bidi_controls_never_reach_the_resident(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Notification, phone, logbook, entities and bus show �; the audit log, the bytes."""
    hass.config.components.add("recorder")
    assert await async_setup_component(hass, "logbook", {})
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "phone", calls.append)
    granted: list[Event] = []
    hass.bus.async_listen(EVENT_GRANTED, granted.append)
    incident = {**requested()["incident"], "id": BIDI_INCIDENT_ID}
    await _grant(
        hass,
        await hass_client_no_auth(),
        city,
        incident=incident,
        operator={"id": BIDI_OPERATOR_ID, "name": "op\u202e"},
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    [call] = calls
    event_state = hass.states.get(_entity_id(hass, "event", "activation"))
    live_state = hass.states.get(_entity_id(hass, "binary_sensor", "live_share"))
    assert event_state is not None
    assert live_state is not None
    shown = {
        "notification": _notification(hass)["message"],
        "phone": call.data["message"],
        "logbook": _logbook(hass, EVENT_GRANTED, granted[0].data),
        "bus event": _values(granted[0].data),
        "event entity": _values(event_state.attributes),
        "live share sensor": _values(live_state.attributes),
    }
    incident, operator = visible(BIDI_INCIDENT_ID), visible(BIDI_OPERATOR_ID)
    assert incident == "CAD-\ufffd332811-02\ufffd-\ufffdx\ufffd1"
    assert operator == "op-17\ufffdSharing stopped by the resident\ufffd"
    for where, text in shown.items():
        assert not _hidden(text), where
        assert incident in text or where == "live share sensor", where
        assert operator in text or where == "logbook", where
    # The audit log keeps exactly what the city sent.
    [record] = [
        record
        for record in await integration.runtime_data.audit.async_tail(10)
        if record["event"] == "activation_granted"
    ]
    assert record["incident_id"] == BIDI_INCIDENT_ID
    assert record["operator_id"] == BIDI_OPERATOR_ID


PUSH_URL = "https://mobile-push.home-assistant.dev/push"
PHONE = {
    "app_data": {"push_token": "PUSH_TOKEN", "push_url": PUSH_URL},
    "app_id": "io.homeassistant.companion.android",
    "app_name": "Home Assistant",
    "app_version": "2026.10.0",
    "device_name": "Resident's Pixel",
    "manufacturer": "Google",
    "model": "Pixel 9",
    "os_name": "Android",
    "os_version": "16",
    "supports_encryption": False,
}


async def test_phone_chosen_by_its_notify_entity_gets_the_stop_button(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    aioclient_mock: AiohttpClientMocker,
    camera: SourceCamera,
    config_entry: MockConfigEntry,
    city: City,
) -> None:
    """The Companion app as set up today: its notify entity, the Stop button, the tap.

    A notify entity takes a title and a message only; the phone's legacy
    service carries the action, and the app's tap comes back as the
    `mobile_app_notification_action` event through the app's own webhook.
    """
    # Before the first client: routes are frozen once the test server runs.
    for component in ("notify", "mobile_app"):
        assert await async_setup_component(hass, component, {})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    response = await (await hass_client()).post(
        "/api/mobile_app/registrations", json=PHONE
    )
    assert response.status == 201
    phone_webhook = (await response.json())["webhook_id"]
    await hass.async_block_till_done()
    [phone] = [
        entry.entity_id
        for entry in er.async_get(hass).entities.values()
        if entry.platform == "mobile_app" and entry.domain == "notify"
    ]
    assert hass.services.has_service("notify", "mobile_app_resident_s_pixel")
    # Configure → Also notify: the phone's notify entity, as the picker offers it.
    hass.config_entries.async_update_entry(
        config_entry, options={**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: [phone]}
    )
    await hass.async_block_till_done()
    aioclient_mock.post(PUSH_URL, status=201, json={})

    await _grant(hass, await hass_client_no_auth(), city)
    await hass.async_block_till_done(wait_background_tasks=True)
    [(_, _, push, _)] = aioclient_mock.mock_calls
    assert push["title"] == "Camera shared with police"
    [action] = push["data"]["actions"]
    assert action == {"action": stop_action(ENTRY_ID), "title": "Stop sharing"}

    # The resident taps Stop sharing: the app fires the action's event.
    response = await (await hass_client_no_auth()).post(
        f"/api/webhook/{phone_webhook}",
        json={
            "type": "fire_event",
            "data": {
                "event_type": "mobile_app_notification_action",
                "event_data": {"action": action["action"]},
            },
        },
    )
    assert response.status == 200
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.runtime_data.session.live is None
    assert hass.states.get(LIVE).attributes.get("activation_id") is None
    records = await config_entry.runtime_data.audit.async_export(None, None)
    assert records[-1]["reason"] == "stopped_by_resident"
    # The end reaches the phone too, without a button.
    ended_push = aioclient_mock.mock_calls[-1][2]
    assert ended_push["title"] == "Camera sharing ended"
    assert "data" not in ended_push
    await hass.config_entries.async_unload(config_entry.entry_id)


def _texts(language: str) -> Texts:
    """The integration's texts in a language, from its translation file."""

    def flatten(tree: dict[str, Any], prefix: str) -> dict[str, str]:
        flat: dict[str, str] = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                flat |= flatten(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value
        return flat

    path = TRANSLATIONS / f"{language}.json"
    return Texts(flatten(json.loads(path.read_text("utf-8")), f"component.{DOMAIN}."))


@pytest.mark.parametrize(
    ("language", "units", "meters", "shown"),
    [
        ("en", METRIC_SYSTEM, 3.4, "3 m"),
        ("en", METRIC_SYSTEM, 111.2, "110 m"),
        ("en", METRIC_SYSTEM, 1849.0, "1850 m"),
        ("en", US_CUSTOMARY_SYSTEM, 111.2, "360 ft"),
        ("en", US_CUSTOMARY_SYSTEM, 1668.0, "1.0 mi"),
        ("en", US_CUSTOMARY_SYSTEM, 2000.0, "1.2 mi"),
        ("es", METRIC_SYSTEM, 111.2, "110 m"),
        ("es", US_CUSTOMARY_SYSTEM, 111.2, "360 pies"),
        ("es", US_CUSTOMARY_SYSTEM, 2000.0, "1,2 millas"),
    ],
)
def test_distance_in_home_assistant_unit_system(
    language: str, units: UnitSystem, meters: float, shown: str
) -> None:
    """Metres, or feet and then miles; rounded as a notification needs."""
    assert _texts(language).distance(meters, units) == shown


@pytest.mark.parametrize(
    ("language", "moment", "shown"),
    [
        ("en", "2026-11-27T03:05:00Z", "9:05 PM"),
        ("en", "2026-11-27T06:30:00Z", "12:30 AM"),
        ("en", "2026-11-27T18:00:00Z", "12:00 PM"),
        ("es", "2026-11-27T03:05:00Z", "21:05"),
        ("es", "2026-11-27T06:30:00Z", "0:30"),
    ],
)
async def test_times_are_local_in_the_language_convention(
    hass: HomeAssistant, language: str, moment: str, shown: str
) -> None:
    """Home Assistant's time zone; English 12-hour, Spanish 24-hour (CLDR short time)."""
    await hass.config.async_update(time_zone="America/Chicago")
    assert _texts(language).clock(dt_util.parse_datetime(moment)) == shown


def test_incident_types_read_as_their_labels() -> None:
    """A known type reads as the options selector's label; another stays its code."""
    english, spanish = _texts("en"), _texts("es")
    assert english.incident_type("burglary_in_progress", plain) == (
        "Burglary in progress"
    )
    assert spanish.incident_type("shots_fired", markdown_escape) == "Disparos"
    assert english.incident_type("welfare_check", markdown_escape) == (
        r"welfare\_check"
    )
    assert english.incident_type("welfare_check", plain) == "welfare_check"


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_NOTIFY_TARGETS: ["notify.phone"]}]
)
async def test_grant_notification_in_us_units_and_english_time(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A US home reads feet and a 12-hour local time, on the phone and in HA."""
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "phone", calls.append)
    await hass.config.async_update(
        time_zone="America/Chicago", unit_system="us_customary"
    )
    freezer.move_to("2026-11-27T21:14:03Z")
    await _grant(hass, await hass_client_no_auth(), city)
    await hass.async_block_till_done(wait_background_tasks=True)
    expected = (
        "Jackson PD RTCC is viewing Front door for an incident (Shots fired,"
        " CAD-20-118233) 360 ft from your home, reported by operator op-17,"
        " until 3:24 PM."
    )
    assert _notification(hass)["message"].startswith(expected)
    [call] = calls
    assert call.data["message"].startswith(expected)


async def test_test_run_notification_in_spanish(
    hass: HomeAssistant, spanish: MockConfigEntry
) -> None:
    """The test run is marked as one, in the resident's language."""
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": _entity_id(hass, "button", "test_share")},
        blocking=True,
    )
    notification = _notification(hass)
    assert notification["title"] == "PRUEBA – Cámara compartida con la policía"
    assert notification["message"].startswith("Esta es una prueba que usted inició")
    assert "(Disparos, TEST) a 0 m de su casa" in notification["message"]
    await hass.config_entries.async_unload(spanish.entry_id)
