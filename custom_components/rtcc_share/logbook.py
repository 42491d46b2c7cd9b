"""Describe rtcc_share events in the logbook, in Home Assistant's language.

A test run's events (`test: true`) read as the test they are.
"""

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
from .texts import Texts, cached_texts, plain


def _incident(texts: Texts, data: Mapping[str, Any]) -> str:
    return texts.text(
        "logbook_incident",
        type=texts.incident_type(data.get("incident_type"), plain),
        id=plain(data.get("incident_id")),
    )


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[
        [str, str, Callable[[LazyEventPartialState], dict[str, Any]]], None
    ],
) -> None:
    """Describe grants, refusals and ends of camera shares."""

    def _entry(texts: Texts, data: Mapping[str, Any], message: str) -> dict[str, Any]:
        entry = {
            LOGBOOK_ENTRY_NAME: texts.text("logbook_name"),
            LOGBOOK_ENTRY_MESSAGE: message,
        }
        if entity_id := data.get("camera_entity_id"):
            entry[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return entry

    @callback
    def async_describe_granted(event: LazyEventPartialState) -> dict[str, Any]:
        data, texts = event.data, cached_texts(hass)
        agency, incident = data.get("agency"), _incident(texts, data)
        expires = dt_util.parse_datetime(str(data.get("expires_at")))
        if data.get("test"):
            message = texts.text(
                "logbook_test_granted", until=texts.clock(expires) if expires else ""
            )
        elif expires:
            message = texts.text(
                "logbook_granted_until",
                agency=agency,
                incident=incident,
                until=texts.clock(expires),
            )
        else:
            message = texts.text("logbook_granted", agency=agency, incident=incident)
        return _entry(texts, data, message)

    @callback
    def async_describe_refused(event: LazyEventPartialState) -> dict[str, Any]:
        data, texts = event.data, cached_texts(hass)
        agency, reason = data.get("agency"), texts.reason(data.get("reason"))
        if data.get("incident_id"):
            message = texts.text(
                "logbook_refused_incident",
                agency=agency,
                incident=_incident(texts, data),
                reason=reason,
            )
        else:
            message = texts.text("logbook_refused", agency=agency, reason=reason)
        return _entry(texts, data, message)

    @callback
    def async_describe_ended(event: LazyEventPartialState) -> dict[str, Any]:
        data, texts = event.data, cached_texts(hass)
        reason = texts.reason(data.get("reason"))
        duration = texts.duration(data.get("duration_s", 0))
        if data.get("test"):
            message = texts.text("logbook_test_ended", reason=reason, duration=duration)
        else:
            message = texts.text(
                "logbook_ended",
                agency=data.get("agency"),
                reason=reason,
                duration=duration,
            )
        return _entry(texts, data, message)

    async_describe_event(DOMAIN, EVENT_GRANTED, async_describe_granted)
    async_describe_event(DOMAIN, EVENT_REFUSED, async_describe_refused)
    async_describe_event(DOMAIN, EVENT_ENDED, async_describe_ended)
