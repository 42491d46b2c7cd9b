"""Tamper-evident audit log of one shared camera, owned by the resident.

One JSON Lines file per config entry, `<config>/rtcc_share/<entry_id>.audit.jsonl`,
in the format of audit_format.py, and one writer for it. Changing, removing or reordering
any line breaks the chain at that `seq`; only cutting records off the end
leaves a valid chain, which the receipts given to the city then contradict.

Durability: an append is written, flushed and fsynced in the executor before
the caller goes on; appends are serialized by a lock. Bytes found after the
last good record (a write torn by a crash or a failed write) are moved to a
side file and recorded in a `recovered` record, never silently dropped.
Opening reads only the tail of the file, so its cost does not grow with the log.

Pruning (retention) only runs on a log that verifies, and removes a prefix of
records. The rewritten file starts with an anchor line, `{"event": "pruned",
"seq": <last removed seq>, "hash": <its hash>, "ts": <its ts>, "removed": k}`,
which is accepted only as the first line and from which the kept records
chain on. A normal chained `pruned` record is appended in the same atomic
rewrite and carries the SHA-256 of the anchor line: an anchor that no such
record vouches for (say, written after deleting records) fails verification.
"""

import asyncio
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
import logging
import os
from pathlib import Path
from typing import IO, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .audit_format import (
    RESERVED_FIELDS,
    AuditRecord,
    Tail,
    VerifyResult,
    build,
    canonical,
    export_records,
    format_ts,
    is_anchor,
    lines,
    parse,
    scan_tail,
    sha256,
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


class AuditUnavailableError(HomeAssistantError):
    """The audit log cannot be read or written; writers must fail closed."""


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _fsync_dir(path: Path) -> None:
    """Make a file's creation, rename or size change in the folder durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_side_file(folder: Path, base: str) -> tuple[int, str]:
    """Create a new file next to the log; never overwrite an earlier one."""
    attempt = 0
    while True:
        name = f"{base}-{attempt}.bin" if attempt else f"{base}.bin"
        try:
            return os.open(
                folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
            ), name
        except FileExistsError:
            attempt += 1


def _unavailable(err: OSError) -> AuditUnavailableError:
    return AuditUnavailableError(
        translation_domain=DOMAIN,
        translation_key="audit_log_io_error",
        translation_placeholders={"error": str(err)},
    )


def _prune_file(path: Path, tail: Tail, cutoff: str) -> tuple[int, Tail]:
    """Atomically rewrite a log without its records older than cutoff.

    Return how many were removed and where the chain now continues.
    """
    with path.open("rb") as src:
        if not (result := verify(src, tail.end)).valid:
            _LOGGER.warning(
                "Not pruning audit log %s: it fails verification at seq %s",
                path,
                result.first_bad_seq,
            )
            return 0, tail
        rows = lines(src, tail.end)
        last: dict[str, Any] | None = None
        removed = 0
        first_kept = b""
        for index, line in enumerate(rows):
            # Every line parses: the log verified.
            if (old := parse(line)) is None or str(old.get("ts")) >= cutoff:
                first_kept = line
                break
            if index == 0 and is_anchor(old, line):
                continue
            last, removed = old, removed + 1
        if last is None:
            return 0, tail
        anchor = canonical(
            {
                "event": AuditEvent.PRUNED,
                "seq": last["seq"],
                "hash": last["hash"],
                "ts": last.get("ts"),
                "removed": removed,
            }
        )
        record, line = build(
            tail.seq + 1,
            tail.hash,
            AuditEvent.PRUNED,
            {
                "removed": removed,
                "through_seq": last["seq"],
                "older_than": cutoff,
                "anchor_sha256": sha256(anchor + b"\n"),
            },
        )
        tmp = path.with_name(f"{path.name}.tmp")
        try:
            with tmp.open("wb") as out:
                tmp.chmod(0o600)
                out.write(anchor + b"\n" + first_kept)
                out.writelines(rows)
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            tmp.replace(path)
        except OSError:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)
    _LOGGER.info("Pruned %d records from audit log %s", removed, path)
    return removed, Tail(record.seq, record.hash, size)


class AuditLog:
    """The hash-chained audit log of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize; nothing is read until the log is opened."""
        self._hass = hass
        self._entry_id = entry_id
        self.path = Path(hass.config.path(DOMAIN, f"{entry_id}.audit.jsonl"))
        self._lock = asyncio.Lock()
        # Both are only used by jobs holding the lock.
        self._tail: Tail | None = None
        self._unrecorded: list[dict[str, Any]] = []
        # Told after every append whether it succeeded (the repair issue).
        self._on_health: Callable[[bool], None] | None = None

    @classmethod
    def for_entry(cls, hass: HomeAssistant, entry_id: str) -> AuditLog:
        """Return the entry's one writer, kept across reloads of the entry."""
        logs = hass.data.setdefault(_LOGS, {})
        if (log := logs.get(entry_id)) is None:
            log = logs[entry_id] = cls(hass, entry_id)
        return log

    @classmethod
    def forget(cls, hass: HomeAssistant, entry_id: str) -> None:
        """Drop the entry's writer (the entry is removed)."""
        hass.data.get(_LOGS, {}).pop(entry_id, None)

    async def async_open(self) -> None:
        """Find the end of the chain; set aside and record a torn tail."""
        async with self._lock:
            await self._async_write(None, {})

    async def async_append(self, event: AuditEvent, /, **fields: Any) -> AuditRecord:
        """Durably append a record; raise AuditUnavailableError if impossible."""
        if reserved := RESERVED_FIELDS.intersection(fields):
            raise ValueError(f"Reserved audit field(s): {', '.join(sorted(reserved))}")
        async with self._lock:
            try:
                records, _ = await self._async_write(event, fields)
            except AuditUnavailableError:
                self._report(ok=False)
                raise
        self._report(ok=True)
        return records[-1]

    async def async_try_append(
        self, event: AuditEvent, /, **fields: Any
    ) -> AuditRecord | None:
        """Append where a failure must not stop a privacy-protecting step."""
        with suppress(AuditUnavailableError):
            return await self.async_append(event, **fields)
        return None

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
        """Verify the whole chain."""
        return await self._async_read(verify)

    async def async_export(
        self, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        """Return the records written between start and end (inclusive)."""
        start_ts = None if start is None else format_ts(start)
        end_ts = None if end is None else format_ts(end)
        return await self._async_read(
            lambda file, size: export_records(file, size, start_ts, end_ts)
        )

    async def async_transparency_report(self) -> list[dict[str, Any]]:
        """Return per-month activation statistics, oldest month first."""
        return await self._async_read(transparency_report)

    async def async_tail(self, count: int) -> list[dict[str, Any]]:
        """Return the last `count` records, oldest first."""
        return await self._async_read(
            lambda file, size: tail_records(file, size, count)
        )

    async def async_prune(self, older_than: datetime) -> int:
        """Remove the records older than `older_than`; return how many."""
        cutoff = format_ts(older_than)
        async with self._lock:
            tail = await self._async_ensure_open()
            try:
                removed, self._tail = await self._hass.async_add_executor_job(
                    _prune_file, self.path, tail, cutoff
                )
            except OSError as err:
                _LOGGER.error("Cannot prune the audit log %s: %s", self.path, err)
                raise _unavailable(err) from err
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
        if self._tail is not None:
            return self._tail
        return (await self._async_write(None, {}))[1]

    async def _async_read[_T](self, reader: Callable[[IO[bytes], int], _T]) -> _T:
        """Run a reader in the executor over the records written so far."""
        try:
            async with self._lock:
                end = (await self._async_ensure_open()).end
                # Opened under the lock: a later prune replaces the path, not
                # this file, and appends only add bytes after `end`.
                file = await self._hass.async_add_executor_job(self.path.open, "rb")

            def _read() -> _T:
                with file:
                    return reader(file, end)

            return await self._hass.async_add_executor_job(_read)
        except OSError as err:
            _LOGGER.error("Cannot read the audit log %s: %s", self.path, err)
            raise _unavailable(err) from err

    async def _async_write(
        self, event: str | None, fields: Mapping[str, Any]
    ) -> tuple[list[AuditRecord], Tail]:
        """Write in the executor; the caller holds the lock."""
        try:
            return await self._hass.async_add_executor_job(
                self._write_sync, event, fields
            )
        except OSError as err:
            _LOGGER.error("Cannot write the audit log %s: %s", self.path, err)
            raise _unavailable(err) from err

    def _write_sync(
        self, event: str | None, fields: Mapping[str, Any]
    ) -> tuple[list[AuditRecord], Tail]:
        """Append durably, recovering a torn tail first; runs under the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if (tail := self._tail) is None:
                if size == 0:
                    _fsync_dir(self.path.parent)  # the file may be new
                self._tail = tail = scan_tail(fd, size)
            if size > tail.end:
                # Kept in memory until its record is written, so never lost.
                self._unrecorded.append(self._set_aside(fd, tail.end, size))
            elif size < tail.end:
                _LOGGER.warning(
                    "Audit log %s is shorter than what was written to it; it was"
                    " changed outside Home Assistant and will fail verification",
                    self.path,
                )
            # Append at the end, never past it: that would leave a hole.
            offset = min(size, tail.end)
            pending: list[tuple[str, Mapping[str, Any]]] = [
                (AuditEvent.RECOVERED, torn) for torn in self._unrecorded
            ]
            if event is not None:
                pending.append((event, fields))
            records: list[AuditRecord] = []
            data = b""
            seq, prev = tail.seq, tail.hash
            for name, body in pending:
                record, line = build(seq + 1, prev, name, body)
                records.append(record)
                data += line
                seq, prev = record.seq, record.hash
            if not data:
                return records, tail
            try:
                _pwrite_all(fd, data, offset)
                os.fsync(fd)
            except OSError:
                # Take back a partial write; if that fails too, the next write
                # sets the leftover bytes aside.
                with suppress(OSError):
                    os.ftruncate(fd, offset)
                raise
            self._tail = tail = Tail(seq, prev, offset + len(data))
            self._unrecorded.clear()
            return records, tail
        finally:
            os.close(fd)

    def _set_aside(self, fd: int, start: int, size: int) -> dict[str, Any]:
        """Move the bytes after the last good record to a side file."""
        torn = os.pread(fd, size - start, start)
        stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        side, name = _create_side_file(
            self.path.parent, f"{self._entry_id}.audit.torn-{stamp}"
        )
        try:
            os.write(side, torn)
            os.fsync(side)
        finally:
            os.close(side)
        os.ftruncate(fd, start)
        os.fsync(fd)
        _fsync_dir(self.path.parent)
        _LOGGER.warning(
            "Audit log %s ended in %d bytes that are not a complete record;"
            " they were moved to %s",
            self.path,
            len(torn),
            name,
        )
        return {"bytes": len(torn), "sha256": sha256(torn), "side_file": name}
