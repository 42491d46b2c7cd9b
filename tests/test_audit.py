"""Tests for the hash-chained audit log."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import errno
import hashlib
import json
import os
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share import audit as audit_module, audit_file
from custom_components.rtcc_share.audit import AuditLog, AuditUnavailableError
from custom_components.rtcc_share.audit_format import GENESIS_HASH, VerifyResult, build
from custom_components.rtcc_share.diagnostics import async_get_config_entry_diagnostics

from .common import STOP, WEBHOOK_URL, City, requested, turn_on_consent

ENTRY_ID = "01JRTCCENTRY"
HEAD_KEY = f"rtcc_share.{ENTRY_ID}.audit_head"
GRANT = {
    "activation_id": "JPD-RTCC-0017",
    "incident_id": "CAD-20-118233",
    "incident_type": "shots_fired",
    "operator_id": "op-17",
    "legal_basis": "exigent_circumstances",
    "distance_m": 112.4,
    "granted_duration_s": 600,
    "expires_at": "2026-11-27T14:13:05Z",
}


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Give every test its own, empty config directory."""
    return str(tmp_path)


async def _opened(hass: HomeAssistant, entry_id: str = ENTRY_ID) -> AuditLog:
    log = AuditLog(hass, entry_id)
    await log.async_open()
    return log


async def _filled(hass: HomeAssistant, count: int) -> AuditLog:
    log = await _opened(hass)
    for index in range(count):
        await log.async_append("consent_on", cause="resident", n=index)
    return log


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _head_at(hass_storage: dict[str, Any], line: bytes) -> None:
    """Leave the stored head at this record, as a crash before the next save would."""
    record = json.loads(line)
    hass_storage[HEAD_KEY]["data"] = {"seq": record["seq"], "hash": record["hash"]}


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make every write to an audit log fail as on a full disk; return the fix."""
    real = audit_file._pwrite_all

    def full(fd: int, data: bytes, offset: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_file, "_pwrite_all", full)
    return lambda: monkeypatch.setattr(audit_file, "_pwrite_all", real)


def _records(log: AuditLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(log)]


def _valid(records: int) -> VerifyResult:
    return VerifyResult(valid=True, records=records, first_bad_seq=None)


def _bad(records: int, seq: int) -> VerifyResult:
    return VerifyResult(valid=False, records=records, first_bad_seq=seq)


async def test_record_format(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Records chain from the genesis hash; the line is the canonical JSON."""
    freezer.move_to("2026-11-27T14:03:05.123456Z")
    log = await _opened(hass)
    assert log.path == Path(hass.config.path("rtcc_share", f"{ENTRY_ID}.audit.jsonl"))
    first = await log.async_append("activation_granted", **GRANT)
    second = await log.async_append("consent_off", cause="lapse")

    assert (first.seq, first.ts, first.event) == (
        1,
        "2026-11-27T14:03:05.123456Z",
        "activation_granted",
    )
    assert first.data == {
        "seq": 1,
        "ts": "2026-11-27T14:03:05.123456Z",
        "event": "activation_granted",
        **GRANT,
        "prev": GENESIS_HASH,
        "hash": first.hash,
    }
    body = {k: v for k, v in first.data.items() if k != "hash"}
    assert first.hash == hashlib.sha256(_canonical(body)).hexdigest()
    assert first.receipt == f"sha256:{first.hash}"
    assert second.data["prev"] == first.hash
    assert second.seq == 2
    assert _lines(log) == [
        _canonical(first.data) + b"\n",
        _canonical(second.data) + b"\n",
    ]
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert await log.async_verify() == _valid(2)


async def test_reserved_and_invalid_fields(hass: HomeAssistant) -> None:
    """Reserved keys and non-JSON values are refused before anything is written."""
    log = await _filled(hass, 1)
    before = log.path.read_bytes()
    for key in ("seq", "ts", "event", "prev", "hash"):
        with pytest.raises(ValueError, match=key):
            await log.async_append("consent_on", **{key: 1})
    with pytest.raises(TypeError):
        await log.async_append("consent_on", when=datetime.now(UTC))
    with pytest.raises(ValueError):
        await log.async_append("consent_on", distance_m=float("nan"))
    assert log.path.read_bytes() == before
    assert (await log.async_append("consent_off", cause="resident")).seq == 2
    assert await log.async_verify() == _valid(2)


async def test_unicode_fields(hass: HomeAssistant) -> None:
    """Fields are stored as UTF-8, not escaped, and verify."""
    log = await _opened(hass)
    record = await log.async_append("activation_refused", operator_id="opé-17 ☂")
    assert "opé-17 ☂".encode() in log.path.read_bytes()
    assert record.data["operator_id"] == "opé-17 ☂"
    assert await log.async_verify() == _valid(1)


async def test_chain_verifies_after_10000_records(hass: HomeAssistant) -> None:
    """A long chain verifies, and a reopened log continues it."""
    log = await _filled(hass, 10_000)
    assert await log.async_verify() == _valid(10_000)
    reopened = await _opened(hass)
    assert (await reopened.async_append("consent_off", cause="resident")).seq == 10_001
    assert await reopened.async_verify() == _valid(10_001)


