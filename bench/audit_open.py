"""Benchmark: opening the audit log must not get slower as the log grows.

Writes a log of 100 and one of 100 000 records (a realistic mix of events, in
the documented record format, built here independently of audit.py and then
checked with `AuditLog.async_verify`), and times `AuditLog.async_open` on each:
the median of many interleaved runs, so drift affects both alike.

Run: `.venv/bin/python bench/audit_open.py` from the repository root.
Exits 1 if the ratio misses the target.
"""

# ruff: noqa: INP001
import asyncio
from datetime import UTC, datetime, timedelta
import hashlib
import json
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any

from homeassistant.core import HomeAssistant

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.rtcc_share.audit import AuditLog

SIZES = (100, 100_000)
RUNS = 301
TARGET = 1.2


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _fields(seq: int) -> tuple[str, dict[str, Any]]:
    """Return the event and fields of record `seq`, cycling through a share."""
    activation = f"JPD-RTCC-{seq // 4:06d}"
    match seq % 4:
        case 0:
            return "consent_on", {"cause": "resident"}
        case 1:
            return "activation_granted", {
                "activation_id": activation,
                "incident_id": f"CAD-{seq}",
                "incident_type": "shots_fired",
                "operator_id": "op-17",
                "legal_basis": "exigent_circumstances",
                "distance_m": 112.4,
                "granted_duration_s": 600,
                "expires_at": "2026-11-27T14:13:05Z",
            }
        case 2:
            return "share_ended", {
                "activation_id": activation,
                "reason": "expired",
                "duration_s": 600,
                "viewers": [
                    {
                        "address": "203.0.113.7",
                        "first": "2026-11-27T14:03:06Z",
                        "last": "2026-11-27T14:13:04Z",
                        "requests": 301,
                        "bytes": 48_000_000,
                    }
                ],
            }
        case _:
            return "authentication_failed", {
                "count": 3,
                "window_start": "2026-11-27T14:20:00Z",
            }


def write_log(path: Path, count: int) -> None:
    """Write a valid chain of `count` records."""
    prev = "0" * 64
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("wb") as out:
        for seq in range(1, count + 1):
            event, fields = _fields(seq)
            ts = (start + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = {"seq": seq, "ts": ts, "event": event, **fields, "prev": prev}
            prev = hashlib.sha256(_canonical(body)).hexdigest()
            out.write(_canonical({**body, "hash": prev}) + b"\n")


async def main() -> int:
    """Time opening both logs and print the summary line."""
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        folder = Path(config_dir, "rtcc_share")
        folder.mkdir()
        for size in SIZES:
            write_log(folder / f"bench{size}.audit.jsonl", size)
            result = await AuditLog(hass, f"bench{size}").async_verify()
            if not result.valid or result.records != size:
                raise RuntimeError(f"generated log is not valid: {result}")
        timings: dict[int, list[float]] = {size: [] for size in SIZES}
        for _ in range(RUNS):
            for size in SIZES:
                log = AuditLog(hass, f"bench{size}")
                began = time.perf_counter()
                await log.async_open()
                timings[size].append(time.perf_counter() - began)
        small, large = (statistics.median(timings[size]) * 1000 for size in SIZES)
    ratio = large / small
    sys.stdout.write(
        f"audit open: {SIZES[0]} records {small:.3f} ms, {SIZES[1]} records"
        f" {large:.3f} ms, ratio {ratio:.2f} (target <= {TARGET})\n"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
