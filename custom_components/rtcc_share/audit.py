"""Tamper-evident audit log of one shared camera, owned by the resident.

One JSON Lines file per config entry, `<config>/rtcc_share/<entry_id>.audit.jsonl`.
Each line is the canonical JSON (sorted keys, no spaces, UTF-8) of a record:
`seq` (from 1, no gaps), UTC `ts`, `event`, the event's fields, `prev` (the
previous record's hash, 64 zeros for the first) and `hash`, the SHA-256 of the
canonical JSON of the record without `hash`. Changing, removing or reordering
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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .models import AuditEvent

_LOGGER = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
RESERVED_FIELDS = frozenset({"seq", "ts", "event", "prev", "hash"})
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Larger than a typical record, so opening usually reads one block.
_TAIL_BLOCK = 16 * 1024
# One writer per log file, ever: a second instance would take the first one's
# newer records for a torn tail.
_LOGS: HassKey[dict[str, AuditLog]] = HassKey(f"{DOMAIN}_audit_logs")


class AuditUnavailableError(HomeAssistantError):
    """The audit log cannot be read or written; writers must fail closed."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record as written to the log."""

    seq: int
    ts: str
    event: str
    hash: str
    data: dict[str, Any]

    @property
    def receipt(self) -> str:
        """Return the receipt handed to the city for this record."""
        return f"sha256:{self.hash}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of verifying the whole chain."""

    valid: bool
    records: int
    first_bad_seq: int | None


@dataclass(frozen=True, slots=True)
class _Tail:
    """Where the chain continues: last seq and hash, and the end of good data."""

    seq: int
    hash: str
    end: int


def format_ts(value: datetime) -> str:
    """Return the fixed-width UTC form used in records (sorts as it compares)."""
    return dt_util.as_utc(value).strftime(TS_FORMAT)


def _canonical(obj: Mapping[str, Any]) -> bytes:
    """Return the canonical JSON encoding that hashes are computed over."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _build(
    seq: int, prev: str, event: str, fields: Mapping[str, Any]
) -> tuple[AuditRecord, bytes]:
    """Return a new record and its line."""
    body = {
        "seq": seq,
        "ts": format_ts(dt_util.utcnow()),
        "event": event,
        **fields,
        "prev": prev,
    }
    digest = _sha256(_canonical(body))
    line = _canonical({**body, "hash": digest}) + b"\n"
    # Decoded from the line, so `data` is exactly what a reader will see.
    data: dict[str, Any] = json.loads(line)
    return AuditRecord(seq, data["ts"], event, digest, data), line


def _parse(line: bytes) -> dict[str, Any] | None:
    """Return the record on a line, or None if the line holds none."""
    try:
        record = json.loads(line.decode())
    except ValueError:
        return None
    if (
        not isinstance(record, dict)
        or type(record.get("seq")) is not int
        or not isinstance(record.get("hash"), str)
    ):
        return None
    return record


def _is_canonical(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True if the line is exactly the record's canonical form."""
    try:
        return line == _canonical(record) + b"\n"
    except ValueError:
        return False


