"""Tests for the logbook descriptions of sharing events."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from homeassistant.components.logbook.models import async_event_to_row
from homeassistant.components.logbook.processor import EventProcessor
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtcc_share.const import (
    DOMAIN,
    EVENT_ENDED,
    EVENT_GRANTED,
    EVENT_REFUSED,
)

from .common import CAMERA

BASE = {
    "entry_id": "entry",
    "agency": "Jackson PD RTCC",
    "camera_entity_id": CAMERA,
    "activation_id": "JPD-RTCC-0017",
}
INCIDENT = {
    "incident_id": "CAD-20-118233",
    "incident_type": "shots_fired",
    "operator_id": "op-17",
}


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Give every test its own, empty config directory."""
    return str(tmp_path)


@pytest.fixture
async def logbook(hass: HomeAssistant, integration: MockConfigEntry) -> None:
    """Set up the real logbook (the recorder is not needed to describe events)."""
    hass.config.components.add("recorder")
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    await hass.config.async_update(time_zone="America/Chicago")


def _describe(hass: HomeAssistant, event_type: str, data: Mapping[str, Any]) -> Any:
    """Return the logbook row the logbook makes of an event."""
    processor = EventProcessor(hass, (EVENT_GRANTED, EVENT_REFUSED, EVENT_ENDED))
    [row] = processor.humanify(
        async_event_to_row(event) for event in [Event(event_type, data)]
    )
    return row


@pytest.mark.usefixtures("logbook")
@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        (
            EVENT_GRANTED,
            {**BASE, **INCIDENT, "expires_at": "2026-11-27T21:24:03Z"},
            "shared the camera with Jackson PD RTCC for incident Shots fired"
            " (CAD-20-118233) until 3:24 PM",
        ),
        (
            EVENT_GRANTED,
            {**BASE, **INCIDENT},
            "shared the camera with Jackson PD RTCC for incident Shots fired"
            " (CAD-20-118233)",
        ),
        (
            EVENT_REFUSED,
            {**BASE, **INCIDENT, "reason": "outside_area"},
            "refused a request from Jackson PD RTCC for incident Shots fired"
            " (CAD-20-118233): the incident is outside the sharing area",
        ),
        (
            EVENT_REFUSED,
            {**BASE, "activation_id": None, "reason": "already_active"},
            "refused a request from Jackson PD RTCC: another share is live",
        ),
        (
            EVENT_REFUSED,
            {**BASE, **INCIDENT, "reason": "some_new_reason"},
            "refused a request from Jackson PD RTCC for incident Shots fired"
            " (CAD-20-118233): some new reason",
        ),
        (
            EVENT_ENDED,
            {**BASE, **INCIDENT, "reason": "expired", "duration_s": 900},
            "stopped sharing with Jackson PD RTCC: the granted time ran out"
            " after 15 min 0 s",
        ),
        (
            EVENT_ENDED,
            {**BASE, "reason": "ended_by_city", "duration_s": 45},
            "stopped sharing with Jackson PD RTCC: ended by the city after 45 s",
        ),
        (
            EVENT_ENDED,
            {**BASE, "reason": "ha_stopping", "duration_s": 3725},
            "stopped sharing with Jackson PD RTCC: Home Assistant stopped"
            " after 1 h 2 min",
        ),
        # A code without a label stays the code the city sent.
        (
            EVENT_REFUSED,
            {**BASE, **INCIDENT, "incident_type": "protest", "reason": "outside_area"},
            "refused a request from Jackson PD RTCC for incident protest"
            " (CAD-20-118233): the incident is outside the sharing area",
        ),
        # A test run reads as one.
        (
            EVENT_GRANTED,
            {**BASE, **INCIDENT, "expires_at": "2026-11-27T03:01:00Z", "test": True},
            "ran a test share until 9:01 PM; nothing was shared",
        ),
        (
            EVENT_ENDED,
            {**BASE, "reason": "activation_arrived", "duration_s": 12, "test": True},
            "ended the test share: a real activation arrived after 12 s",
        ),
    ],
)
async def test_describe_event(
    hass: HomeAssistant, event_type: str, data: dict[str, Any], message: str
) -> None:
    """Grants, refusals and ends read as sentences about the camera."""
    row = _describe(hass, event_type, data)
    assert row["name"] == "Camera sharing"
    assert row["message"] == message
    assert row["domain"] == DOMAIN
    assert row["entity_id"] == CAMERA


@pytest.mark.usefixtures("logbook")
async def test_describe_event_without_camera(hass: HomeAssistant) -> None:
    """Without a camera the row names no entity."""
    data = {**BASE, "camera_entity_id": None, "reason": "consent_off"}
    row = _describe(hass, EVENT_REFUSED, data)
    assert row["message"] == "refused a request from Jackson PD RTCC: consent is off"
    assert "entity_id" not in row


@pytest.mark.usefixtures("logbook")
async def test_describe_event_shows_hidden_characters(hass: HomeAssistant) -> None:
    """Events recorded with raw city text still read as what they say.

    The right-to-left override would show the id reversed; the line break and
    the isolate would make the rest read as the integration's own words.
    """
    data = {
        **BASE,
        **INCIDENT,
        "incident_id": "CAD-\u202e332811-02\u2066\n: consent is off\u2069",
        "reason": "outside_area",
    }
    row = _describe(hass, EVENT_REFUSED, data)
    assert row["message"] == (
        "refused a request from Jackson PD RTCC for incident Shots fired"
        " (CAD-\ufffd332811-02\ufffd: consent is off\ufffd):"
        " the incident is outside the sharing area"
    )
