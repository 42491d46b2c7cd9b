"""The live-share state machine: one share per camera, its timers and end reasons.

The session is the single source of truth for "consent is on" and "a share is
live"; entities only reflect it. Every transition is written to the audit log
first: no audit record, no stream.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
import logging
from typing import Any, Final

from homeassistant.components import persistent_notification
from homeassistant.components.camera import async_get_stream_source
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_UNAVAILABLE
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    async_call_later,
    async_track_point_in_utc_time,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from . import stream_share
from .audit import AuditLog, AuditUnavailableError
from .const import (
    CONF_AGENCY_NAME,
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_CAMERA_ENTITY_ID,
    CONF_CONSENT_LAPSE_DAYS,
    CONF_NOTIFY_TARGETS,
    CONF_SHARE_AUDIO,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_ENDED,
    EVENT_GRANTED,
    EVENT_REFUSED,
    REJECTION_LOG_INTERVAL_S,
    ROLLING_WINDOW_S,
)
from .models import ActivationEnd, ActivationRequest, EndReason, Location, PastShare
from .policy import decide, limits_from_options

_LOGGER = logging.getLogger(__name__)

STORE_VERSION: Final = 1
# Ids of ended activations are remembered this long (idempotent end, budget).
HISTORY_KEEP: Final = timedelta(days=7)
HISTORY_MAX: Final = 500
MOBILE_ACTION_EVENT: Final = "mobile_app_notification_action"
# The rejected-requests sensor shows a burst at most this often.
REJECTION_UPDATE_DELAY_S: Final = 1.0


def signal_update(entry_id: str) -> str:
    """Return the dispatcher signal sent when the session's state changes."""
    return f"{DOMAIN}_{entry_id}_update"


def signal_event(entry_id: str) -> str:
    """Return the dispatcher signal carrying (event_type, data) for the event entity."""
    return f"{DOMAIN}_{entry_id}_event"


def stop_action(entry_id: str) -> str:
    """Return the mobile-app notification action that stops the share."""
    return f"{DOMAIN.upper()}_STOP_{entry_id}"


class ShareRefusedError(Exception):
    """The activation cannot be granted; carries the contract's status and error."""

    def __init__(self, status: HTTPStatus, error: str, **extra: str) -> None:
        """Keep the response parts."""
        super().__init__(error)
        self.status = status
        self.error = error
        self.extra = extra


