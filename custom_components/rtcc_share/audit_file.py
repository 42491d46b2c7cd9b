"""The audit log file's blocking work, done in the executor for audit.py.

Durability: a write is flushed and fsynced before it returns. Bytes found
after the last good record (a write torn by a crash or a failed write) are
moved to a side file and recorded in a `recovered` record, never silently
dropped. Opening reads only the tail of the file, so its cost does not grow
with the log; it also compares that tail with the end audit.py stored, and
a file that ends before it gets a `truncated` record.

Pruning (retention) only runs on a log that verifies, and removes a prefix of
records. The rewritten file starts with an anchor line, `{"event": "pruned",
"seq": <last removed seq>, "hash": <its hash>, "ts": <its ts>, "removed": k}`,
which is accepted only as the first line and from which the kept records
chain on. A normal chained `pruned` record is appended in the same atomic
rewrite and carries the SHA-256 of the anchor line: an anchor that no such
record vouches for (say, written after deleting records) fails verification.

Nothing here is thread-safe: audit.py calls it under its lock.
"""

from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
from typing import Any

from homeassistant.util import dt as dt_util

from .audit_format import (
    AuditRecord,
    Tail,
    build,
    canonical,
    is_anchor,
    lines,
    parse,
    scan_tail,
    sha256,
    verify,
)
from .models import AuditEvent

_LOGGER = logging.getLogger(__name__)

# Bounds the memory a disk full for days takes: what waits is mostly
# refusals and per-minute counts, a few hundred bytes each.
PENDING_MAX = 1000


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A record waiting for the disk: its event, fields and time."""

    event: str
    fields: bytes  # canonical JSON: compact, and a copy the caller cannot change
    ts: str


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


class LogFile:
    """One log file, and what its writer knows about it."""

    def __init__(self, path: Path, entry_id: str) -> None:
        """Bind to the file; nothing is read until the first write."""
        self.path = path
        self._entry_id = entry_id
        # Where the chain continues; None until the file is first opened.
        self.tail: Tail | None = None
        # The (seq, hash) stored as the last record written, to compare with
        # the file when it is first opened.
        self.stored_end: tuple[int, str] | None = None
        # Records about the file itself (`recovered`, `truncated`), to write.
        self._found: list[tuple[str, dict[str, Any]]] = []
        # Records that could not be written, and a count of those past the
        # bound, by event, with the first and last one's time.
        self._waiting: list[_Waiting] = []
        self._left_out: Counter[str] = Counter()
        self._left_out_count = 0  # read from the event loop: a plain int
        self._left_out_ts = ("", "")

    @property
    def pending(self) -> int:
        """Return how many records wait for the disk (kept or only counted)."""
        return len(self._waiting) + self._left_out_count

    @property
    def has_unwritten(self) -> bool:
        """Return True if anything waits to be written."""
        return bool(self.pending or self._found)

    def keep(self, event: str, fields: Mapping[str, Any], ts: str) -> None:
        """Keep a record that could not be written; past the bound, count it."""
        if len(self._waiting) < PENDING_MAX:
            self._waiting.append(_Waiting(event, canonical(fields), ts))
            return
        if not self._left_out_count:
            _LOGGER.error(
                "More than %d audit records of %s wait for the disk; later ones"
                " are only counted",
                PENDING_MAX,
                self.path,
            )
            self._left_out_ts = (ts, ts)
        self._left_out[event] += 1
        self._left_out_count += 1
        self._left_out_ts = (self._left_out_ts[0], ts)

    def _waited(self, now: str) -> list[tuple[str, Mapping[str, Any], str]]:
        """Return what waited, marked written now, then what was only counted."""
        waited: list[tuple[str, Mapping[str, Any], str]] = [
            (w.event, {**json.loads(w.fields), "written_at": now}, w.ts)
            for w in self._waiting
        ]
        if self._left_out_count:
            first, last = self._left_out_ts
            fields = {
                "count": self._left_out_count,
                "events": dict(sorted(self._left_out.items())),
                "last_ts": last,
                "written_at": now,
            }
            waited.append((AuditEvent.NOT_RECORDED, fields, first))
        return waited

    def write(
        self, now: str, event: str | None, fields: Mapping[str, Any]
    ) -> tuple[list[AuditRecord], Tail]:
        """Append what waited, what was found about the file, then the event.

        In that order (what waited came first; the rest is stamped `now`), so
        `ts` never goes backwards. Recover a torn tail first. Raise OSError,
        with nothing written, if the records cannot all be written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if (tail := self.tail) is None:
                if size == 0:
                    _fsync_dir(self.path.parent)  # the file may be new
                self.tail = tail = scan_tail(fd, size)
                self._check_end(tail)
            if size > tail.end:
                # Kept in memory until its record is written, so never lost.
                self._found.append(
                    (AuditEvent.RECOVERED, self._set_aside(fd, tail.end, size))
                )
            elif size < tail.end:
                _LOGGER.warning(
                    "Audit log %s is shorter than what was written to it; it was"
                    " changed outside Home Assistant and will fail verification",
                    self.path,
                )
            # Append at the end, never past it: that would leave a hole.
            offset = min(size, tail.end)
            batch = [
                *self._waited(now),
                *((name, body, now) for name, body in self._found),
                *([(event, fields, now)] if event is not None else []),
            ]
            records: list[AuditRecord] = []
            chunks: list[bytes] = []
            seq, prev = tail.seq, tail.hash
            for name, body, ts in batch:
                record, line = build(seq + 1, prev, name, body, ts)
                records.append(record)
                chunks.append(line)
                seq, prev = record.seq, record.hash
            if not (data := b"".join(chunks)):
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
            self.tail = tail = Tail(seq, prev, offset + len(data))
            self._found.clear()
            self._waiting.clear()
            self._left_out.clear()
            self._left_out_count = 0
            return records, tail
        finally:
            os.close(fd)

    def _check_end(self, tail: Tail) -> None:
        """Record it if the file does not reach the end stored as written."""
        end = self.stored_end
        # Past it is fine: a crash between a record and storing its end.
        if end is None or tail.seq > end[0] or end == (tail.seq, tail.hash):
            return
        _LOGGER.warning(
            "Audit log %s ends at seq %d, but seq %d was written to it: records"
            " were cut off its end; this is recorded and it will fail verification",
            self.path,
            tail.seq,
            end[0],
        )
        self._found.append(
            (
                AuditEvent.TRUNCATED,
                {
                    "expected_last_seq": end[0],
                    "expected_last_hash": end[1],
                    "found_last_seq": tail.seq,
                    "found_last_hash": tail.hash,
                },
            )
        )

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

    def prune(self, tail: Tail, cutoff: str) -> int:
        """Atomically rewrite the log without its records older than cutoff.

        `tail` is the current end (the file is open); return how many went.
        """
        path = self.path
        with path.open("rb") as src:
            if not (result := verify(src, tail.end, (tail.seq, tail.hash))).valid:
                _LOGGER.warning(
                    "Not pruning audit log %s: it fails verification at seq %s"
                    " (records missing from its end: %s)",
                    path,
                    result.first_bad_seq,
                    result.truncated,
                )
                return 0
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
                return 0
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
        self.tail = Tail(record.seq, record.hash, size)
        return removed
