"""Diagnostics: configuration and state with every secret redacted."""

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_ICE_SERVERS,
    CONF_NOTIFY_TARGETS,
    CONF_TURN_SECRET,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
)
from .data import RtccShareConfigEntry
from .models import contract_time

# Secrets, and who the viewers and the resident's phones are.
TO_REDACT = {
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    CONF_NOTIFY_TARGETS,
    CONF_ICE_SERVERS,
    CONF_TURN_SECRET,
    "stream_url",
    "webrtc_url",
    "token",
    "address",
}
AUDIT_TAIL = 20


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RtccShareConfigEntry
) -> dict[str, Any]:
    """Return the entry's configuration, session state and audit-log status."""
    data = entry.runtime_data
    session = data.session
    live = session.live
    verify = await data.audit.async_verify()
    return {
        "entry": async_redact_data(
            {"data": dict(entry.data), "options": dict(entry.options)}, TO_REDACT
        ),
        "session": {
            # The entry stores the camera's registry id.
            "camera": session.camera_entity_id,
            "consent_on": session.consent_on,
            "consent_lapses_at": session.consent_lapses_at,
            "live": async_redact_data(
                {
                    **asdict(live.grant),
                    "started": contract_time(live.grant.started),
                    "expires": contract_time(live.grant.expires),
                },
                TO_REDACT,
            )
            if live
            else None,
            "viewers": async_redact_data(
                live.stream.viewer_summary() if live and live.stream else [], TO_REDACT
            ),
            "webrtc_sessions": async_redact_data(
                live.webrtc.viewer_summary() if live and live.webrtc else [], TO_REDACT
            ),
            # How the masking goes (never its URL, which holds a secret).
            "masking": None
            if (masked := data.masked.current) is None
            else {
                "running": masked.running,
                "frames_decoded": masked.stats.frames_decoded,
                "frames_encoded": masked.stats.frames_encoded,
                "reconnects": masked.stats.reconnects,
            },
            "activations_24h": session.activations_in_window(),
            "rejected_requests": data.rejections.unauthenticated,
            "seen_message_ids": len(data.seen_ids),
        },
        "instant_start": data.instant.diagnostics(),
        "audit": {
            "valid": verify.valid,
            "records": verify.records,
            "first_bad_seq": verify.first_bad_seq,
            "truncated": verify.truncated,
            "expected_last_seq": verify.expected_last_seq,
            "pending_records": data.audit.pending,
            "last_records": async_redact_data(
                await data.audit.async_tail(AUDIT_TAIL), TO_REDACT
            ),
        },
    }
