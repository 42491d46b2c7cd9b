"""Tamper-evident audit log of one shared camera, owned by the resident.

One JSON Lines file per config entry, `<config>/rtcc_share/<entry_id>.audit.jsonl`,
in the format of audit_format.py, and one writer for it. Changing, removing or reordering
any line breaks the chain at that `seq`; only cutting records off the end
leaves a valid chain, which the receipts given to the city and the stored
chain head (below) then contradict.

Appends are serialized by a lock and durable (audit_file.py does the
blocking work in the executor) before the caller goes on.

Records that cannot wait (`async_try_append`: consent off, a share's end,
refusals; steps that protect privacy and never wait for the log) are not
lost when their write fails (say, the disk is full): the writer keeps them
in memory, in order, and writes them before anything else at the next write
that succeeds: the next append, opening the log again at setup, the retry
every RETRY_INTERVAL while any wait, or a last try as Home Assistant stops. Each gets its `seq`, `prev` and `hash`
when it is written, keeps as `ts` the time its event happened (when its
first write failed) and gains `written_at`, when it was written. So the
chain is in the order events happened, and `ts` never goes backwards along
it: nothing newer can be written before what waits. At most PENDING_MAX
records wait; later ones are only counted, by event, in one `not_recorded`
record written after them (`ts`: the first one left out, `last_ts`: the last
one). Waiting records live as long as Home Assistant runs (across reloads of
the entry); a restart before the disk has room loses them. Every write puts
them first, so none succeeds without them, and the `audit_log_unavailable`
repair issue, raised by the failure, is cleared only by a write that
succeeds (opening the log does not raise at setup for them: it reports them).

Chain head: after every write, the last record's `seq` and `hash` are saved
in Home Assistant's storage (`rtcc_share.<entry_id>.audit_head`), always
after the record is on disk, so the stored head is at most behind the file
(a crash between the two), never ahead. Verifying compares the log with the
running writer's last record; at the first opening after a start, a log that
ends before the stored head (or ends at its `seq` with another hash) has lost
records off its end, which the chain alone cannot show: a `truncated` record
(`expected_last_seq`, `expected_last_hash`, `found_last_seq`,
`found_last_hash`) says so in the log itself, and the log no longer verifies.
Without a stored head (the first start after an upgrade) there is nothing to
compare and the head is stored from then on. Pruning keeps the last record,
so the head stays valid.

Pruning (retention, see audit_file.py) only runs on a log that verifies.
"""

import asyncio
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
import logging
from pathlib import Path
from typing import IO, Any

from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .audit_file import LogFile
from .audit_format import (
    RESERVED_FIELDS,
    AuditRecord,
    Tail,
    VerifyResult,
    export_records,
    format_ts,
    tail_records,
    transparency_report,
    verify,
)
from .const import DOMAIN
from .models import AuditEvent

_LOGGER = logging.getLogger(__name__)

# One writer per log file, ever: a second instance would take the first one's
# newer records for a torn tail.
_LOGS: HassKey[dict[str, AuditLog]] = HassKey(f"{DOMAIN}_audit_logs")

RETRY_INTERVAL = timedelta(minutes=1)
HEAD_STORE_VERSION = 1


class AuditUnavailableError(HomeAssistantError):
    """The audit log cannot be read or written; writers must fail closed."""


def _unavailable(err: OSError) -> AuditUnavailableError:
    return AuditUnavailableError(
        translation_domain=DOMAIN,
        translation_key="audit_log_io_error",
        translation_placeholders={"error": str(err)},
    )


class _StoredHead:
    """The (seq, hash) of the last record written, in Home Assistant's storage."""

    def __init__(self, hass: HomeAssistant, entry_id: str, path: Path) -> None:
        self._store: Store[dict[str, Any]] = Store(
            hass, HEAD_STORE_VERSION, f"{DOMAIN}.{entry_id}.audit_head", private=True
        )
        self._path = path  # for log lines
        self._head: tuple[int, str] | None = None  # as stored
        self.loaded = False

    async def async_load(self) -> tuple[int, str] | None:
        """Return the stored head; None if there is none or it is unreadable."""
        self.loaded = True
        try:
            stored = await self._store.async_load()
        except HomeAssistantError as err:
            _LOGGER.warning(
                "Cannot read where audit log %s ended (%s); its end is not"
                " checked at this start",
                self._path,
                type(err).__name__,
            )
            return None
        if (
            isinstance(stored, dict)
            and type(seq := stored.get("seq")) is int
            and isinstance(digest := stored.get("hash"), str)
        ):
            self._head = (seq, digest)
        return self._head

    async def async_save(self, tail: Tail | None) -> None:
        """Store the last record written, if it changed (only once it is on disk)."""
        if tail is None or (tail.seq, tail.hash) == self._head:
            return
        self._head = (tail.seq, tail.hash)
        await self._store.async_save({"seq": tail.seq, "hash": tail.hash})

    async def async_remove(self) -> None:
        """Delete it (the entry is removed)."""
        await self._store.async_remove()


