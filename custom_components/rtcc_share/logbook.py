"""Describe rtcc_share events in the logbook."""

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.components.logbook.models import LazyEventPartialState
from homeassistant.core import HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EVENT_ENDED, EVENT_GRANTED, EVENT_REFUSED

NAME = "Camera sharing"

# Reasons read as text; an unknown code is shown with spaces for underscores.
REASONS = {
    "consent_off": "consent is off",
    "consent_expired": "consent has lapsed",
    "consent_lapsed": "consent lapsed",
    "incident_type_not_allowed": "the incident type is not allowed",
    "outside_area": "the incident is outside the sharing area",
    "rate_limited": "the daily limit is reached",
    "already_active": "another share is live",
    "camera_unavailable": "the camera is unavailable",
    "no_external_url": "there is no external HTTPS address",
    "audit_log_unavailable": "the audit log cannot be written",
    "expired": "the granted time ran out",
    "ended_by_city": "ended by the city",
    "stopped_by_resident": "stopped by the resident",
    "unloaded": "the integration was unloaded",
    "ha_stopping": "Home Assistant stopped",
}


def _reason(data: Mapping[str, Any]) -> str:
    code = str(data.get("reason"))
    return REASONS.get(code, code.replace("_", " "))


def _duration(seconds: Any) -> str:
    """Return a duration as `1 h 2 min`, `5 min 3 s` or `45 s`."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _incident(data: Mapping[str, Any]) -> str:
    return f"{str(data.get('incident_type')).replace('_', ' ')} ({data.get('incident_id')})"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[
        [str, str, Callable[[LazyEventPartialState], dict[str, Any]]], None
    ],
) -> None:
    """Describe grants, refusals and ends of camera shares."""

    def _entry(data: Mapping[str, Any], message: str) -> dict[str, Any]:
        entry = {LOGBOOK_ENTRY_NAME: NAME, LOGBOOK_ENTRY_MESSAGE: message}
        if entity_id := data.get("camera_entity_id"):
            entry[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return entry

    @callback
    def async_describe_granted(event: LazyEventPartialState) -> dict[str, Any]:
        data = event.data
        message = f"shared the camera with {data.get('agency')} for incident {_incident(data)}"
        if expires := dt_util.parse_datetime(str(data.get("expires_at"))):
            message += f" until {dt_util.as_local(expires):%H:%M}"
        return _entry(data, message)

    @callback
    def async_describe_refused(event: LazyEventPartialState) -> dict[str, Any]:
        data = event.data
        message = f"refused a request from {data.get('agency')}"
        if data.get("incident_id"):
            message += f" for incident {_incident(data)}"
        return _entry(data, f"{message}: {_reason(data)}")

    @callback
    def async_describe_ended(event: LazyEventPartialState) -> dict[str, Any]:
        data = event.data
        return _entry(
            data,
            f"stopped sharing with {data.get('agency')}: {_reason(data)}"
            f" after {_duration(data.get('duration_s', 0))}",
        )

    async_describe_event(DOMAIN, EVENT_GRANTED, async_describe_granted)
    async_describe_event(DOMAIN, EVENT_REFUSED, async_describe_refused)
    async_describe_event(DOMAIN, EVENT_ENDED, async_describe_ended)
