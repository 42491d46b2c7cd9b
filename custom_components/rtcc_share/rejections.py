"""Requests that must not flood the resident's log, state or disk.

Unauthenticated requests are only counted: the diagnostic sensor shows the
count at most once a second, the log says so at most once a minute, and the
audit log gets one record per minute. Authenticated refusals are written in
full for the first few of each reason a minute; the rest of that minute is
one record per reason with its `count`, so a leaked key or a replayed message
with fresh ids cannot grow the log without bound, and the transparency
report still counts every refusal. Only the refusals written in full fire an
event (entity, logbook, automations): a flood must not flood those either.
"""

from collections import Counter
from datetime import datetime, timedelta
import logging
from typing import Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.util import dt as dt_util

from .audit import AuditLog
from .audit_format import format_ts
from .const import (
    REFUSALS_IN_FULL_PER_INTERVAL,
    REJECTION_LOG_INTERVAL_S,
    signal_update,
)
from .models import AuditEvent, RefusalReason

_LOGGER = logging.getLogger(__name__)

INTERVAL: Final = timedelta(seconds=REJECTION_LOG_INTERVAL_S)
# The rejected-requests sensor shows a burst at most this often.
UPDATE_DELAY_S: Final = 1.0


class Rejections:
    """Counts and batches what an entry refuses, one window a minute."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, camera: str, audit: AuditLog
    ) -> None:
        """Start with nothing counted."""
        self._hass = hass
        self._entry_id = entry_id
        self._camera = camera
        self._audit = audit
        self.unauthenticated = 0
        self._unauthenticated_pending = 0
        self._window_start: datetime | None = None
        self._last_log: datetime | None = None
        self._update_unsub: CALLBACK_TYPE | None = None
        self._refused_in_full: Counter[RefusalReason] = Counter()
        self._refused_counted: Counter[RefusalReason] = Counter()

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Flush every minute; return the cancel callback."""
        return async_track_time_interval(self._hass, self.async_flush, INTERVAL)

    @callback
    def async_note_unauthenticated(self) -> None:
        """Count an unauthenticated request; log at most once a minute."""
        now = dt_util.utcnow()
        self.unauthenticated += 1
        self._unauthenticated_pending += 1
        self._window_start = self._window_start or now
        if self._last_log is None or now - self._last_log >= INTERVAL:
            self._last_log = now
            _LOGGER.warning(
                "Rejected unauthenticated activation requests for %s (%d so far)",
                self._camera,
                self.unauthenticated,
            )
        # A flood of forged requests must not become a flood of state writes.
        if self._update_unsub is None:
            self._update_unsub = async_call_later(
                self._hass, UPDATE_DELAY_S, self._async_show
            )

    @callback
    def admit_refusal(self, reason: RefusalReason) -> bool:
        """Return True if this refusal is written in full; else count it."""
        self._window_start = self._window_start or dt_util.utcnow()
        if self._refused_in_full[reason] < REFUSALS_IN_FULL_PER_INTERVAL:
            self._refused_in_full[reason] += 1
            return True
        self._refused_counted[reason] += 1
        return False

    @callback
    def _async_show(self, _now: datetime) -> None:
        self._update_unsub = None
        async_dispatcher_send(self._hass, signal_update(self._entry_id))

    async def async_flush(self, _now: datetime | None = None) -> None:
        """Write what was counted in this window, and start a new one."""
        if self._window_start is None:
            return
        start = format_ts(self._window_start)
        pending, counted = self._unauthenticated_pending, self._refused_counted
        self._window_start, self._unauthenticated_pending = None, 0
        self._refused_in_full, self._refused_counted = Counter(), Counter()
        if pending:
            await self._audit.async_try_append(
                AuditEvent.AUTHENTICATION_FAILED, count=pending, window_start=start
            )
        for reason, count in sorted(counted.items()):
            await self._audit.async_try_append(
                AuditEvent.ACTIVATION_REFUSED,
                reason=reason,
                count=count,
                window_start=start,
            )

    async def async_stop(self) -> None:
        """Write what is pending and drop the sensor's timer."""
        if self._update_unsub:
            self._update_unsub()
            self._update_unsub = None
        await self.async_flush()