async def test_every_flipped_byte_is_detected_at_its_record(
    hass: HomeAssistant,
) -> None:
    """Flipping any single byte of any record breaks the chain at that record."""
    log = await _opened(hass)
    await log.async_append("activation_granted", **GRANT)
    await log.async_append("share_ended", activation_id="A1", reason="expired")
    await log.async_append("consent_off", cause="lapse")
    original = log.path.read_bytes()
    seq_at = [
        seq for seq, line in enumerate(_lines(log), start=1) for _ in range(len(line))
    ]
    for offset in range(len(original)):
        tampered = bytearray(original)
        tampered[offset] ^= 0x01
        log.path.write_bytes(tampered)
        result = await log.async_verify()
        assert (result.valid, result.first_bad_seq) == (False, seq_at[offset]), offset
    log.path.write_bytes(original)
    assert await log.async_verify() == _valid(3)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda lines: lines[1:], _bad(4, 1)),
        (lambda lines: [lines[0], *lines[2:]], _bad(4, 2)),
        (lambda lines: [*lines[:3], lines[4]], _bad(4, 4)),
        (lambda lines: [lines[0], lines[2], lines[1], *lines[3:]], _bad(5, 2)),
        # The file no longer ends with the last record written: reopening
        # records the cut (a sixth record) and the log stays truncated.
        (
            lambda lines: [*lines[:3], lines[4], lines[3]],
            VerifyResult(False, 6, 4, truncated=True, expected_last_seq=5),
        ),
        (lambda lines: [*lines[:2], lines[1], *lines[2:]], _bad(6, 3)),
        (lambda lines: [*lines[:2], b"[2]\n", *lines[3:]], _bad(5, 3)),
    ],
    ids=[
        "delete-first",
        "delete-second",
        "delete-fourth",
        "swap-2-3",
        "swap-4-5",
        "duplicate-2",
        "replace-3",
    ],
)
async def test_deleted_or_reordered_records_are_detected(
    hass: HomeAssistant, change: Any, expected: VerifyResult
) -> None:
    """Removing, reordering, repeating or replacing a record breaks the chain there."""
    log = await _filled(hass, 5)
    log.path.write_bytes(b"".join(change(_lines(log))))
    assert await (await _opened(hass)).async_verify() == expected


async def test_rewritten_record_with_own_hash_is_detected(hass: HomeAssistant) -> None:
    """A record rewritten with a correct own hash still breaks the next link."""
    log = await _filled(hass, 3)
    lines = _lines(log)
    record = json.loads(lines[1])
    record["cause"] = "automation"
    body = {k: v for k, v in record.items() if k != "hash"}
    record["hash"] = hashlib.sha256(_canonical(body)).hexdigest()
    lines[1] = _canonical(record) + b"\n"
    log.path.write_bytes(b"".join(lines))
    assert await log.async_verify() == _bad(3, 3)


async def test_non_canonical_lines_are_detected(hass: HomeAssistant) -> None:
    """Same content in another encoding, or a non-JSON number, does not verify."""
    log = await _filled(hass, 2)
    lines = _lines(log)
    log.path.write_bytes(
        json.dumps(json.loads(lines[0]), sort_keys=True).encode() + b"\n" + lines[1]
    )
    assert await (await _opened(hass)).async_verify() == _bad(2, 1)
    log.path.write_bytes(lines[0].replace(b'"n":0', b'"n":NaN') + lines[1])
    assert await (await _opened(hass)).async_verify() == _bad(2, 1)


async def test_torn_last_line_is_set_aside_and_recorded(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A crash mid-write: the partial line is kept aside and recorded."""
    freezer.move_to("2026-11-27T14:03:05.123456Z")
    log = await _filled(hass, 3)
    good = log.path.read_bytes()
    torn = b'{"activation_id":"JPD-RTCC-0018","distance_m":12'
    log.path.write_bytes(good + torn)

    reopened = await _opened(hass)
    side = f"{ENTRY_ID}.audit.torn-20261127T140305123456Z.bin"
    assert (log.path.parent / side).read_bytes() == torn
    assert "not a complete record" in caplog.text
    lines = _lines(reopened)
    assert b"".join(lines[:3]) == good
    recovered = json.loads(lines[3])
    assert recovered["event"] == "recovered"
    assert recovered["seq"] == 4
    assert recovered["prev"] == json.loads(lines[2])["hash"]
    assert recovered["bytes"] == len(torn)
    assert recovered["sha256"] == hashlib.sha256(torn).hexdigest()
    assert recovered["side_file"] == side
    assert await reopened.async_verify() == _valid(4)

    # A second crash at the same instant gets its own side file.
    reopened.path.write_bytes(reopened.path.read_bytes() + b"{")
    again = await _opened(hass)
    assert (log.path.parent / side.replace(".bin", "-1.bin")).read_bytes() == b"{"
    assert (await again.async_tail(1))[0]["side_file"].endswith("-1.bin")
    assert await again.async_verify() == _valid(5)


async def test_complete_but_unterminated_or_garbled_tail_is_set_aside(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A whole line without newline, and lines that are not records, are torn too."""
    log = await _filled(hass, 2)
    lines = _lines(log)
    # A crash while writing record 2: its head was never stored.
    log.path.write_bytes(lines[0] + lines[1][:-1])
    _head_at(hass_storage, lines[0])
    reopened = await _opened(hass)
    assert (await reopened.async_tail(1))[0]["bytes"] == len(lines[1]) - 1
    assert await reopened.async_verify() == _valid(2)

    garbage = b"[1]\nnot json\n"
    log.path.write_bytes(log.path.read_bytes() + garbage)
    reopened = await _opened(hass)
    assert (await reopened.async_tail(1))[0]["bytes"] == len(garbage)
    assert await reopened.async_verify() == _valid(3)


async def test_garbage_only_file_is_set_aside(hass: HomeAssistant) -> None:
    """Nothing readable at all: everything is kept aside and a new chain starts."""
    log = AuditLog(hass, ENTRY_ID)
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b"garbage\nmore")
    await log.async_open()
    [record] = await log.async_tail(5)
    assert (record["seq"], record["prev"], record["bytes"]) == (1, GENESIS_HASH, 12)
    assert await log.async_verify() == _valid(1)


