"""The share session: consent, the one live share, its timers and end reasons.

The session is the single source of truth for "consent is on" and "a share is
live"; entities only reflect it. Privacy-protecting steps (consent off, any
end) never wait for the audit log to succeed: access ends first, the record
follows.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from typing import Any, Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_UNAVAILABLE
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util

from .audit import AuditLog, AuditUnavailableError
from .const import (
    CONF_AGENCY_NAME,
    CONF_CAMERA_ENTITY_ID,
    CONF_CONSENT_LAPSE_DAYS,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_ENDED,
    ROLLING_WINDOW_S,
    signal_event,
    signal_update,
    stop_action,
)
from .history import HistoryItem, ShareHistory, StoredConsent
from .live.hls_share import HlsShare
from .live.masked_source import MaskedSource
from .live.webrtc_share import WebRtcShare
from .models import (
    ActivationRequest,
    AuditEvent,
    ConsentCause,
    EndReason,
    Grant,
    contract_time,
)
from .source_camera import camera_entity_id
from .texts import CITY_FIELDS, visible

MOBILE_ACTION_EVENT: Final = "mobile_app_notification_action"
# How long the end of a share waits for its live views to stop before it
# records and answers (they go on stopping in the background).
TEARDOWN_WAIT_S: Final = 1.0

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class LiveShare:
    """The share that is live right now."""

    request: ActivationRequest
    grant: Grant
    # The views the city was given: HLS, WebRTC (WHEP), or both.
    stream: HlsShare | None
    webrtc: WebRtcShare | None
    item: HistoryItem
    # The masked picture every view reads, while privacy masks are set.
    masked: MaskedSource | None = None
    # The resident's test share (dry_run.py): no view, no token, no history.
    test: bool = False

    @property
    def views(self) -> list[HlsShare | WebRtcShare]:
        """Return the views the city was given."""
        return [view for view in (self.stream, self.webrtc) if view is not None]

    @property
    def viewers(self) -> int:
        """Return how many viewers the share has (addresses, WebRTC sessions)."""
        return sum(view.viewer_count for view in self.views)


async def _async_teardown(view: HlsShare | WebRtcShare) -> None:
    try:
        await view.async_teardown()
    except Exception as err:  # noqa: BLE001 - the end is recorded whatever happens
        _LOGGER.warning("Stopping a live view failed: %s", type(err).__name__)


class ShareSession:
    """Consent and the live share of one camera."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        audit: AuditLog,
        history: ShareHistory,
        data: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        """Start idle with consent off until the store or the switch restores it."""
        self.hass = hass
        self.entry_id = entry_id
        self.audit = audit
        self.history = history
        self.data = data
        self.options: dict[str, Any] = {**DEFAULT_OPTIONS, **options}
        self.consent_on = False
        self.consent_since: datetime | None = None
        self.live: LiveShare | None = None
        # Held by every change of the live share (grant and end alike).
        self.lock = asyncio.Lock()
        self._unsubs: list[CALLBACK_TYPE] = []
        self._expiry_unsub: CALLBACK_TYPE | None = None
        self._mask_unsub: CALLBACK_TYPE | None = None
        self._lapse_unsub: CALLBACK_TYPE | None = None
        self._consent_stored = False
        self._stopped = False

    # Lifecycle

    async def async_start(self) -> None:
        """Apply stored consent, record a share a crash interrupted, subscribe."""
        if (consent := await self.history.async_load()) is not None:
            self._consent_stored = True
            await self._async_apply_consent(consent.on, consent.since)
        if interrupted := self.history.unfinished():
            interrupted.ended = min(dt_util.utcnow(), interrupted.expires)
            interrupted.end_reason = EndReason.INTERRUPTED
            await self.audit.async_try_append(
                AuditEvent.INTERRUPTED,
                activation_id=interrupted.activation_id,
                started_at=contract_time(interrupted.started),
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
        ]

    async def async_stop(self, reason: EndReason = EndReason.UNLOADED) -> None:
        """End a live share and drop every timer and subscription, for good."""
        self._stopped = True
        while self._unsubs:
            self._unsubs.pop()()
        self._cancel_lapse_timer()
        await self.async_end(reason)

    @callback
    def async_update_options(self, options: dict[str, Any]) -> None:
        """Use new options from the next decision on."""
        self.options = {**DEFAULT_OPTIONS, **options}
        self._schedule_lapse()
        self.async_changed()

    # What the entities show

    @property
    def camera_entity_id(self) -> str:
        """Return the shared camera's entity id."""
        return camera_entity_id(self.hass, str(self.data[CONF_CAMERA_ENTITY_ID]))

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
        return self.history.last_started

    def activations_in_window(self) -> int:
        """Return the number of shares started in the last 24 h."""
        return self.history.started_since(
            dt_util.utcnow() - timedelta(seconds=ROLLING_WINDOW_S)
        )

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
            await self.async_set_consent(False, ConsentCause.LAPSE)
            return
        self._schedule_lapse()
        self.async_changed()

    async def async_set_consent(self, on: bool, cause: ConsentCause) -> None:
        """Turn consent on or off; off also ends a live share at once."""
        if on:
            if self.consent_on:
                return
            try:
                await self.audit.async_append(AuditEvent.CONSENT_ON, cause=cause)
            except AuditUnavailableError as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="audit_log_unavailable"
                ) from err
            self.consent_on = True
            self.consent_since = dt_util.utcnow()
            await self._async_save()
            self._schedule_lapse()
            self.async_changed()
            return
        was_on = self.consent_on
        # Refuse new activations before anything awaits, and tell the
        # followers (the entities, instant start's prebuffer) at once.
        self.consent_on = False
        self.consent_since = None
        self._cancel_lapse_timer()
        self.async_changed()
        if was_on:
            await self.audit.async_try_append(AuditEvent.CONSENT_OFF, cause=cause)
            await self._async_save()
        await self.async_end(
            EndReason.CONSENT_LAPSED
            if cause is ConsentCause.LAPSE
            else EndReason.CONSENT_OFF
        )
        self.async_changed()

    def _schedule_lapse(self) -> None:
        self._cancel_lapse_timer()
        if self._stopped or (lapse := self.consent_lapses_at) is None:
            return

        async def _lapsed(_now: datetime) -> None:
            self._lapse_unsub = None
            await self.async_set_consent(False, ConsentCause.LAPSE)

        self._lapse_unsub = async_track_point_in_utc_time(self.hass, _lapsed, lapse)

    def _cancel_lapse_timer(self) -> None:
        if self._lapse_unsub:
            self._lapse_unsub()
            self._lapse_unsub = None

    # The live share

    @callback
    def async_go_live(self, live: LiveShare) -> None:
        """Make a started share the live one; the caller holds the lock."""
        self.live = live
        if live.stream is not None:
            live.stream.viewers_changed.target = self.async_changed
            live.stream.on_audio_appeared = self._async_audio_appeared
        if live.webrtc is not None:
            live.webrtc.viewers_changed.target = self.async_changed
        if live.masked is not None:
            self._mask_unsub = live.masked.async_add_failure_listener(
                self._async_mask_failed
            )
        self._expiry_unsub = async_track_point_in_utc_time(
            self.hass, self._async_expired, live.grant.expires
        )

    async def async_end(self, reason: EndReason) -> None:
        """End the live share, if any."""
        async with self.lock:
            await self.async_end_locked(reason)

    async def async_end_locked(self, reason: EndReason) -> None:
        """End the live share; the caller holds the lock."""
        if (live := self.live) is None:
            return
        self.live = None
        for unsub in (self._expiry_unsub, self._mask_unsub):
            if unsub is not None:
                unsub()
        self._expiry_unsub = self._mask_unsub = None
        # Access ends first, every URL of every kind at once; the record follows.
        for view in live.views:
            view.revoke()
        # The camera's WebRTC sessions close at once. An HLS worker stuck on a
        # silent source stops only when its read times out: the end waits for
        # it a little, then lets it finish in the background.
        teardowns = [
            self.hass.async_create_background_task(
                _async_teardown(view), f"{DOMAIN} live view teardown", eager_start=True
            )
            for view in sorted(live.views, key=lambda view: view is live.stream)
        ]
        if teardowns:  # a test share has no view
            await asyncio.wait(teardowns, timeout=TEARDOWN_WAIT_S)
        if live.test:
            duration = live.item.close(reason, dt_util.utcnow())
            await self.audit.async_try_append(
                AuditEvent.TEST_SHARE_ENDED,
                activation_id=live.item.activation_id,
                reason=reason,
                duration_s=duration,
            )
        else:
            viewers: dict[str, list[dict[str, Any]]] = {}
            if live.stream is not None:
                viewers["viewers"] = live.stream.viewer_summary()
            if live.webrtc is not None:
                viewers["webrtc_sessions"] = live.webrtc.viewer_summary()
            duration = await self.async_close(live.item, reason, **viewers)
        self.async_changed()
        self.fire(
            EVENT_ENDED,
            "ended",
            live.request,
            reason=reason,
            duration_s=duration,
            # A test run's events say so; a real share's carry nothing new.
            **({"test": True} if live.test else {}),
        )

    async def async_close(
        self, item: HistoryItem, reason: EndReason, **viewers: list[dict[str, Any]]
    ) -> int:
        """Record that a granted share ended, with who viewed it; return its seconds."""
        duration = item.close(reason, dt_util.utcnow())
        await self.audit.async_try_append(
            AuditEvent.SHARE_ENDED,
            activation_id=item.activation_id,
            reason=reason,
            duration_s=duration,
            **({"viewers": []} | viewers),
        )
        await self._async_save()
        return duration

    async def async_remember(self, item: HistoryItem) -> None:
        """Keep a new grant, on disk before its stream starts (crash recovery)."""
        self.history.add(item)
        await self._async_save()

    @callback
    def _async_audio_appeared(self) -> None:
        # Its URLs already answer 404; the end is recorded and told as any other.
        self.hass.async_create_task(
            self.async_end(EndReason.AUDIO_APPEARED), eager_start=True
        )

    @callback
    def _async_mask_failed(self) -> None:
        # The masked source has ended every reader already; this share ends
        # (not one granted while the end waited for the lock).
        failed = self.live

        async def _end() -> None:
            async with self.lock:
                if self.live is failed:
                    await self.async_end_locked(EndReason.PRIVACY_MASK_FAILED)

        self.hass.async_create_task(_end(), eager_start=True)

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

    # Signals

    @callback
    def fire(
        self,
        bus_event: str,
        event_type: str,
        request: ActivationRequest | None = None,
        /,
        **fields: Any,
    ) -> None:
        """Tell the bus, the event entity and the notifier what happened."""
        data: dict[str, Any] = {
            "entry_id": self.entry_id,
            "agency": self.agency,
            "camera_entity_id": self.camera_entity_id,
            "activation_id": None,
        }
        if request is not None:
            data |= {
                "activation_id": request.activation_id,
                "incident_id": request.incident.id,
                "incident_type": request.incident.type,
                "operator_id": request.operator.id,
            }
        data |= fields
        # What automations, the frontend and the logbook show the resident;
        # the audit log keeps the city's exact text.
        data |= {key: visible(data[key]) for key in CITY_FIELDS if data.get(key)}
        self.hass.bus.async_fire(bus_event, data)
        async_dispatcher_send(self.hass, signal_event(self.entry_id), event_type, data)

    @callback
    def async_changed(self) -> None:
        """Tell the entities to show the session's state."""
        async_dispatcher_send(self.hass, signal_update(self.entry_id))

    async def _async_save(self) -> None:
        await self.history.async_save(
            StoredConsent(on=self.consent_on, since=self.consent_since)
        )
