"""The audit log's format: records, their hash chain, and reading it back.

One JSON Lines file per config entry. Each line is the canonical JSON (sorted
keys, no spaces, UTF-8) of a record: `seq` (from 1, no gaps), UTC `ts`,
`event`, the event's fields, `prev` (the previous record's hash, 64 zeros for
the first) and `hash`, the SHA-256 of the canonical JSON of the record
without `hash`. A record written later than its event also has `written_at`
(see audit.py). A pruned log starts with an anchor line (see audit.py).

Verifying checks the chain and, given the last record its writer wrote, that
the log still holds it: a log cut at a record boundary is a valid chain, and
only this comparison (or a `truncated` record, written when a restart finds
the cut) shows that records are missing from its end.

Everything here is synchronous and reads files it is given: audit.py runs it
in the executor.
"""

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
import hashlib
import json
import logging
import os
from typing import IO, Any

from homeassistant.util import dt as dt_util

from .models import AuditEvent

_LOGGER = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
RESERVED_FIELDS = frozenset({"seq", "ts", "event", "prev", "hash", "written_at"})
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Larger than a typical record, so opening usually reads one block.
TAIL_BLOCK = 16 * 1024


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
    """The outcome of verifying the whole chain.

    `valid` is false if the chain breaks (at `first_bad_seq`) or if records
    are missing from its end (`truncated`; `expected_last_seq` is the last
    record written).
    """

    valid: bool
    records: int
    first_bad_seq: int | None
    truncated: bool = False
    expected_last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Tail:
    """Where the chain continues: last seq and hash, and the end of good data."""

    seq: int
    hash: str
    end: int


def format_ts(value: datetime) -> str:
    """Return the fixed-width UTC form used in records (sorts as it compares)."""
    return dt_util.as_utc(value).strftime(TS_FORMAT)


def canonical(obj: Mapping[str, Any]) -> bytes:
    """Return the canonical JSON encoding that hashes are computed over."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def build(
    seq: int, prev: str, event: str, fields: Mapping[str, Any], ts: str | None = None
) -> tuple[AuditRecord, bytes]:
    """Return a new record and its line; `ts` is now unless given."""
    body = {
        "seq": seq,
        "ts": ts or format_ts(dt_util.utcnow()),
        "event": event,
        **fields,
        "prev": prev,
    }
    digest = sha256(canonical(body))
    line = canonical({**body, "hash": digest}) + b"\n"
    # Decoded from the line, so `data` is exactly what a reader will see.
    data: dict[str, Any] = json.loads(line)
    return AuditRecord(seq, data["ts"], event, digest, data), line


def parse(line: bytes) -> dict[str, Any] | None:
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


def is_canonical(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True if the line is exactly the record's canonical form."""
    try:
        return line == canonical(record) + b"\n"
    except ValueError:
        return False