@dataclass(slots=True, kw_only=True)
class HistoryItem:
    """A granted activation, kept for idempotency and the rolling limits."""

    activation_id: str
    started: datetime
    expires: datetime
    ended: datetime | None = None
    end_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Serialize for the store."""
        return {
            "activation_id": self.activation_id,
            "started": self.started.isoformat(),
            "expires": self.expires.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryItem:
        """Deserialize from the store."""
        return cls(
            activation_id=data["activation_id"],
            started=dt_util.parse_datetime(data["started"], raise_on_error=True),
            expires=dt_util.parse_datetime(data["expires"], raise_on_error=True),
            ended=dt_util.parse_datetime(data["ended"], raise_on_error=True)
            if data["ended"]
            else None,
            end_reason=data["end_reason"],
        )


@dataclass(slots=True, kw_only=True)
class LiveShare:
    """The share that is live right now."""

    request: ActivationRequest
    receipt: str
    stream_url: str
    stream: stream_share.ShareStream
    item: HistoryItem

    @property
    def started(self) -> datetime:
        """Return when the share started."""
        return self.item.started

    @property
    def expires(self) -> datetime:
        """Return when the share expires."""
        return self.item.expires

    def response(self) -> dict[str, Any]:
        """Return the contract's body for the grant."""
        return {
            "status": "active",
            "activation_id": self.request.activation_id,
            "stream_url": self.stream_url,
            "started_at": _iso(self.started),
            "expires_at": _iso(self.expires),
            "receipt": self.receipt,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(dt_util.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShareSession:
    """Consent, the live share, its timers, and what the resident is told."""

    def __init__(self, hass: HomeAssistant, entry_id: str, audit: AuditLog) -> None:
        """Start idle with consent off until the switch restores it."""
        self.hass = hass
        self.entry_id = entry_id
        self.audit = audit
        self.data: dict[str, Any] = {}
        self.options: dict[str, Any] = dict(DEFAULT_OPTIONS)
        self.consent_on = False
        self.consent_since: datetime | None = None
        self.live: LiveShare | None = None
        self.history: list[HistoryItem] = []
        self.rejected_requests = 0
        self._rejected_pending = 0
        self._rejected_window_start: datetime | None = None
        self._last_rejection_log: datetime | None = None
        self._lock = asyncio.Lock()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.session", private=True
        )
        self._unsubs: list[CALLBACK_TYPE] = []
        self._expiry_unsub: CALLBACK_TYPE | None = None
        self._lapse_unsub: CALLBACK_TYPE | None = None
        self._rejection_update_unsub: CALLBACK_TYPE | None = None
        # Consent is written to the store at every change: the switch's restore
        # state, which Home Assistant saves only now and then, is lost in a crash.
        self._consent_stored = False

    # Lifecycle

    async def async_start(self, data: dict[str, Any], options: dict[str, Any]) -> None:
        """Load the history, record a share a crash interrupted, and subscribe."""
        self.data = data
        self.options = {**DEFAULT_OPTIONS, **options}
        stored = await self._store.async_load() or {}
        self.history = [
            HistoryItem.from_dict(item) for item in stored.get("history", [])
        ]
        if (consent := stored.get("consent")) is not None:
            self._consent_stored = True
            await self._async_apply_consent(
                bool(consent["on"]),
                dt_util.parse_datetime(consent["since"], raise_on_error=True)
                if consent["since"]
                else None,
            )
        if interrupted := next((h for h in self.history if h.ended is None), None):
            now = dt_util.utcnow()
            interrupted.ended = min(now, interrupted.expires)
            interrupted.end_reason = "interrupted"
            await self._async_audit_best_effort(
                "interrupted",
                activation_id=interrupted.activation_id,
                started_at=_iso(interrupted.started),
            )
            await self._async_save()
        self._unsubs += [
            async_track_state_change_event(
                self.hass, [self.camera_entity_id], self._async_camera_changed
            ),
            self.hass.bus.async_listen(MOBILE_ACTION_EVENT, self._async_mobile_action),
            self.hass.bus.async_listen(
                EVENT_HOMEASSISTANT_STOP, self._async_ha_stopping
            ),
            async_track_time_interval(
                self.hass,
                self._async_flush_rejections,
                timedelta(seconds=REJECTION_LOG_INTERVAL_S),
            ),
        ]

    async def async_stop(self, reason: EndReason = EndReason.UNLOADED) -> None:
        """End a live share and drop every timer and subscription."""
        while self._unsubs:
            self._unsubs.pop()()
        self._cancel_lapse_timer()
        if self._rejection_update_unsub:
            self._rejection_update_unsub()
            self._rejection_update_unsub = None
        await self.async_end(reason)
        await self._async_flush_rejections()

    async def async_remove(self) -> None:
        """Delete what the session stored (the entry is being removed)."""
        await self._store.async_remove()

    @callback
    def async_update_options(self, options: dict[str, Any]) -> None:
        """Use new options from the next decision on."""
        self.options = {**DEFAULT_OPTIONS, **options}
        self._schedule_lapse()
        self._async_changed()

    # Properties read by the entities

    @property
    def camera_entity_id(self) -> str:
        """Return the shared camera's entity id."""
        return str(self.data[CONF_CAMERA_ENTITY_ID])

    @property
    def camera_name(self) -> str:
        """Return the shared camera's name as the resident knows it."""
        state = self.hass.states.get(self.camera_entity_id)
        return state.name if state else self.camera_entity_id

    @property
    def agency(self) -> str:
        """Return the agency's name."""
        return str(self.data[CONF_AGENCY_NAME])

    @property
    def consent_lapses_at(self) -> datetime | None:
        """Return when consent turns itself off, if it is on and lapses."""
        days = int(self.options[CONF_CONSENT_LAPSE_DAYS])
        if not self.consent_on or not days or self.consent_since is None:
            return None
        return self.consent_since + timedelta(days=days)

    @property
    def last_activation(self) -> datetime | None:
        """Return when the last share started."""
        return max((h.started for h in self.history), default=None)

    def activations_in_window(self) -> int:
        """Return the number of shares started in the last 24 h."""
        since = dt_util.utcnow() - timedelta(seconds=ROLLING_WINDOW_S)
        return sum(1 for h in self.history if h.started > since)

    # Consent

    async def async_restore_consent(self, on: bool, since: datetime | None) -> None:
        """Take the switch's restore state, unless the store already had consent."""
        if not self._consent_stored:
            await self._async_apply_consent(on, since)

    async def _async_apply_consent(self, on: bool, since: datetime | None) -> None:
        """Resume consent as it was, never forcing it on; lapse it if overdue."""
        self.consent_on = on
        self.consent_since = since if on else None
        if (lapse := self.consent_lapses_at) and lapse <= dt_util.utcnow():
            await self.async_set_consent(False, "lapse")
            return
        self._schedule_lapse()
        self._async_changed()

    async def async_set_consent(self, on: bool, cause: str) -> None:
        """Turn consent on or off; off also ends a live share at once."""
        if on:
            if self.consent_on:
                return
            try:
                await self.audit.async_append("consent_on", cause=cause)
            except AuditUnavailableError as err:
                self._raise_audit_issue()
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="audit_log_unavailable"
                ) from err
            self.consent_on = True
            self.consent_since = dt_util.utcnow()
            await self._async_save()
            self._schedule_lapse()
            self._async_changed()
            return
        was_on = self.consent_on
        # Refuse new activations before anything awaits.
        self.consent_on = False
        self.consent_since = None
        self._cancel_lapse_timer()
        if was_on:
            await self._async_audit_best_effort("consent_off", cause=cause)
            await self._async_save()
        reason = EndReason.CONSENT_LAPSED if cause == "lapse" else EndReason.CONSENT_OFF
        await self.async_end(reason)
        self._async_changed()

    def _schedule_lapse(self) -> None:
        self._cancel_lapse_timer()
        if (lapse := self.consent_lapses_at) is None:
            return

        async def _lapsed(_now: datetime) -> None:
            self._lapse_unsub = None
            await self.async_set_consent(False, "lapse")

        self._lapse_unsub = async_track_point_in_utc_time(self.hass, _lapsed, lapse)

    def _cancel_lapse_timer(self) -> None:
        if self._lapse_unsub:
            self._lapse_unsub()
            self._lapse_unsub = None

    # Activation

    async def async_activate(
        self, request: ActivationRequest
    ) -> tuple[bool, LiveShare]:
        """Grant a share, or raise ShareRefusedError; True when newly created."""
        async with self._lock:
            if (live := self.live) is not None:
                if live.request.activation_id == request.activation_id:
                    return False, live
                await self.async_record_refusal("already_active", request)
                raise ShareRefusedError(
                    HTTPStatus.CONFLICT,
                    "already_active",
                    activation_id=live.request.activation_id,
                )
            if self._find(request.activation_id):
                raise ShareRefusedError(HTTPStatus.OK, "ended")
            return True, await self._async_grant(request)

    async def _async_grant(self, request: ActivationRequest) -> LiveShare:
        now = dt_util.utcnow()
        decision = decide(
            consent_on=self.consent_on,
            consent_lapses_at=self.consent_lapses_at,
            limits=limits_from_options(self.options),
            home=Location(
                lat=self.hass.config.latitude, lon=self.hass.config.longitude
            ),
            request=request,
            now=now,
            history=[PastShare(started=h.started, ended=h.ended) for h in self.history],
        )
        if decision.reason is not None:
            await self.async_record_refusal(decision.reason, request)
            raise ShareRefusedError(HTTPStatus.FORBIDDEN, decision.reason)
        source = await self._async_source(request)
        base_url = await self._async_base_url(request)
        expires = now + timedelta(seconds=decision.duration_s)
        try:
            record = await self.audit.async_append(
                "activation_granted",
                activation_id=request.activation_id,
                incident_id=request.incident.id,
                incident_type=request.incident.type,
                operator_id=request.operator.id,
                legal_basis=request.legal_basis,
                distance_m=round(decision.distance_m, 1),
                granted_duration_s=decision.duration_s,
                expires_at=_iso(expires),
            )
        except AuditUnavailableError as err:
            self._raise_audit_issue()
            raise ShareRefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "audit_log_unavailable"
            ) from err
        ir.async_delete_issue(
            self.hass, DOMAIN, f"audit_log_unavailable_{self.entry_id}"
        )
        item = HistoryItem(
            activation_id=request.activation_id, started=now, expires=expires
        )
        self.history.append(item)
        # Persisted before the stream starts, so a crash is found on restart.
        await self._async_save()
        try:
            share = await stream_share.async_start(
                self.hass,
                self.camera_entity_id,
                source,
                share_audio=bool(self.options[CONF_SHARE_AUDIO]),
                duration_s=decision.duration_s,
            )
        except stream_share.AudioNotRemovableError as err:
            await self._async_abandon(item)
            raise ShareRefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "camera_unavailable",
                detail="the camera sends audio and sharing audio is off",
            ) from err
        except Exception as err:
            _LOGGER.warning("Could not start the shared stream: %s", type(err).__name__)
            await self._async_abandon(item)
            raise ShareRefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "camera_unavailable"
            ) from err
        live = LiveShare(
            request=request,
            receipt=record.receipt,
            stream_url=base_url + share.path,
            stream=share,
            item=item,
        )
        self.live = live
        share.on_new_viewer = self._async_changed
        self._expiry_unsub = async_track_point_in_utc_time(
            self.hass, self._async_expired, expires
        )
        if not self.consent_on:
            # Consent was withdrawn while the share was being set up.
            await self._async_end_locked(EndReason.CONSENT_OFF)
            raise ShareRefusedError(HTTPStatus.FORBIDDEN, "consent_off")
        event = {
            **self._event_base(request.activation_id),
            "incident_id": request.incident.id,
            "incident_type": request.incident.type,
            "operator_id": request.operator.id,
            "expires_at": _iso(expires),
        }
        # State first, so automations triggered by the event see the share live.
        self._async_changed()
        self._fire("granted", EVENT_GRANTED, event)
        self._async_notify(
            "Camera shared with police",
            f"{self.agency} is viewing {self.camera_name} for an incident "
            f"({request.incident.type}, {request.incident.id}) reported by operator "
            f"{request.operator.id}, until {dt_util.as_local(expires):%H:%M}. "
            "Turn consent off or press Stop sharing to end it now.",
            stop_action=True,
        )
        return live

    async def _async_source(self, request: ActivationRequest) -> str:
        try:
            source = await async_get_stream_source(self.hass, self.camera_entity_id)
        except HomeAssistantError:
            source = None
        if not source:
            await self.async_record_refusal("camera_unavailable", request)
            raise ShareRefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "camera_unavailable"
            )
        return source

    async def _async_base_url(self, request: ActivationRequest) -> str:
        issue_id = f"no_external_url_{self.entry_id}"
        try:
            url = get_url(
                self.hass, allow_internal=False, allow_ip=False, require_ssl=True
            )
        except NoURLAvailableError:
            url = None
            if self.options[CONF_ALLOW_HTTP_STREAM_URL]:
                try:
                    url = get_url(self.hass, prefer_external=True)
                except NoURLAvailableError:
                    url = None
        if url is None:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="no_external_url",
                translation_placeholders={"camera": self.camera_entity_id},
            )
            await self.async_record_refusal("no_external_url", request)
            raise ShareRefusedError(HTTPStatus.SERVICE_UNAVAILABLE, "no_external_url")
        ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        return url.rstrip("/")

    async def async_record_refusal(
        self, reason: str, request: ActivationRequest | None = None
    ) -> None:
        """Audit an authenticated request that was refused, and tell the bus."""
        ids: dict[str, str] = {}
        if request is not None:
            ids = {
                "activation_id": request.activation_id,
                "incident_id": request.incident.id,
                "incident_type": request.incident.type,
                "operator_id": request.operator.id,
            }
        await self._async_audit_best_effort("activation_refused", reason=reason, **ids)
        self._fire(
            "refused",
            EVENT_REFUSED,
            {**self._event_base(ids.get("activation_id")), **ids, "reason": reason},
        )

    # Ending

    async def async_end_by_city(self, message: ActivationEnd) -> None:
        """End the share the city names; raise ShareRefusedError if never seen."""
        async with self._lock:
            if self.live and self.live.request.activation_id == message.activation_id:
                await self._async_end_locked(EndReason.ENDED_BY_CITY)
                return
        if self._find(message.activation_id) is None:
            await self._async_audit_best_effort(
                "activation_refused",
                reason="unknown_activation",
                activation_id=message.activation_id,
                operator_id=message.operator.id,
            )
            raise ShareRefusedError(HTTPStatus.NOT_FOUND, "unknown_activation")

    async def async_end(self, reason: EndReason) -> None:
        """End the live share, if any."""
        async with self._lock:
            await self._async_end_locked(reason)

    async def _async_end_locked(self, reason: EndReason) -> None:
        if (live := self.live) is None:
            return
        self.live = None
        if self._expiry_unsub:
            self._expiry_unsub()
            self._expiry_unsub = None
        # Access ends first; the record follows.
        await stream_share.async_revoke(self.hass, live.stream)
        duration = await self._async_close_history(
            live.item, reason, live.stream.viewer_summary()
        )
        self._async_changed()
        self._fire(
            "ended",
            EVENT_ENDED,
            {
                **self._event_base(live.request.activation_id),
                "incident_id": live.request.incident.id,
                "incident_type": live.request.incident.type,
                "operator_id": live.request.operator.id,
                "reason": reason,
                "duration_s": duration,
            },
        )
        self._async_notify(
            "Camera sharing ended",
            f"Sharing {self.camera_name} with {self.agency} ended "
            f"({reason.replace('_', ' ')}) after {duration // 60} min {duration % 60} s.",
        )

    async def _async_close_history(
        self,
        item: HistoryItem,
        reason: EndReason,
        viewers: list[dict[str, Any]] | None,
    ) -> int:
        now = dt_util.utcnow()
        item.ended = now
        item.end_reason = reason
        duration = max(0, round((now - item.started).total_seconds()))
        await self._async_audit_best_effort(
            "share_ended",
            activation_id=item.activation_id,
            reason=reason,
            duration_s=duration,
            viewers=viewers or [],
        )
        await self._async_save()
        return duration

    async def _async_abandon(self, item: HistoryItem) -> None:
        """Close a grant whose stream never started; the city may retry the id."""
        await self._async_close_history(item, EndReason.CAMERA_UNAVAILABLE, None)
        self.history.remove(item)
        await self._async_save()

    async def _async_expired(self, _now: datetime) -> None:
        self._expiry_unsub = None
        await self.async_end(EndReason.EXPIRED)

    async def _async_camera_changed(self, event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        if self.live and (new_state is None or new_state.state == STATE_UNAVAILABLE):
            await self.async_end(EndReason.CAMERA_UNAVAILABLE)

    async def _async_mobile_action(self, event: Event) -> None:
        if event.data.get("action") == stop_action(self.entry_id):
            await self.async_end(EndReason.STOPPED_BY_RESIDENT)

    async def _async_ha_stopping(self, _event: Event) -> None:
        await self.async_end(EndReason.HA_STOPPING)

    # Unauthenticated requests

    @callback
    def async_note_rejection(self) -> None:
        """Count an unauthenticated request; log at most once a minute."""
        now = dt_util.utcnow()
        self.rejected_requests += 1
        self._rejected_pending += 1
        self._rejected_window_start = self._rejected_window_start or now
        if (
            self._last_rejection_log is None
            or now - self._last_rejection_log
            >= timedelta(seconds=REJECTION_LOG_INTERVAL_S)
        ):
            self._last_rejection_log = now
            _LOGGER.warning(
                "Rejected unauthenticated activation requests for %s (%d so far)",
                self.camera_entity_id,
                self.rejected_requests,
            )
        # A flood of forged requests must not become a flood of state writes.
        if self._rejection_update_unsub is None:
            self._rejection_update_unsub = async_call_later(
                self.hass, REJECTION_UPDATE_DELAY_S, self._async_rejections_shown
            )

    @callback
    def _async_rejections_shown(self, _now: datetime) -> None:
        self._rejection_update_unsub = None
        self._async_changed()

    async def _async_flush_rejections(self, _now: datetime | None = None) -> None:
        """Write the failures counted since the last flush as one audit record."""
        if not self._rejected_pending or self._rejected_window_start is None:
            return
        count, start = self._rejected_pending, self._rejected_window_start
        self._rejected_pending, self._rejected_window_start = 0, None
        await self._async_audit_best_effort(
            "authentication_failed", count=count, window_start=_iso(start)
        )

    # Helpers

    def _find(self, activation_id: str) -> HistoryItem | None:
        return next(
            (h for h in reversed(self.history) if h.activation_id == activation_id),
            None,
        )

    async def _async_save(self) -> None:
        cutoff = dt_util.utcnow() - HISTORY_KEEP
        self.history = [h for h in self.history if h.ended is None or h.ended > cutoff][
            -HISTORY_MAX:
        ]
        await self._store.async_save(
            {
                "history": [h.as_dict() for h in self.history],
                "consent": {
                    "on": self.consent_on,
                    "since": self.consent_since.isoformat()
                    if self.consent_since
                    else None,
                },
            }
        )

    async def _async_audit_best_effort(self, event: str, **fields: Any) -> None:
        """Record an event whose failure must not stop a privacy-protecting step."""
        try:
            await self.audit.async_append(event, **fields)
        except AuditUnavailableError:
            self._raise_audit_issue()

    def _raise_audit_issue(self) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"audit_log_unavailable_{self.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.CRITICAL,
            translation_key="audit_log_unavailable",
            translation_placeholders={"camera": self.camera_entity_id},
        )

    def _event_base(self, activation_id: str | None) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "agency": self.agency,
            "camera_entity_id": self.camera_entity_id,
            "activation_id": activation_id,
        }

    @callback
    def _fire(self, event_type: str, bus_event: str, data: dict[str, Any]) -> None:
        self.hass.bus.async_fire(bus_event, data)
        async_dispatcher_send(self.hass, signal_event(self.entry_id), event_type, data)

    @callback
    def _async_changed(self) -> None:
        async_dispatcher_send(self.hass, signal_update(self.entry_id))

    @callback
    def _async_notify(
        self, title: str, message: str, stop_action: bool = False
    ) -> None:
        """Tell the resident: a persistent notification and the chosen targets."""
        persistent_notification.async_create(
            self.hass, message, title=title, notification_id=f"{DOMAIN}_{self.entry_id}"
        )
        for target in self.options[CONF_NOTIFY_TARGETS]:
            self.hass.async_create_task(
                self._async_send(target, title, message, stop_action),
                eager_start=True,
            )

    async def _async_send(
        self, target: str, title: str, message: str, with_stop: bool
    ) -> None:
        domain, _, name = target.partition(".")
        try:
            if self.hass.states.get(target) is not None:
                await self.hass.services.async_call(
                    domain,
                    "send_message",
                    {"entity_id": target, "title": title, "message": message},
                    blocking=True,
                )
                return
            data: dict[str, Any] = {"title": title, "message": message}
            if with_stop:
                data["data"] = {
                    "actions": [
                        {"action": stop_action(self.entry_id), "title": "Stop sharing"}
                    ]
                }
            await self.hass.services.async_call(domain, name, data, blocking=True)
        except HomeAssistantError as err:
            _LOGGER.warning("Could not notify %s: %s", target, type(err).__name__)