class AuditLog:
    """The hash-chained audit log of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize; nothing is read until the log is opened."""
        self._hass = hass
        self._entry_id = entry_id
        self._lock = asyncio.Lock()
        # All of these are only used by jobs holding the lock.
        path = Path(hass.config.path(DOMAIN, f"{entry_id}.audit.jsonl"))
        self._file = LogFile(path, entry_id)
        self._head = _StoredHead(hass, entry_id, path)
        # Told after every append whether it succeeded (the repair issue).
        self._on_health: Callable[[bool], None] | None = None
        self._retry_unsubs: list[CALLBACK_TYPE] = []

    @property
    def path(self) -> Path:
        """Return the log file's path."""
        return self._file.path

    @path.setter
    def path(self, path: Path) -> None:
        self._file.path = path

    @classmethod
    def for_entry(cls, hass: HomeAssistant, entry_id: str) -> AuditLog:
        """Return the entry's one writer, kept across reloads of the entry."""
        logs = hass.data.setdefault(_LOGS, {})
        if (log := logs.get(entry_id)) is None:
            log = logs[entry_id] = cls(hass, entry_id)
        return log

    @classmethod
    async def async_forget(cls, hass: HomeAssistant, entry_id: str) -> None:
        """Drop the entry's writer and its stored head (the entry is removed)."""
        log = hass.data.get(_LOGS, {}).pop(entry_id, None) or cls(hass, entry_id)
        await log.async_close()

    async def async_close(self) -> None:
        """Give what waits a last try, stop retrying, delete the stored head.

        The log file itself stays with the resident.
        """
        if self.pending:
            async with self._lock:
                with suppress(AuditUnavailableError):
                    await self._async_write(None, {}, keep=False)
            if self.pending:
                _LOGGER.error(
                    "%d audit records could not be written to %s before the"
                    " entry was removed; they are lost",
                    self.pending,
                    self.path,
                )
        self._cancel_retry()
        await self._head.async_remove()

    @property
    def pending(self) -> int:
        """Return how many records wait for the disk (kept or only counted)."""
        return self._file.pending

    async def async_open(self) -> None:
        """Find the end of the chain and write what waits.

        Raise AuditUnavailableError only if the end cannot be found: records
        that cannot be written yet keep waiting, and the repair issue says so.
        """
        async with self._lock:
            try:
                await self._async_write(None, {}, keep=False)
            except AuditUnavailableError:
                if self._file.tail is None:
                    raise

    async def async_append(self, event: AuditEvent, /, **fields: Any) -> AuditRecord:
        """Durably append a record; raise AuditUnavailableError if impossible."""
        return await self._async_append(event, fields, keep=False)

    async def async_try_append(
        self, event: AuditEvent, /, **fields: Any
    ) -> AuditRecord | None:
        """Append where a failure must not stop a privacy-protecting step.

        A record that cannot be written now waits and is written first at the
        next write that succeeds; None then.
        """
        with suppress(AuditUnavailableError):
            return await self._async_append(event, fields, keep=True)
        return None

    async def _async_append(
        self, event: AuditEvent, fields: Mapping[str, Any], *, keep: bool
    ) -> AuditRecord:
        if reserved := RESERVED_FIELDS.intersection(fields):
            raise ValueError(f"Reserved audit field(s): {', '.join(sorted(reserved))}")
        async with self._lock:
            records, _ = await self._async_write(event, fields, keep=keep)
        return records[-1]

    @callback
    def async_watch_health(self, report: Callable[[bool], None]) -> CALLBACK_TYPE:
        """Tell `report` after every append whether it succeeded; return the undo."""
        self._on_health = report

        @callback
        def unwatch() -> None:
            if self._on_health is report:
                self._on_health = None

        return unwatch

    def _report(self, *, ok: bool) -> None:
        if self._on_health is not None:
            self._on_health(ok)

    async def async_verify(self) -> VerifyResult:
        """Verify the whole chain, and that it still ends with the last record written."""
        return await self._async_read(
            lambda file, tail: verify(file, tail.end, (tail.seq, tail.hash))
        )

    async def async_export(
        self, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        """Return the records written between start and end (inclusive)."""
        start_ts = None if start is None else format_ts(start)
        end_ts = None if end is None else format_ts(end)
        return await self._async_read(
            lambda file, tail: export_records(file, tail.end, start_ts, end_ts)
        )

    async def async_transparency_report(self) -> list[dict[str, Any]]:
        """Return per-month activation statistics, oldest month first."""
        return await self._async_read(
            lambda file, tail: transparency_report(file, tail.end)
        )

    async def async_tail(self, count: int) -> list[dict[str, Any]]:
        """Return the last `count` records, oldest first."""
        return await self._async_read(
            lambda file, tail: tail_records(file, tail.end, count)
        )

    async def async_prune(self, older_than: datetime) -> int:
        """Remove the records older than `older_than`; return how many."""
        cutoff = format_ts(older_than)
        async with self._lock:
            tail = await self._async_ensure_open()
            try:
                removed = await self._hass.async_add_executor_job(
                    self._file.prune, tail, cutoff
                )
            except OSError as err:
                _LOGGER.error("Cannot prune the audit log %s: %s", self.path, err)
                raise _unavailable(err) from err
            await self._head.async_save(self._file.tail)
        return removed

    @callback
    def async_track_retention(self, days: Callable[[], int]) -> CALLBACK_TYPE:
        """Prune now and daily; `days` gives the current retention, 0 keeps all.

        Taking a callable lets an options change apply without rescheduling.
        """

        async def _async_prune(now: datetime) -> None:
            if (keep := days()) > 0:
                with suppress(AuditUnavailableError):  # logged; retried tomorrow
                    await self.async_prune(now - timedelta(days=keep))

        self._hass.async_create_background_task(
            _async_prune(dt_util.utcnow()), f"{DOMAIN} audit retention"
        )
        return async_track_time_interval(
            self._hass,
            _async_prune,
            timedelta(days=1),
            name=f"{DOMAIN} audit retention",
            cancel_on_shutdown=True,
        )

    async def _async_ensure_open(self) -> Tail:
        """Open the log if needed and return its tail; the caller holds the lock."""
        if self._file.tail is not None:
            return self._file.tail
        return (await self._async_write(None, {}, keep=False))[1]

    async def _async_read[_T](self, reader: Callable[[IO[bytes], Tail], _T]) -> _T:
        """Run a reader in the executor over the records written so far."""
        try:
            async with self._lock:
                tail = await self._async_ensure_open()
                # Opened under the lock: a later prune replaces the path, not
                # this file, and appends only add bytes after `tail.end`.
                file = await self._hass.async_add_executor_job(self.path.open, "rb")

            def _read() -> _T:
                with file:
                    return reader(file, tail)

            return await self._hass.async_add_executor_job(_read)
        except OSError as err:
            _LOGGER.error("Cannot read the audit log %s: %s", self.path, err)
            raise _unavailable(err) from err

    async def _async_write(
        self,
        event: str | None,
        fields: Mapping[str, Any],
        *,
        keep: bool,
        retry: bool = False,
    ) -> tuple[list[AuditRecord], Tail]:
        """Write what waits, then the event if any; the caller holds the lock.

        With `keep`, an event that cannot be written waits for the next write.
        """
        if not self._head.loaded:
            self._file.stored_end = await self._head.async_load()
        now = format_ts(dt_util.utcnow())
        waited = self.pending
        try:
            records, tail = await self._hass.async_add_executor_job(
                self._file.write, now, event, fields
            )
        except OSError as err:
            # The retry, every minute while the disk is full, logs quietly.
            (_LOGGER.debug if retry else _LOGGER.error)(
                "Cannot write the audit log %s: %s", self.path, err
            )
            if keep and event is not None:
                self._file.keep(event, fields, now)
            self._report(ok=False)
            self._schedule_retry()
            raise _unavailable(err) from err
        if waited:
            _LOGGER.info(
                "Wrote the %d audit records that waited to %s", waited, self.path
            )
        self._cancel_retry()
        await self._head.async_save(tail)
        if records:
            self._report(ok=True)
        return records, tail

    def _schedule_retry(self) -> None:
        """Retry what waits every minute, and a last time as Home Assistant stops."""
        if self._retry_unsubs or not self._file.has_unwritten:
            return

        async def _async_retry(_now: datetime) -> None:
            async with self._lock:
                with suppress(AuditUnavailableError):
                    await self._async_write(None, {}, keep=False, retry=True)

        async def _async_last_try(_event: Event) -> None:
            self._retry_unsubs.remove(unsub_stop)  # fired: nothing to undo
            await _async_retry(dt_util.utcnow())
            if self.pending:
                _LOGGER.error(
                    "%d audit records could not be written to %s before Home"
                    " Assistant stopped; they are lost",
                    self.pending,
                    self.path,
                )

        unsub_stop = self._hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_FINAL_WRITE, _async_last_try
        )
        self._retry_unsubs = [
            async_track_time_interval(
                self._hass,
                _async_retry,
                RETRY_INTERVAL,
                name=f"{DOMAIN} audit retry",
                cancel_on_shutdown=True,
            ),
            unsub_stop,
        ]

    def _cancel_retry(self) -> None:
        while self._retry_unsubs:
            self._retry_unsubs.pop()()