def _is_intact(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True if the line is canonical and the record's hash is its own."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return _is_canonical(record, line) and record["hash"] == _sha256(_canonical(body))


def _is_anchor(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True for a pruning anchor (only valid as the first line)."""
    return (
        record.get("event") == AuditEvent.PRUNED
        and "prev" not in record
        and _is_canonical(record, line)
    )


def _lines(file: IO[bytes], end: int) -> Iterator[bytes]:
    """Yield the lines of the file's first `end` bytes."""
    file.seek(0)
    remaining = end
    while remaining > 0 and (line := file.readline(remaining)):
        remaining -= len(line)
        yield line


def _lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line) from `end` backwards; a line keeps its newline."""
    buf = b""
    buf_start = line_end = end
    while line_end > 0:
        # The previous line ends at the last newline before this line's last byte.
        cut = buf.rfind(b"\n", 0, max(line_end - 1 - buf_start, 0))
        if cut < 0 and buf_start > 0:
            size = min(_TAIL_BLOCK, buf_start)
            buf_start -= size
            buf = os.pread(fd, size, buf_start) + buf
            continue
        line_start = buf_start + cut + 1
        yield line_start, buf[line_start - buf_start : line_end - buf_start]
        buf = buf[: line_start - buf_start]
        line_end = line_start


def _scan_tail(fd: int, size: int) -> _Tail:
    """Find the last complete record; everything after it is torn."""
    for start, line in _lines_backwards(fd, size):
        if line.endswith(b"\n") and (record := _parse(line)) is not None:
            if not (_is_anchor(record, line) or _is_intact(record, line)):
                _LOGGER.warning(
                    "Last audit record (seq %s) does not match its hash; the"
                    " chain continues from it and verification will report it",
                    record["seq"],
                )
            return _Tail(record["seq"], record["hash"], start + len(line))
    return _Tail(0, GENESIS_HASH, 0)


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


def _verify(file: IO[bytes], end: int) -> VerifyResult:
    """Check every line, the chain and a pruning anchor."""
    expected_seq, prev = 1, GENESIS_HASH
    anchor: tuple[int, str] | None = None  # (seq, sha256 of the anchor line)
    anchor_proof: Any = None  # what the latest chained `pruned` record says
    first_bad: int | None = None
    count = 0
    for index, line in enumerate(_lines(file, end)):
        record = _parse(line)
        if index == 0 and record is not None and _is_anchor(record, line):
            anchor = (record["seq"], _sha256(line))
            expected_seq, prev = record["seq"] + 1, record["hash"]
            continue
        count += 1
        if first_bad is not None:
            continue
        if (
            record is None
            or record["seq"] != expected_seq
            or record.get("prev") != prev
            or not _is_intact(record, line)
        ):
            first_bad = expected_seq
            continue
        if record.get("event") == AuditEvent.PRUNED:
            anchor_proof = record.get("anchor_sha256")
        expected_seq, prev = expected_seq + 1, record["hash"]
    if first_bad is None and anchor is not None and anchor_proof != anchor[1]:
        first_bad = anchor[0]
    return VerifyResult(first_bad is None, count, first_bad)


def _export(
    file: IO[bytes], end: int, start_ts: str | None, end_ts: str | None
) -> list[dict[str, Any]]:
    """Return the records whose `ts` is within [start_ts, end_ts]."""
    records = []
    for line in _lines(file, end):
        if (record := _parse(line)) is None:
            continue
        ts = str(record.get("ts"))
        if (start_ts is None or ts >= start_ts) and (end_ts is None or ts <= end_ts):
            records.append(record)
    return records


def _transparency_report(file: IO[bytes], end: int) -> list[dict[str, Any]]:
    """Summarize activations per calendar month (UTC)."""
    months: dict[str, dict[str, Any]] = {}
    for line in _lines(file, end):
        record = _parse(line)
        if record is None or (event := record.get("event")) not in (
            AuditEvent.ACTIVATION_GRANTED,
            AuditEvent.ACTIVATION_REFUSED,
            AuditEvent.SHARE_ENDED,
        ):
            continue
        month = months.setdefault(
            str(record.get("ts"))[:7],
            {
                "granted": 0,
                "refused": Counter[str](),
                "seconds": 0.0,
                "operators": set(),
                "incidents": set(),
            },
        )
        if event == AuditEvent.SHARE_ENDED:
            if isinstance(duration := record.get("duration_s"), int | float):
                month["seconds"] += duration
            continue
        if event == AuditEvent.ACTIVATION_GRANTED:
            month["granted"] += 1
        else:
            # An aggregated record stands for `count` refusals.
            count = record.get("count", 1)
            month["refused"][str(record.get("reason"))] += (
                count if isinstance(count, int) and count > 0 else 1
            )
        month["operators"].add(record.get("operator_id"))
        month["incidents"].add(record.get("incident_id"))
    return [
        {
            "month": key,
            "requested": stats["granted"] + stats["refused"].total(),
            "granted": stats["granted"],
            "refused_by_reason": dict(sorted(stats["refused"].items())),
            "minutes_shared": round(stats["seconds"] / 60, 1),
            "distinct_operators": len(stats["operators"] - {None}),
            "distinct_incidents": len(stats["incidents"] - {None}),
        }
        for key, stats in sorted(months.items())
    ]


def _tail_records(file: IO[bytes], end: int, count: int) -> list[dict[str, Any]]:
    """Return the last `count` records, oldest first, reading from the end."""
    records: list[dict[str, Any]] = []
    for _, line in _lines_backwards(file.fileno(), end):
        if len(records) == count:
            break
        if (record := _parse(line)) is not None:
            records.append(record)
    records.reverse()
    return records


def _unavailable(err: OSError) -> AuditUnavailableError:
    return AuditUnavailableError(
        translation_domain=DOMAIN,
        translation_key="audit_log_io_error",
        translation_placeholders={"error": str(err)},
    )


class AuditLog:
    """The hash-chained audit log of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize; nothing is read until the log is opened."""
        self._hass = hass
        self._entry_id = entry_id
        self.path = Path(hass.config.path(DOMAIN, f"{entry_id}.audit.jsonl"))
        self._lock = asyncio.Lock()
        # Both are only used by jobs holding the lock.
        self._tail: _Tail | None = None
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
        return await self._async_read(_verify)

    async def async_export(
        self, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        """Return the records written between start and end (inclusive)."""
        start_ts = None if start is None else format_ts(start)
        end_ts = None if end is None else format_ts(end)
        return await self._async_read(
            lambda file, size: _export(file, size, start_ts, end_ts)
        )

    async def async_transparency_report(self) -> list[dict[str, Any]]:
        """Return per-month activation statistics, oldest month first."""
        return await self._async_read(_transparency_report)

    async def async_tail(self, count: int) -> list[dict[str, Any]]:
        """Return the last `count` records, oldest first."""
        return await self._async_read(
            lambda file, size: _tail_records(file, size, count)
        )

    async def async_prune(self, older_than: datetime) -> int:
        """Remove the records older than `older_than`; return how many."""
        cutoff = format_ts(older_than)
        async with self._lock:
            tail = await self._async_ensure_open()
            try:
                return await self._hass.async_add_executor_job(
                    self._prune_sync, tail, cutoff
                )
            except OSError as err:
                _LOGGER.error("Cannot prune the audit log %s: %s", self.path, err)
                raise _unavailable(err) from err

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

    async def _async_ensure_open(self) -> _Tail:
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
    ) -> tuple[list[AuditRecord], _Tail]:
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
    ) -> tuple[list[AuditRecord], _Tail]:
        """Append durably, recovering a torn tail first; runs under the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if (tail := self._tail) is None:
                if size == 0:
                    _fsync_dir(self.path.parent)  # the file may be new
                self._tail = tail = _scan_tail(fd, size)
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
                record, line = _build(seq + 1, prev, name, body)
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
            self._tail = tail = _Tail(seq, prev, offset + len(data))
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
        return {"bytes": len(torn), "sha256": _sha256(torn), "side_file": name}

    def _prune_sync(self, tail: _Tail, cutoff: str) -> int:
        """Atomically rewrite the log without its records older than cutoff."""
        with self.path.open("rb") as src:
            if not (result := _verify(src, tail.end)).valid:
                _LOGGER.warning(
                    "Not pruning audit log %s: it fails verification at seq %s",
                    self.path,
                    result.first_bad_seq,
                )
                return 0
            lines = _lines(src, tail.end)
            last: dict[str, Any] | None = None
            removed = 0
            first_kept = b""
            for index, line in enumerate(lines):
                # Every line parses: the log verified.
                if (old := _parse(line)) is None or str(old.get("ts")) >= cutoff:
                    first_kept = line
                    break
                if index == 0 and _is_anchor(old, line):
                    continue
                last, removed = old, removed + 1
            if last is None:
                return 0
            anchor = _canonical(
                {
                    "event": AuditEvent.PRUNED,
                    "seq": last["seq"],
                    "hash": last["hash"],
                    "ts": last.get("ts"),
                    "removed": removed,
                }
            )
            record, line = _build(
                tail.seq + 1,
                tail.hash,
                AuditEvent.PRUNED,
                {
                    "removed": removed,
                    "through_seq": last["seq"],
                    "older_than": cutoff,
                    "anchor_sha256": _sha256(anchor + b"\n"),
                },
            )
            tmp = self.path.with_name(f"{self.path.name}.tmp")
            try:
                with tmp.open("wb") as out:
                    tmp.chmod(0o600)
                    out.write(anchor + b"\n" + first_kept)
                    out.writelines(lines)
                    out.write(line)
                    out.flush()
                    os.fsync(out.fileno())
                    size = out.tell()
                tmp.replace(self.path)
            except OSError:
                with suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise
        _fsync_dir(self.path.parent)
        self._tail = _Tail(record.seq, record.hash, size)
        _LOGGER.info("Pruned %d records from audit log %s", removed, self.path)
        return removed