def is_intact(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True if the line is canonical and the record's hash is its own."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return is_canonical(record, line) and record["hash"] == sha256(canonical(body))


def is_anchor(record: Mapping[str, Any], line: bytes) -> bool:
    """Return True for a pruning anchor (only valid as the first line)."""
    return (
        record.get("event") == AuditEvent.PRUNED
        and "prev" not in record
        and is_canonical(record, line)
    )


def lines(file: IO[bytes], end: int) -> Iterator[bytes]:
    """Yield the lines of the file's first `end` bytes."""
    file.seek(0)
    remaining = end
    while remaining > 0 and (line := file.readline(remaining)):
        remaining -= len(line)
        yield line


def lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line) from `end` backwards; a line keeps its newline."""
    buf = b""
    buf_start = line_end = end
    while line_end > 0:
        # The previous line ends at the last newline before this line's last byte.
        cut = buf.rfind(b"\n", 0, max(line_end - 1 - buf_start, 0))
        if cut < 0 and buf_start > 0:
            size = min(TAIL_BLOCK, buf_start)
            buf_start -= size
            buf = os.pread(fd, size, buf_start) + buf
            continue
        line_start = buf_start + cut + 1
        yield line_start, buf[line_start - buf_start : line_end - buf_start]
        buf = buf[: line_start - buf_start]
        line_end = line_start


def scan_tail(fd: int, size: int) -> Tail:
    """Find the last complete record; everything after it is torn."""
    for start, line in lines_backwards(fd, size):
        if line.endswith(b"\n") and (record := parse(line)) is not None:
            if not (is_anchor(record, line) or is_intact(record, line)):
                _LOGGER.warning(
                    "Last audit record (seq %s) does not match its hash; the"
                    " chain continues from it and verification will report it",
                    record["seq"],
                )
            return Tail(record["seq"], record["hash"], start + len(line))
    return Tail(0, GENESIS_HASH, 0)


def verify(
    file: IO[bytes], end: int, last: tuple[int, str] | None = None
) -> VerifyResult:
    """Check every line, the chain, a pruning anchor and the end.

    `last` is the (seq, hash) of the last record written, if known: a log
    without that line (record or anchor) has lost its end.
    """
    expected_seq, prev = 1, GENESIS_HASH
    anchor: tuple[int, str] | None = None  # (seq, sha256 of the anchor line)
    anchor_proof: Any = None  # what the latest chained `pruned` record says
    first_bad: int | None = None
    count = 0
    has_last = last is None or last[0] == 0
    cut_recorded = False
    recorded_last: Any = None  # the last seq the latest `truncated` record names
    read, line = 0, b""
    for index, line in enumerate(lines(file, end)):
        read += len(line)
        record = parse(line)
        if record is not None and (record["seq"], record["hash"]) == last:
            has_last = True
        # Reported even past a break: the cut is evidence of its own.
        if (
            record is not None
            and record.get("event") == AuditEvent.TRUNCATED
            and is_intact(record, line)
        ):
            cut_recorded, recorded_last = True, record.get("expected_last_seq")
        if index == 0 and record is not None and is_anchor(record, line):
            anchor = (record["seq"], sha256(line))
            expected_seq, prev = record["seq"] + 1, record["hash"]
            continue
        count += 1
        if first_bad is not None:
            continue
        if (
            record is None
            or record["seq"] != expected_seq
            or record.get("prev") != prev
            or not is_intact(record, line)
        ):
            first_bad = expected_seq
            continue
        if record.get("event") == AuditEvent.PRUNED:
            anchor_proof = record.get("anchor_sha256")
        expected_seq, prev = expected_seq + 1, record["hash"]
    if first_bad is None and anchor is not None and anchor_proof != anchor[1]:
        first_bad = anchor[0]
    # A line cut at `end` means that bytes before it changed (the chain shows
    # where), not that the end is gone.
    if read == end and not line.endswith(b"\n"):
        has_last = True
    expected_last = last[0] if not has_last and last is not None else recorded_last
    truncated = not has_last or cut_recorded
    return VerifyResult(
        first_bad is None and not truncated,
        count,
        first_bad,
        truncated,
        expected_last if type(expected_last) is int else None,
    )


def export_records(
    file: IO[bytes], end: int, start_ts: str | None, end_ts: str | None
) -> list[dict[str, Any]]:
    """Return the records whose `ts` is within [start_ts, end_ts]."""
    records = []
    for line in lines(file, end):
        if (record := parse(line)) is None:
            continue
        ts = str(record.get("ts"))
        if (start_ts is None or ts >= start_ts) and (end_ts is None or ts <= end_ts):
            records.append(record)
    return records


def transparency_report(file: IO[bytes], end: int) -> list[dict[str, Any]]:
    """Summarize activations per calendar month (UTC)."""
    months: dict[str, dict[str, Any]] = {}
    for line in lines(file, end):
        record = parse(line)
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


def tail_records(file: IO[bytes], end: int, count: int) -> list[dict[str, Any]]:
    """Return the last `count` records, oldest first, reading from the end."""
    records: list[dict[str, Any]] = []
    for _, line in lines_backwards(file.fileno(), end):
        if len(records) == count:
            break
        if (record := parse(line)) is not None:
            records.append(record)
    records.reverse()
    return records
