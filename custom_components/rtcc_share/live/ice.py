"""ICE servers for the city's WebRTC clients, as WHEP `Link` headers.

The resident lists STUN and TURN servers, one per line: `URL`, or `URL USER
PASSWORD`. A TURN server listed without credentials gets short-lived ones,
derived for each share from the TURN shared secret (the TURN REST API scheme
of coturn's `use-auth-secret`) and expiring with the share. A fixed user and
password is handed out only if the resident accepted that the city keeps it.

A value reaches a header only if the header can carry it as it is: the URL
by the STUN and TURN URI grammar (RFC 7064, RFC 7065), restricted to DNS
names and IP addresses, so that no `,`, `;`, `"` or `>` can end the link and
name another server; user names and passwords as RFC 8288 quoted strings of
printable ASCII. A line that breaks a rule is refused by the options flow,
and skipped (by line number, never its text) if it was stored before.

Pure: no Home Assistant import, no I/O, no clock.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
import hmac
import ipaddress
import re
from typing import Any, Final, Literal

from ..const import (
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_TURN_SECRET,
)

ICE_SCHEMES: Final = ("stun", "stuns", "turn", "turns")
# Anyone holding a derived credential can test guesses of the secret offline.
TURN_SECRET_MIN_LEN: Final = 32
# RFC 8489's USERNAME is under 513 bytes; passwords get the same bound.
CREDENTIAL_MAX_LEN: Final = 512
# After the expiry in a derived user name: names the shares in the TURN
# server's log, and nothing else.
TURN_USER: Final = "rtcc_share"

type IceErrorReason = Literal[
    "invalid_ice_server",
    "invalid_ice_credential",
    "ice_static_credentials_not_accepted",
    "turn_secret_required",
    "weak_turn_secret",
]

# RFC 7064 / RFC 7065; re.ASCII, so that no non-ASCII letter folds into one.
_URI: Final = re.compile(
    r"(?P<scheme>stuns?|turns?):(?P<host>\[[^\]]*\]|[^:?\[\]]*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?\Z",
    re.ASCII | re.IGNORECASE,
)
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME: Final = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z", re.ASCII)
_IPV4_LIKE: Final = re.compile(r"[0-9.]+\Z", re.ASCII)
# RFC 9110 VCHAR: what a quoted-string carries, less the space and tab that
# separate the fields of a line.
_VCHARS: Final = re.compile(r"[\x21-\x7e]+\Z")


class IceServerError(ValueError):
    """An ICE server that cannot be handed out; `reason` is the flow's error key."""

    def __init__(self, reason: IceErrorReason) -> None:
        """Keep the reason; never the line, which may hold a password."""
        super().__init__(reason)
        self.reason: IceErrorReason = reason

    @property
    def field(self) -> str:
        """Return the option the resident has to change."""
        if self.reason in ("turn_secret_required", "weak_turn_secret"):
            return CONF_TURN_SECRET
        return CONF_ICE_SERVERS


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server, its URL in canonical form."""

    url: str
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    @property
    def is_turn(self) -> bool:
        """Return whether it is a TURN server (turn: or turns:)."""
        return self.url.startswith("turn")


def _check_host(host: str) -> None:
    if host.startswith("["):
        # An IP-literal: IPv6 only, without a zone (RFC 3986 has none).
        inner = host[1:-1]
        if "%" in inner:
            raise ValueError(host)
        ipaddress.IPv6Address(inner)
    elif _IPV4_LIKE.match(host):
        ipaddress.IPv4Address(host)
    elif not _DNS_NAME.match(host):
        raise ValueError(host)


def _parse_url(text: str) -> str:
    """Return the URL in canonical form (lower-case scheme and transport)."""
    if not text.isascii() or (match := _URI.match(text)) is None:
        raise IceServerError("invalid_ice_server")
    scheme, host, port, transport = match.group("scheme", "host", "port", "transport")
    scheme = scheme.lower()
    try:
        _check_host(host)
    except ValueError:
        raise IceServerError("invalid_ice_server") from None
    if (port is not None and not 1 <= int(port) <= 65535) or (
        transport is not None and not scheme.startswith("turn")
    ):
        raise IceServerError("invalid_ice_server")
    url = f"{scheme}:{host}"
    if port is not None:
        url += f":{port}"
    if transport is not None:
        url += f"?transport={transport.lower()}"
    return url


def quoted(value: str) -> str:
    """Return an RFC 8288 quoted-string; ValueError for what it cannot carry."""
    if len(value) > CREDENTIAL_MAX_LEN or not _VCHARS.match(value):
        raise ValueError("not printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_ice_server(text: str) -> IceServer:
    """Read `URL` or `URL USER PASSWORD`, as the resident writes it.

    Raise IceServerError when it is neither, the URL is not a STUN or TURN
    URL a header can carry, or a STUN server is given credentials.
    """
    match text.split():
        case [url]:
            return IceServer(_parse_url(url))
        case [url, username, credential]:
            server = IceServer(_parse_url(url), username, credential)
            if not server.is_turn:
                raise IceServerError("invalid_ice_server")
            try:
                quoted(username)
                quoted(credential)
            except ValueError:
                raise IceServerError("invalid_ice_credential") from None
            return server
    raise IceServerError("invalid_ice_server")


def turn_credentials(secret: str, expires: datetime) -> tuple[str, str]:
    """Return a TURN user name and password valid until `expires`.

    The TURN REST API scheme: the user name starts with the expiry in Unix
    seconds, the password is base64(HMAC-SHA1(secret, user name)).
    """
    username = f"{int(expires.timestamp())}:{TURN_USER}"
    digest = hmac.new(secret.encode(), username.encode(), "sha1").digest()
    return username, base64.b64encode(digest).decode("ascii")


def _link(url: str, credentials: tuple[str, str] | None) -> str:
    value = f'<{url}>; rel="ice-server"'
    if credentials is not None:
        username, credential = credentials
        value += (
            f"; username={quoted(username)}; credential={quoted(credential)}"
            '; credential-type="password"'
        )
    return value


def _usable(server: IceServer, secret: str, static_accepted: bool) -> IceServer:
    """Return the server if it can be handed out under the options."""
    if server.credential is not None and not static_accepted:
        raise IceServerError("ice_static_credentials_not_accepted")
    if server.is_turn and server.credential is None:
        if not secret:
            raise IceServerError("turn_secret_required")
        if len(secret) < TURN_SECRET_MIN_LEN:
            raise IceServerError("weak_turn_secret")
    return server


@dataclass(frozen=True, slots=True)
class IceConfig:
    """The ICE servers of the options that can be handed to the city."""

    servers: tuple[IceServer, ...] = ()
    turn_secret: str = field(default="", repr=False)
    # (line number, reason) of each server left out.
    skipped: tuple[tuple[int, IceErrorReason], ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> IceConfig:
        """Read the options; a server that cannot be handed out is skipped."""
        secret = str(options.get(CONF_TURN_SECRET) or "").strip()
        accepted = bool(options.get(CONF_ICE_STATIC_CREDENTIALS_ACCEPTED, False))
        servers: list[IceServer] = []
        skipped: list[tuple[int, IceErrorReason]] = []
        for number, text in enumerate(options.get(CONF_ICE_SERVERS) or (), 1):
            try:
                servers.append(_usable(parse_ice_server(str(text)), secret, accepted))
            except IceServerError as err:
                skipped.append((number, err.reason))
        return cls(tuple(servers), secret, tuple(skipped))

    def links(self, expires: datetime) -> list[str]:
        """Return the `Link` header values for a share that ends at `expires`."""
        links: list[str] = []
        for server in self.servers:
            credentials: tuple[str, str] | None = None
            if server.username is not None and server.credential is not None:
                credentials = (server.username, server.credential)
            elif server.is_turn:
                credentials = turn_credentials(self.turn_secret, expires)
            links.append(_link(server.url, credentials))
        return links


def check_options(options: Mapping[str, Any]) -> None:
    """Raise IceServerError for the first thing the options flow must refuse."""
    secret = str(options.get(CONF_TURN_SECRET) or "").strip()
    if secret and len(secret) < TURN_SECRET_MIN_LEN:
        raise IceServerError("weak_turn_secret")
    if skipped := IceConfig.from_options(options).skipped:
        raise IceServerError(skipped[0][1])