async def test_open_reads_only_the_tail(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a big log reads a bounded number of bytes from its end."""
    log = await _filled(hass, 2_000)
    assert log.path.stat().st_size > 300_000
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        read.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    reopened = await _opened(hass)
    assert sum(read) <= 16 * 1024
    assert (await reopened.async_append("consent_off", cause="resident")).seq == 2_001


async def test_long_last_record_spans_several_blocks(hass: HomeAssistant) -> None:
    """A record longer than the read block is found whole."""
    log = await _opened(hass)
    await log.async_append("consent_on", cause="resident")
    big = await log.async_append("options_changed", changed=["x" * 50_000])
    reopened = await _opened(hass)
    assert await reopened.async_tail(1) == [big.data]
    assert (await reopened.async_append("consent_off", cause="lapse")).seq == 3


async def test_broken_last_record_is_reported_and_chain_continues(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A tampered last record: warned about, kept, and found by verification."""
    log = await _filled(hass, 3)
    lines = _lines(log)
    lines[2] = lines[2].replace(b'"cause":"resident"', b'"cause":"automation"')
    log.path.write_bytes(b"".join(lines))
    reopened = await _opened(hass)
    assert "(seq 3) does not match its hash" in caplog.text
    record = await reopened.async_append("consent_off", cause="resident")
    assert record.seq == 4
    assert record.data["prev"] == json.loads(lines[2])["hash"]
    assert await reopened.async_verify() == _bad(4, 3)


async def test_concurrent_appends_are_serialized(hass: HomeAssistant) -> None:
    """100 appends at once: a gap-free chain in call order."""
    log = await _opened(hass)
    records = await asyncio.gather(
        *(
            log.async_append("authentication_failed", count=i, window_start="t")
            for i in range(100)
        )
    )
    assert [r.seq for r in records] == list(range(1, 101))
    assert [r.data["count"] for r in records] == list(range(100))
    assert [json.loads(line)["seq"] for line in _lines(log)] == list(range(1, 101))
    assert await log.async_verify() == _valid(100)


async def test_unwritable_location_fails_closed(hass: HomeAssistant) -> None:
    """Opening or appending where no file can be written raises AuditUnavailableError."""
    folder = Path(hass.config.path("rtcc_share"))
    folder.write_bytes(b"")  # a file where the folder should be: ENOTDIR
    log = AuditLog(hass, ENTRY_ID)
    with pytest.raises(AuditUnavailableError) as err:
        await log.async_open()
    assert err.value.translation_key == "audit_log_io_error"
    folder.unlink()

    log = await _filled(hass, 1)
    shutil.rmtree(folder)
    folder.write_bytes(b"")
    with pytest.raises(AuditUnavailableError):
        await log.async_append("activation_granted", **GRANT)
    folder.unlink()
    # The folder is back, empty: the chain goes on where this process left it,
    # and verification shows that the start is missing.
    assert (await log.async_append("consent_off", cause="resident")).seq == 2
    assert await log.async_verify() == _bad(1, 1)


async def test_disk_full_takes_back_the_partial_record(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed fsync (disk full) leaves no trace; the chain goes on without a gap."""
    log = await _filled(hass, 2)
    before = log.path.read_bytes()
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(AuditUnavailableError) as err:
        await log.async_append("activation_granted", **GRANT)
    assert "No space left" in str(err.value.translation_placeholders)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert log.path.read_bytes() == before
    assert (await log.async_append("activation_granted", **GRANT)).seq == 3
    assert await log.async_verify() == _valid(3)


async def test_leftover_of_failed_write_is_set_aside(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the partial record cannot be taken back, the next write sets it aside."""
    log = await _filled(hass, 1)
    real_fsync, real_ftruncate = os.fsync, os.ftruncate

    def fail(*args: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", fail)
    monkeypatch.setattr(os, "ftruncate", fail)
    with pytest.raises(AuditUnavailableError):
        await log.async_append("activation_granted", **GRANT)
    monkeypatch.setattr(os, "fsync", real_fsync)
    monkeypatch.setattr(os, "ftruncate", real_ftruncate)
    # The refused grant is complete on disk, but it is not part of the chain.
    assert b"activation_granted" in log.path.read_bytes()

    record = await log.async_append("consent_off", cause="resident")
    recovered, ended = await log.async_tail(2)
    assert recovered["event"] == "recovered"
    assert recovered["seq"] == 2
    assert (
        (log.path.parent / recovered["side_file"])
        .read_bytes()
        .startswith(b'{"activation_id":"JPD-RTCC-0017"')
    )
    assert ended == record.data
    assert record.seq == 3
    assert await log.async_verify() == _valid(3)


async def test_recovered_record_is_retried(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes set aside are recorded by a later write if the first one fails."""
    log = await _filled(hass, 1)
    log.path.write_bytes(log.path.read_bytes() + b'{"seq":2')
    real_pwrite = os.pwrite

    def fail(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", fail)
    with pytest.raises(AuditUnavailableError):
        await log.async_append("consent_off", cause="resident")
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    side_files = list(log.path.parent.glob("*.torn-*.bin"))
    assert [p.read_bytes() for p in side_files] == [b'{"seq":2']

    await log.async_append("consent_off", cause="resident")
    recovered, ended = await log.async_tail(2)
    assert recovered["side_file"] == side_files[0].name
    assert ended["event"] == "consent_off"
    assert await log.async_verify() == _valid(3)


async def test_read_failure_raises(hass: HomeAssistant) -> None:
    """A log that vanished cannot be read: AuditUnavailableError."""
    log = await _filled(hass, 1)
    log.path.unlink()
    with pytest.raises(AuditUnavailableError) as err:
        await log.async_verify()
    assert "No such file" in str(err.value.translation_placeholders)


async def test_verify_before_open_creates_an_empty_log(hass: HomeAssistant) -> None:
    """Reading a log that was never opened opens it first."""
    log = AuditLog(hass, ENTRY_ID)
    assert await log.async_verify() == _valid(0)
    assert log.path.read_bytes() == b""
    assert await log.async_tail(3) == []


async def test_export_time_range(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Export returns the records within [start, end]."""
    freezer.move_to("2026-11-01T10:00:00Z")
    log = await _opened(hass)
    for hour in range(4):
        freezer.move_to(f"2026-11-01T1{hour}:00:00Z")
        await log.async_append("consent_on", cause="resident", hour=hour)

    def hours(records: list[dict[str, Any]]) -> list[int]:
        return [r["hour"] for r in records]

    assert hours(await log.async_export(None, None)) == [0, 1, 2, 3]
    start = datetime(2026, 11, 1, 11, tzinfo=UTC)
    end = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert hours(await log.async_export(start, end)) == [1, 2]
    assert hours(await log.async_export(start, None)) == [1, 2, 3]
    assert hours(await log.async_export(None, end)) == [0, 1, 2]

    # Unreadable lines are skipped (verification reports them).
    lines = _lines(log)
    log.path.write_bytes(b"".join([*lines[:2], b"oops\n", *lines[2:]]))
    reopened = await _opened(hass)
    assert hours(await reopened.async_export(None, None)) == [0, 1, 2, 3]


async def test_tail(hass: HomeAssistant) -> None:
    """The last n records, oldest first, skipping unreadable lines."""
    log = await _filled(hass, 5)
    assert [r["n"] for r in await log.async_tail(2)] == [3, 4]
    assert [r["n"] for r in await log.async_tail(10)] == [0, 1, 2, 3, 4]
    lines = _lines(log)
    log.path.write_bytes(b"".join([*lines[:3], b"oops\n", lines[4]]))
    reopened = await _opened(hass)
    assert [r["n"] for r in await reopened.async_tail(2)] == [2, 4]


async def test_transparency_report(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Monthly counts of requests, grants, refusals, minutes, operators, incidents."""
    log = await _opened(hass)

    async def at(when: str, event: str, **fields: Any) -> None:
        freezer.move_to(when)
        await log.async_append(event, **fields)

    await at("2026-10-03T08:00:00Z", "consent_on", cause="resident")
    await at("2026-10-03T09:00:00Z", "activation_granted", **GRANT)
    await at(
        "2026-10-03T09:10:00Z",
        "share_ended",
        activation_id="JPD-RTCC-0017",
        reason="expired",
        duration_s=600,
        viewers=[],
    )
    await at(
        "2026-10-31T23:59:00Z",
        "activation_refused",
        activation_id="A2",
        incident_id="CAD-2",
        incident_type="protest",
        operator_id="op-18",
        reason="incident_type_not_allowed",
    )
    await at(
        "2026-11-01T00:01:00Z",
        "activation_granted",
        **{**GRANT, "activation_id": "A3", "operator_id": "op-18"},
    )
    await at(
        "2026-11-01T00:05:07Z",
        "share_ended",
        activation_id="A3",
        reason="ended_by_city",
        duration_s=307,
        viewers=[],
    )
    for activation in ("A4", "A5"):
        await at(
            "2026-11-02T00:00:00Z",
            "activation_refused",
            activation_id=activation,
            incident_id="CAD-20-118233",
            incident_type="shots_fired",
            operator_id="op-17",
            reason="rate_limited",
        )
    await at("2026-11-02T00:00:01Z", "activation_refused", reason="already_active")
    await at("2026-12-01T00:00:00Z", "share_ended", activation_id="A6", reason="x")

    assert await log.async_transparency_report() == [
        {
            "month": "2026-10",
            "requested": 2,
            "granted": 1,
            "refused_by_reason": {"incident_type_not_allowed": 1},
            "minutes_shared": 10.0,
            "distinct_operators": 2,
            "distinct_incidents": 2,
        },
        {
            "month": "2026-11",
            "requested": 4,
            "granted": 1,
            "refused_by_reason": {"already_active": 1, "rate_limited": 2},
            "minutes_shared": 5.1,
            "distinct_operators": 2,
            "distinct_incidents": 1,
        },
        {
            "month": "2026-12",
            "requested": 0,
            "granted": 0,
            "refused_by_reason": {},
            "minutes_shared": 0.0,
            "distinct_operators": 0,
            "distinct_incidents": 0,
        },
    ]


async def _log_over_days(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, days: int
) -> AuditLog:
    """Return a log with one record a day from 2026-11-01 on."""
    freezer.move_to("2026-11-01T12:00:00Z")
    log = await _opened(hass)
    for day in range(days):
        freezer.move_to(datetime(2026, 11, 1 + day, 12, tzinfo=UTC))
        await log.async_append("consent_on", cause="resident", day=day + 1)
    return log


async def test_prune_keeps_the_chain_verifiable(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Pruning leaves an anchor and a chained `pruned` record that vouches for it."""
    log = await _log_over_days(hass, freezer, 5)
    removed_hash = json.loads(_lines(log)[2])["hash"]
    freezer.move_to("2026-11-06T00:00:00Z")
    assert await log.async_prune(datetime(2026, 11, 4, tzinfo=UTC)) == 3
    lines = _lines(log)
    anchor = json.loads(lines[0])
    assert anchor == {
        "event": "pruned",
        "seq": 3,
        "hash": removed_hash,
        "ts": "2026-11-03T12:00:00.000000Z",
        "removed": 3,
    }
    assert [json.loads(line)["day"] for line in lines[1:3]] == [4, 5]
    pruned = json.loads(lines[3])
    assert pruned["event"] == "pruned"
    assert pruned["seq"] == 6
    assert pruned["removed"] == 3
    assert pruned["through_seq"] == 3
    assert pruned["older_than"] == "2026-11-04T00:00:00.000000Z"
    assert pruned["anchor_sha256"] == hashlib.sha256(lines[0]).hexdigest()
    assert await log.async_verify() == _valid(3)
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert not list(log.path.parent.glob("*.tmp"))

    # Appending, reopening and pruning again keep it verifiable.
    await log.async_append("consent_off", cause="lapse")
    reopened = await _opened(hass)
    assert (await reopened.async_append("consent_on", cause="resident")).seq == 8
    assert await reopened.async_prune(datetime(2026, 11, 5, tzinfo=UTC)) == 1
    anchor = json.loads(_lines(reopened)[0])
    assert (anchor["seq"], anchor["removed"]) == (4, 1)
    assert await reopened.async_verify() == _valid(5)
    export = await reopened.async_export(None, None)
    assert [r["seq"] for r in export] == [4, 5, 6, 7, 8, 9]


async def test_prune_nothing_or_everything(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, hass_storage: dict[str, Any]
) -> None:
    """Nothing old enough: no rewrite. Everything: anchor plus `pruned` record."""
    log = await _log_over_days(hass, freezer, 3)
    before = log.path.read_bytes()
    assert await log.async_prune(datetime(2026, 11, 1, tzinfo=UTC)) == 0
    assert log.path.read_bytes() == before
    freezer.move_to("2026-12-01T00:00:00Z")
    assert await log.async_prune(dt_util.utcnow()) == 3
    lines = _lines(log)
    assert len(lines) == 2
    assert json.loads(lines[1])["prev"] == json.loads(lines[0])["hash"]
    assert await log.async_verify() == _valid(1)
    # The anchor alone at the end of a log still continues the chain (its
    # head being the anchor: the `pruned` record was never written).
    log.path.write_bytes(lines[0])
    _head_at(hass_storage, lines[0])
    reopened = await _opened(hass)
    assert (await reopened.async_append("consent_on", cause="resident")).seq == 4


async def test_prune_refuses_a_log_that_fails_verification(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pruning must not erase the evidence of tampering."""
    log = await _log_over_days(hass, freezer, 3)
    lines = _lines(log)
    lines[0] = lines[0].replace(b'"day":1', b'"day":9')
    log.path.write_bytes(b"".join(lines))
    assert await log.async_prune(datetime(2026, 11, 30, tzinfo=UTC)) == 0
    assert "fails verification at seq 1" in caplog.text
    assert log.path.read_bytes() == b"".join(lines)


@pytest.mark.parametrize(
    ("change", "records", "bad_seq"),
    [
        # The anchor edited: no `pruned` record vouches for it any more.
        (
            lambda lines: [
                lines[0].replace(b'"removed":3', b'"removed":1'),
                *lines[1:],
            ],
            3,
            3,
        ),
        # The anchor removed: the chain does not start at seq 1.
        (lambda lines: lines[1:], 3, 1),
        # A kept record removed right after the anchor.
        (lambda lines: [lines[0], *lines[2:]], 2, 4),
        # The anchor moved down: only valid as the first line.
        (lambda lines: [lines[1], lines[0], *lines[2:]], 4, 1),
    ],
    ids=["anchor-edited", "anchor-removed", "kept-removed", "anchor-moved"],
)
async def test_pruned_log_tampering_is_detected(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    change: Any,
    records: int,
    bad_seq: int,
) -> None:
    """Edits around the anchor break verification."""
    log = await _log_over_days(hass, freezer, 5)
    await log.async_prune(datetime(2026, 11, 4, tzinfo=UTC))
    log.path.write_bytes(b"".join(change(_lines(log))))
    assert await (await _opened(hass)).async_verify() == _bad(records, bad_seq)


async def test_forged_anchor_is_detected(hass: HomeAssistant) -> None:
    """Deleting old records and writing an anchor by hand does not verify."""
    log = await _filled(hass, 4)
    lines = _lines(log)
    second = json.loads(lines[1])
    forged = _canonical(
        {
            "event": "pruned",
            "seq": 2,
            "hash": second["hash"],
            "ts": second["ts"],
            "removed": 2,
        }
    )
    log.path.write_bytes(forged + b"\n" + b"".join(lines[2:]))
    assert await (await _opened(hass)).async_verify() == _bad(2, 2)


async def test_prune_failure_leaves_the_log_untouched(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """If the rewrite cannot be made, the log stays as it was."""
    log = await _log_over_days(hass, freezer, 3)
    before = log.path.read_bytes()
    log.path.with_name(f"{log.path.name}.tmp").mkdir()  # cannot be opened as a file
    with pytest.raises(AuditUnavailableError):
        await log.async_prune(datetime(2026, 11, 30, tzinfo=UTC))
    assert log.path.read_bytes() == before
    assert await log.async_verify() == _valid(3)


async def test_retention(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records older than the retention are pruned at start and then daily."""
    log = await _log_over_days(hass, freezer, 5)
    days = 3
    freezer.move_to("2026-11-06T00:00:00Z")
    unsub = log.async_track_retention(lambda: days)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert json.loads(_lines(log)[0])["removed"] == 2  # days 1 and 2

    days = 0  # keep everything from now on
    freezer.tick(timedelta(days=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert json.loads(_lines(log)[0])["removed"] == 2

    days = 1
    log.path.with_name(f"{log.path.name}.tmp").mkdir()
    freezer.tick(timedelta(days=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "Cannot prune the audit log" in caplog.text  # and no exception

    log.path.with_name(f"{log.path.name}.tmp").rmdir()
    freezer.tick(timedelta(days=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert json.loads(_lines(log)[0])["removed"] == 4  # days 3 to 5, and `pruned`
    assert await log.async_verify() == _valid(1)
    unsub()


async def test_logs_are_separate_per_entry(hass: HomeAssistant) -> None:
    """Each config entry has its own file and chain."""
    first = await _opened(hass, "entry_a")
    second = await _opened(hass, "entry_b")
    await first.async_append("consent_on", cause="resident")
    assert (await second.async_append("consent_on", cause="resident")).seq == 1
    assert first.path != second.path


async def test_records_that_cannot_wait_are_written_first_in_order(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    """A failed try-append waits; the next write puts it first, with its own time."""
    freezer.move_to("2026-11-27T14:00:00Z")
    log = await _filled(hass, 1)
    free_disk = _disk_full(monkeypatch)
    viewers = [{"address": "203.0.113.7", "requests": 3}]
    freezer.move_to("2026-11-27T14:01:00Z")
    ended = await log.async_try_append(
        "share_ended", activation_id="A1", reason="expired", viewers=viewers
    )
    assert ended is None
    viewers.append({"address": "198.51.100.9"})  # a copy waits, not the caller's list
    freezer.move_to("2026-11-27T14:02:00Z")
    assert await log.async_try_append("consent_off", cause="resident") is None
    freezer.move_to("2026-11-27T14:03:00Z")
    with pytest.raises(AuditUnavailableError):  # a strict append is refused, not kept
        await log.async_append("consent_on", cause="resident")
    assert log.pending == 2
    assert len(_lines(log)) == 1
    assert hass_storage[HEAD_KEY]["data"]["seq"] == 1  # the head follows the file

    free_disk()
    freezer.move_to("2026-11-27T14:04:00Z")
    record = await log.async_append("activation_refused", reason="consent_off")
    assert [
        (r["seq"], r["event"], r["ts"], r.get("written_at")) for r in _records(log)[1:]
    ] == [
        (
            2,
            "share_ended",
            "2026-11-27T14:01:00.000000Z",
            "2026-11-27T14:04:00.000000Z",
        ),
        (
            3,
            "consent_off",
            "2026-11-27T14:02:00.000000Z",
            "2026-11-27T14:04:00.000000Z",
        ),
        (4, "activation_refused", "2026-11-27T14:04:00.000000Z", None),
    ]
    assert _records(log)[1]["viewers"] == [{"address": "203.0.113.7", "requests": 3}]
    assert record.seq == 4
    assert log.pending == 0
    assert await log.async_verify() == _valid(4)
    assert hass_storage[HEAD_KEY]["data"] == {"seq": 4, "hash": record.hash}


async def test_records_waiting_are_bounded(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past the bound, records are only counted, in one `not_recorded` record."""
    monkeypatch.setattr(audit_file, "PENDING_MAX", 2)
    log = await _filled(hass, 1)
    free_disk = _disk_full(monkeypatch)
    for minute, (event, fields) in enumerate(
        [
            ("share_ended", {"activation_id": "A1", "reason": "consent_off"}),
            ("consent_off", {"cause": "resident"}),
            ("activation_refused", {"reason": "audit_log_unavailable"}),
            ("authentication_failed", {"count": 4, "window_start": "t"}),
            ("activation_refused", {"reason": "consent_off"}),
        ],
        start=1,
    ):
        freezer.move_to(f"2026-11-27T14:0{minute}:00Z")
        await log.async_try_append(event, **fields)
    assert log.pending == 5
    assert "More than 2 audit records" in caplog.text

    free_disk()
    freezer.move_to("2026-11-27T15:00:00Z")
    await log.async_open()  # as at setup: what waits is written
    assert log.pending == 0
    assert [
        {k: v for k, v in r.items() if k not in ("seq", "prev", "hash")}
        for r in _records(log)[1:]
    ] == [
        {
            "event": "share_ended",
            "activation_id": "A1",
            "reason": "consent_off",
            "ts": "2026-11-27T14:01:00.000000Z",
            "written_at": "2026-11-27T15:00:00.000000Z",
        },
        {
            "event": "consent_off",
            "cause": "resident",
            "ts": "2026-11-27T14:02:00.000000Z",
            "written_at": "2026-11-27T15:00:00.000000Z",
        },
        {
            "event": "not_recorded",
            "count": 3,
            "events": {"activation_refused": 2, "authentication_failed": 1},
            "ts": "2026-11-27T14:03:00.000000Z",
            "last_ts": "2026-11-27T14:05:00.000000Z",
            "written_at": "2026-11-27T15:00:00.000000Z",
        },
    ]
    assert await log.async_verify() == _valid(4)


@pytest.mark.parametrize("room", [True, False], ids=["room", "still-full"])
async def test_last_try_when_home_assistant_stops(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    room: bool,
) -> None:
    """Freed disk, then a restart within the minute: what waits is written first."""
    log = await _filled(hass, 1)
    free_disk = _disk_full(monkeypatch)
    await log.async_try_append("consent_off", cause="resident")
    if room:
        free_disk()
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    if room:
        assert log.pending == 0
        assert [r["event"] for r in _records(log)] == ["consent_on", "consent_off"]
    else:
        assert log.pending == 1
        assert "1 audit records could not be written" in caplog.text
        free_disk()


@pytest.mark.parametrize("room", [True, False], ids=["room", "still-full"])
async def test_removal_tries_what_waits_and_deletes_the_head(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    hass_storage: dict[str, Any],
    room: bool,
) -> None:
    """The entry is removed: a last try, then the stored head goes; the log stays."""
    log = AuditLog.for_entry(hass, ENTRY_ID)
    await log.async_append("consent_on", cause="resident")
    free_disk = _disk_full(monkeypatch)
    await log.async_try_append("share_ended", activation_id="A1", reason="unloaded")
    if room:
        free_disk()
    await AuditLog.async_forget(hass, ENTRY_ID)
    assert HEAD_KEY not in hass_storage
    assert AuditLog.for_entry(hass, ENTRY_ID) is not log
    events = [r["event"] for r in _records(log)]
    if room:
        assert events == ["consent_on", "share_ended"]
    else:
        assert events == ["consent_on"]
        assert "could not be written to" in caplog.text
        assert "before the entry was removed" in caplog.text
        free_disk()


async def test_cut_end_is_reported_while_running(hass: HomeAssistant) -> None:
    """Records cut off the end at a record boundary: the chain holds, the end is gone."""
    log = await _filled(hass, 4)
    log.path.write_bytes(b"".join(_lines(log)[:2]))
    assert await log.async_verify() == VerifyResult(
        False, 2, None, truncated=True, expected_last_seq=4
    )
    # The last record replaced by another that chains: the end is not the one written.
    lines = _lines(log)
    _, forged = build(3, json.loads(lines[1])["hash"], "consent_on", {"n": 2})
    log.path.write_bytes(b"".join(lines) + forged)
    assert await log.async_verify() == VerifyResult(
        False, 3, None, truncated=True, expected_last_seq=4
    )


@pytest.mark.parametrize("replaced", [False, True], ids=["cut", "cut-and-replaced"])
async def test_cut_end_found_at_start_is_recorded(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, replaced: bool
) -> None:
    """A cut made while Home Assistant was stopped is recorded in the log itself."""
    log = await _filled(hass, 4)
    lines = _lines(log)
    kept = lines[:3]
    if replaced:  # record 4 replaced by one that chains: same seq, another hash
        kept.append(build(4, json.loads(lines[2])["hash"], "consent_on", {})[1])
    log.path.write_bytes(b"".join(kept))

    reopened = await _opened(hass)
    assert "records were cut off its end" in caplog.text
    found = json.loads(kept[-1])
    cut = _records(reopened)[-1]
    assert {k: v for k, v in cut.items() if k not in ("ts", "prev", "hash")} == {
        "seq": found["seq"] + 1,
        "event": "truncated",
        "expected_last_seq": 4,
        "expected_last_hash": json.loads(lines[3])["hash"],
        "found_last_seq": found["seq"],
        "found_last_hash": found["hash"],
    }
    records = len(kept) + 1
    cut_log = VerifyResult(False, records, None, truncated=True, expected_last_seq=4)
    assert await reopened.async_verify() == cut_log
    # The evidence stays: recorded once, and retention does not prune it away.
    again = await _opened(hass)
    assert await again.async_verify() == cut_log
    assert await again.async_prune(dt_util.utcnow() + timedelta(days=1)) == 0
    await again.async_append("consent_off", cause="resident")
    assert await again.async_verify() == VerifyResult(
        False, records + 1, None, truncated=True, expected_last_seq=4
    )


async def test_head_behind_the_file_or_missing_is_no_cut(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A crash between a record and its head, or no head yet (an upgrade): no cut."""
    log = await _filled(hass, 3)
    lines = _lines(log)
    _head_at(hass_storage, lines[1])  # the head of record 3 was never stored
    reopened = await _opened(hass)
    assert await reopened.async_verify() == _valid(3)
    assert hass_storage[HEAD_KEY]["data"]["seq"] == 3  # caught up at opening

    # The first start after an upgrade: nothing to compare the end with...
    log.path.write_bytes(b"".join(lines[:2]))
    del hass_storage[HEAD_KEY]
    reopened = await _opened(hass)
    assert await reopened.async_verify() == _valid(2)
    # ...and from then on there is.
    assert hass_storage[HEAD_KEY]["data"]["seq"] == 2
    log.path.write_bytes(lines[0])
    reopened = await _opened(hass)
    assert (await reopened.async_verify()).truncated


async def test_unreadable_head_is_not_compared(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored head that cannot be read is reported, and the log still opens."""
    log = await _filled(hass, 2)
    log.path.write_bytes(_lines(log)[0])
    with patch(
        "homeassistant.helpers.storage.Store.async_load",
        side_effect=HomeAssistantError("unreadable"),
    ):
        reopened = await _opened(hass)
    assert "its end is not checked at this start" in caplog.text
    assert await reopened.async_verify() == _valid(1)


def _audit_issue(hass: HomeAssistant, entry: MockConfigEntry) -> bool:
    issue_id = f"audit_log_unavailable_{entry.entry_id}"
    return ir.async_get(hass).async_get_issue("rtcc_share", issue_id) is not None


async def _activate(
    hass_client_no_auth: ClientSessionGenerator, city: City, activation_id: str
) -> tuple[int, dict[str, Any]]:
    body, headers = city.sign(requested(activation_id))
    client = await hass_client_no_auth()
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status, await response.json()


async def test_share_end_on_a_full_disk_is_written_once_there_is_room(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every end is an audit entry, even one made while the disk was full."""
    audit = integration.runtime_data.audit
    await turn_on_consent(hass)
    assert (await _activate(hass_client_no_auth, city, "A-1"))[0] == 201
    free_disk = _disk_full(monkeypatch)

    before = dt_util.utcnow()
    await hass.services.async_call(
        "button", "press", {"entity_id": STOP}, blocking=True
    )
    after = dt_util.utcnow()
    assert integration.runtime_data.session.live is None  # the end did not wait
    assert await _activate(hass_client_no_auth, city, "A-2") == (
        503,
        {"error": "audit_log_unavailable"},
    )
    assert audit.pending == 2  # the end and the refusal
    diagnostics = await async_get_config_entry_diagnostics(hass, integration)
    assert diagnostics["audit"]["pending_records"] == 2
    assert _audit_issue(hass, integration)
    # Retried every minute; still full: still waiting, still an issue.
    async_fire_time_changed(hass, dt_util.utcnow() + audit_module.RETRY_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert audit.pending == 2
    assert _audit_issue(hass, integration)

    free_disk()
    async_fire_time_changed(hass, dt_util.utcnow() + 2 * audit_module.RETRY_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert audit.pending == 0
    assert not _audit_issue(hass, integration)
    records = await audit.async_export(None, None)
    granted, ended, refused = records[-3:]
    assert (granted["event"], granted["activation_id"]) == ("activation_granted", "A-1")
    assert (ended["event"], ended["activation_id"], ended["reason"]) == (
        "share_ended",
        "A-1",
        "stopped_by_resident",
    )
    # `ts` is when the share ended; `written_at` when the disk had room.
    ts = dt_util.parse_datetime(ended["ts"], raise_on_error=True)
    assert before <= ts <= after
    assert ended["written_at"] > ended["ts"]
    assert (refused["event"], refused["reason"]) == (
        "activation_refused",
        "audit_log_unavailable",
    )
    assert ended["seq"] + 1 == refused["seq"]
    assert await audit.async_verify() == _valid(len(records))


async def test_reload_on_a_full_disk_keeps_what_waits_and_the_issue(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload ends the share; setup cannot write its end yet, loads, and says so."""
    audit = integration.runtime_data.audit
    await turn_on_consent(hass)
    assert (await _activate(hass_client_no_auth, city, "A-1"))[0] == 201
    free_disk = _disk_full(monkeypatch)
    assert await hass.config_entries.async_reload(integration.entry_id)
    await hass.async_block_till_done()
    assert integration.state is ConfigEntryState.LOADED
    assert integration.runtime_data.audit is audit
    assert audit.pending == 1
    assert _audit_issue(hass, integration)

    free_disk()
    await hass.services.async_call(
        "switch",
        "turn_off",
        {"entity_id": "switch.front_door_consent_to_share"},
        blocking=True,
    )
    assert audit.pending == 0
    assert not _audit_issue(hass, integration)
    records = await audit.async_export(None, None)
    assert [(r["event"], r.get("reason")) for r in records[-3:]] == [
        ("activation_granted", None),
        ("share_ended", "unloaded"),
        ("consent_off", None),
    ]
    assert "written_at" in records[-2]
    assert await audit.async_verify() == _valid(len(records))
