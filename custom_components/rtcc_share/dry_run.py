"""The resident's test share: a dry run of everything a share shows them.

Before any real incident, the resident sees the notification (their phone's
Stop button too), the live-share sensor, the police view streaming, the
event entity, the bus events and the logbook, all marked as a test, and two
audit records of their own. Nothing reaches the city: no view is opened and
no token registered, so no URL exists. It runs whatever consent is (it
shares nothing), is in no history (it counts against no limit), ends by
itself after a minute, and never stands in the way of a real activation,
which ends it first (activation.py).
"""

from datetime import datetime, timedelta
from typing import Final

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .audit import AuditUnavailableError
from .const import CONF_ALLOWED_INCIDENT_TYPES, DOMAIN, EVENT_GRANTED
from .history import HistoryItem
from .models import (
    ActivationRequest,
    AuditEvent,
    Grant,
    Incident,
    Location,
    Operator,
    contract_time,
)
from .session import LiveShare, ShareSession

# A test share ends by itself after this long.
TEST_SHARE_DURATION_S: Final = 60
# What stands for the city's ids; a test has no incident of its own.
TEST_ID: Final = "TEST"


async def async_start(session: ShareSession) -> None:
    """Start a test share; refused (translated) beside a live share or without a record."""
    async with session.lock:
        if (live := session.live) is not None and live.test:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="test_share_running"
            )
        if live is not None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="test_share_while_sharing",
                translation_placeholders={"agency": session.agency},
            )
        now = dt_util.utcnow().replace(microsecond=0)
        expires = now + timedelta(seconds=TEST_SHARE_DURATION_S)
        request = _request(session, now)
        try:
            record = await session.audit.async_append(
                AuditEvent.TEST_SHARE_STARTED,
                activation_id=request.activation_id,
                incident_type=request.incident.type,
                expires_at=contract_time(expires),
            )
        except AuditUnavailableError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="test_share_audit_log_unavailable",
            ) from err
        session.async_go_live(
            LiveShare(
                request=request,
                grant=Grant(
                    activation_id=request.activation_id,
                    stream_url=None,
                    webrtc_url=None,
                    started=now,
                    expires=expires,
                    receipt=record.receipt,
                ),
                stream=None,
                webrtc=None,
                item=HistoryItem(
                    activation_id=request.activation_id, started=now, expires=expires
                ),
                test=True,
            )
        )
        session.async_changed()
        session.fire(
            EVENT_GRANTED,
            "granted",
            request,
            expires_at=contract_time(expires),
            distance_m=0.0,
            test=True,
        )


def _request(session: ShareSession, now: datetime) -> ActivationRequest:
    """Return the test's request: how a real one reads, at the home itself.

    The incident type is the first the resident accepts, so the notification
    shows its label as a real one would.
    """
    types = session.options[CONF_ALLOWED_INCIDENT_TYPES]
    hass = session.hass
    return ActivationRequest(
        activation_id=f"{TEST_ID}-{now:%Y%m%dT%H%M%SZ}",
        incident=Incident(
            id=TEST_ID,
            type=str(types[0]) if types else TEST_ID.lower(),
            location=Location(lat=hass.config.latitude, lon=hass.config.longitude),
        ),
        operator=Operator(id=TEST_ID),
        legal_basis=TEST_ID.lower(),
        requested_duration_s=TEST_SHARE_DURATION_S,
        accept_streams=frozenset(),
    )
