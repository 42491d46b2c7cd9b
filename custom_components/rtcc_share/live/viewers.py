"""Who watched a share: bounded records for the audit log, a throttled count for the resident.

However many addresses (HLS) or sessions (WebRTC) a URL holder makes, the
records keep the first VIEWERS_KEPT one by one and sum the rest into one
record, and the resident's viewer count changes at most about once a second.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

# The viewer table, one record each, holds this many addresses; later ones are
# summed into one "other viewers" record, whose distinct addresses are
# counted up to OTHER_VIEWERS_COUNTED.
VIEWERS_KEPT: Final = 50
OTHER_VIEWERS_COUNTED: Final = 10_000
# A flood of new viewers changes the resident's viewer count at most this often.
VIEWER_UPDATE_INTERVAL_S: Final = 1.0


@dataclass(slots=True)
class ViewerRecord:
    """What one client address fetched."""

    first: datetime
    last: datetime
    requests: int = 0
    bytes: int = 0

    def as_dict(self, address: str | None) -> dict[str, Any]:
        """Return the record for the audit log: one address's, or the others' sum."""
        return {
            **({} if address is None else {"address": address}),
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "requests": self.requests,
            "bytes": self.bytes,
        }

    def count(self, now: datetime, size: int) -> None:
        """Count one served request."""
        self.last = now
        self.requests += 1
        self.bytes += size


@dataclass(slots=True)
class ViewerTable:
    """The addresses that fetched a share's files, bounded."""

    viewers: dict[str, ViewerRecord] = field(default_factory=dict)
    # The addresses beyond VIEWERS_KEPT, summed: never listed one by one.
    other_viewers: ViewerRecord | None = None
    other_addresses: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        """Return the number of distinct addresses (others counted up to a cap)."""
        return len(self.viewers) + len(self.other_addresses)

    def summary(self) -> list[dict[str, Any]]:
        """Return the kept viewers' records, then the others' sum if any."""
        summary = [record.as_dict(address) for address, record in self.viewers.items()]
        if (others := self.other_viewers) is not None:
            summary.append(
                {"other_addresses": len(self.other_addresses), **others.as_dict(None)}
            )
        return summary

    def log_request(self, address: str, size: int, now: datetime) -> bool:
        """Count one served request; return True if the address is a new viewer."""
        new = False
        if (record := self.viewers.get(address)) is None:
            if len(self.viewers) < VIEWERS_KEPT:
                record = self.viewers[address] = ViewerRecord(first=now, last=now)
                new = True
            else:
                record = self.other_viewers = self.other_viewers or ViewerRecord(
                    first=now, last=now
                )
                if (
                    address not in self.other_addresses
                    and len(self.other_addresses) < OTHER_VIEWERS_COUNTED
                ):
                    self.other_addresses.add(address)
                    new = True
        record.count(now, size)
        return new


def session_record(
    address: str, start: datetime, end: datetime | None, ended: str | None
) -> dict[str, Any]:
    """Return one WebRTC session's record for the audit log."""
    return {
        "address": address,
        "start": start.isoformat(),
        "end": end.isoformat() if end else None,
        "ended": ended,
    }


@dataclass(slots=True)
class SessionLog:
    """The ended WebRTC sessions of a share, bounded like the viewer table."""

    kept: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    # The sessions beyond VIEWERS_KEPT, summed: never listed one by one.
    other_sessions: int = 0
    other_addresses: set[str] = field(default_factory=set)
    other_first: datetime | None = None
    other_last: datetime | None = None
    other_ended: Counter[str] = field(default_factory=Counter)

    def add(self, address: str, start: datetime, end: datetime, ended: str) -> None:
        """Record one ended session."""
        if len(self.kept) < VIEWERS_KEPT:
            self.kept.append((start, session_record(address, start, end, ended)))
            return
        self.other_sessions += 1
        if len(self.other_addresses) < OTHER_VIEWERS_COUNTED:
            self.other_addresses.add(address)
        self.other_first = min(self.other_first or start, start)
        self.other_last = max(self.other_last or end, end)
        self.other_ended[ended] += 1

    def summary(
        self, open_sessions: list[tuple[datetime, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Return the kept and the open sessions by start, then the others' sum."""
        ordered = sorted([*self.kept, *open_sessions], key=lambda item: item[0])
        summary = [record for _, record in ordered]
        if self.other_first is not None and self.other_last is not None:
            summary.append(
                {
                    "other_sessions": self.other_sessions,
                    "other_addresses": len(self.other_addresses),
                    "first": self.other_first.isoformat(),
                    "last": self.other_last.isoformat(),
                    "how_ended": dict(self.other_ended),
                }
            )
        return summary


@dataclass(slots=True)
class Throttle:
    """Calls `target` at once, then at most once per VIEWER_UPDATE_INTERVAL_S."""

    hass: HomeAssistant
    target: Callable[[], None] | None = None
    _unsub: CALLBACK_TYPE | None = field(default=None, init=False, repr=False)
    _pending: bool = field(default=False, init=False, repr=False)

    @callback
    def __call__(self) -> None:
        """Call the target now, or once the interval is over."""
        if self.target is None:
            return
        if self._unsub is not None:
            self._pending = True
            return
        self.target()
        self._unsub = async_call_later(
            self.hass, VIEWER_UPDATE_INTERVAL_S, self._interval_over
        )

    @callback
    def _interval_over(self, _now: datetime) -> None:
        self._unsub = None
        if self._pending:
            self._pending = False
            self()

    @callback
    def cancel(self) -> None:
        """Drop a pending call (the share is over)."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self._pending = False
