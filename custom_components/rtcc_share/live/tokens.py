"""Every live view's token: one registry for both kinds, one place that makes them.

A live view (the HLS share, the WebRTC share) is reachable only under its
token while it is in the registry; revoking it takes it out, and every URL
under that token answers 404 from then on. Each kind's token format is the
one the contract's OpenAPI file publishes for its URL (both 256 bits).
"""

from collections.abc import Callable
from dataclasses import dataclass
import secrets
from typing import Final, Protocol

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenKind:
    """One kind of live view: its URL prefix and its token format."""

    prefix: str
    pattern: str
    make: Callable[[], str]

    def new(self) -> str:
        """Return a fresh, unguessable token."""
        return self.make()

    def route(self) -> str:
        """Return the route of the view's URL, up to and including the token."""
        return f"{self.prefix}/{{token:{self.pattern}}}"


HLS: Final = TokenKind(
    prefix=f"/api/{DOMAIN}/hls",
    pattern="[a-f0-9]{64}",
    make=lambda: secrets.token_hex(32),
)
WEBRTC: Final = TokenKind(
    prefix=f"/api/{DOMAIN}/whep",
    pattern="[A-Za-z0-9_-]{43}",
    make=lambda: secrets.token_urlsafe(32),
)


class Reachable(Protocol):
    """A live view that the registry can hand out by its token."""

    @property
    def token(self) -> str:
        """Return the view's token."""


_VIEWS: HassKey[dict[str, Reachable]] = HassKey(f"{DOMAIN}_live_views")


def async_setup(hass: HomeAssistant) -> None:
    """Start the registry (once, from the integration's setup)."""
    hass.data[_VIEWS] = {}


def add(hass: HomeAssistant, view: Reachable) -> None:
    """Make a view reachable under its token."""
    hass.data[_VIEWS][view.token] = view


def get[T](hass: HomeAssistant, kind: type[T], token: str) -> T | None:
    """Return the reachable view of this kind under the token, if any."""
    view = hass.data[_VIEWS].get(token)
    return view if isinstance(view, kind) else None


def remove(hass: HomeAssistant, view: Reachable) -> None:
    """Make a view unreachable: every URL under its token answers 404 from now."""
    if hass.data[_VIEWS].get(view.token) is view:
        del hass.data[_VIEWS][view.token]
