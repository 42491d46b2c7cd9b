"""The share history and consent of one entry, and the store that keeps them.

Ended activations are remembered for a week (idempotent ends, the rolling
limits); consent is written at every change, because the switch's restore
state, which Home Assistant saves only now and then, is lost in a crash.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .models import EndReason, PastShare

STORE_VERSION: Final = 1
KEEP: Final = timedelta(days=7)
MAX_ITEMS: Final = 500


@dataclass(slots=True, kw_only=True)
class HistoryItem:
    """A granted activation."""

    activation_id: str
    started: datetime
    expires: datetime
    ended: datetime | None = None
    end_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Serialize for the store."""
        return {
            "activation_id": self.activation_id,
            "started": self.started.isoformat(),
            "expires": self.expires.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryItem:
        """Deserialize from the store."""
        return cls(
            activation_id=data["activation_id"],
            started=_parse(data["started"]),
            expires=_parse(data["expires"]),
            ended=_parse(data["ended"]) if data["ended"] else None,
            end_reason=data["end_reason"],
        )

    def close(self, reason: EndReason, now: datetime) -> int:
        """Mark the share ended; return how long it lasted, in whole seconds."""
        self.ended = now
        self.end_reason = reason
        return max(0, round((now - self.started).total_seconds()))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredConsent:
    """Consent as it was last written."""

    on: bool
    since: datetime | None


def _parse(value: str) -> datetime:
    return dt_util.parse_datetime(value, raise_on_error=True)


class ShareHistory:
    """Granted activations, newest last, and the persisted consent."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind to the entry's store; nothing is read until loaded."""
        self._items: list[HistoryItem] = []
        self._consent = StoredConsent(on=False, since=None)
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.session", private=True
        )

    def __iter__(self) -> Iterator[HistoryItem]:
        """Iterate over the kept activations, oldest first."""
        return iter(self._items)

    async def async_load(self) -> StoredConsent | None:
        """Read the store; return the consent it holds, if any."""
        stored = await self._store.async_load() or {}
        self._items = [
            HistoryItem.from_dict(item) for item in stored.get("history", [])
        ]
        if (consent := stored.get("consent")) is None:
            return None
        self._consent = StoredConsent(
            on=bool(consent["on"]),
            since=_parse(consent["since"]) if consent["since"] else None,
        )
        return self._consent

    def find(self, activation_id: str) -> HistoryItem | None:
        """Return the newest activation with this id."""
        return next(
            (h for h in reversed(self._items) if h.activation_id == activation_id),
            None,
        )

    def unfinished(self) -> HistoryItem | None:
        """Return an activation that never ended (a crash interrupted it)."""
        return next((h for h in self._items if h.ended is None), None)

    def add(self, item: HistoryItem) -> None:
        """Remember a new grant."""
        self._items.append(item)

    def past_shares(self) -> list[PastShare]:
        """Return the shares for the policy's rolling limits."""
        return [PastShare(started=h.started, ended=h.ended) for h in self._items]

    def started_since(self, since: datetime) -> int:
        """Return how many shares started after `since`."""
        return sum(1 for h in self._items if h.started > since)

    @property
    def last_started(self) -> datetime | None:
        """Return when the last share started."""
        return max((h.started for h in self._items), default=None)

    async def async_save(self, consent: StoredConsent | None = None) -> None:
        """Drop what is too old and write the history and consent."""
        if consent is not None:
            self._consent = consent
        cutoff = dt_util.utcnow() - KEEP
        self._items = [h for h in self._items if h.ended is None or h.ended > cutoff][
            -MAX_ITEMS:
        ]
        await self._store.async_save(
            {
                "history": [h.as_dict() for h in self._items],
                "consent": {
                    "on": self._consent.on,
                    "since": self._consent.since.isoformat()
                    if self._consent.since
                    else None,
                },
            }
        )

    async def async_remove(self) -> None:
        """Delete the store (the entry is removed)."""
        await self._store.async_remove()
