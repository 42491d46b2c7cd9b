"""ICE servers for the city's WebRTC clients: the URI grammar, quoting, TURN credentials.

Pure: no Home Assistant. Every `Link` value is read back with a strict RFC
8288 parser, so a value that would name an extra server or cut a password
fails here by what the city's client would see.
"""

import base64
from datetime import UTC, datetime
import hashlib
import hmac
import re
from typing import Any

import pytest

from custom_components.rtcc_share.const import (
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_TURN_SECRET,
    DEFAULT_OPTIONS,
)
from custom_components.rtcc_share.live.ice import (
    ICE_SCHEMES,
    IceConfig,
    IceServer,
    IceServerError,
    check_options,
    parse_ice_server,
    quoted,
    turn_credentials,
)

EXPIRES = datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
SECRET = "0123456789abcdef0123456789abcdef"  # 32 characters, the least allowed

# RFC 8288 / RFC 9110: one link, `<URI>` then `; name=token` or quoted-string.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})")
_TARGET = re.compile(r"<([^<>\s]*)>")


def parse_link(value: str) -> tuple[str, dict[str, str]]:
    """Read one `Link` value as a strict client would; AssertionError otherwise."""
    target = _TARGET.match(value)
    assert target, value
    params: dict[str, str] = {}
    position = target.end()
    while position < len(value):
        param = _PARAM.match(value, position)
        assert param, f"not a parameter at {position}: {value}"
        name, raw = param.groups()
        assert name not in params, f"{name} twice: {value}"
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name] = raw
        position = param.end()
    return target.group(1), params


def options(*lines: str, **changes: Any) -> dict[str, Any]:
    """The resident's options with these ICE server lines."""
    return {**DEFAULT_OPTIONS, CONF_ICE_SERVERS: list(lines), **changes}


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("stun:stun.example.org", "stun:stun.example.org"),
        (" stun:stun.example.org:3478 ", "stun:stun.example.org:3478"),
        ("stuns:stun.example.org:5349", "stuns:stun.example.org:5349"),
        ("STUN:Stun.Example.org:3478", "stun:Stun.Example.org:3478"),
        ("stun:192.0.2.1:3478", "stun:192.0.2.1:3478"),
        ("turn:[2001:db8::1]:3478", "turn:[2001:db8::1]:3478"),
        ("turn:turn.example.org?transport=udp", "turn:turn.example.org?transport=udp"),
        (
            "TURNS:xn--bcher-kva.example:443?Transport=TCP",
            "turns:xn--bcher-kva.example:443?transport=tcp",
        ),
        ("turn:t1.example.org:1", "turn:t1.example.org:1"),
        (
            "turn:t.example.org:65535?transport=tcp",
            "turn:t.example.org:65535?transport=tcp",
        ),
        ("stun:" + ".".join(["a" * 63] * 3), "stun:" + ".".join(["a" * 63] * 3)),
    ],
)
def test_stun_and_turn_urls_are_read_in_canonical_form(text: str, url: str) -> None:
    """RFC 7064/7065 URLs with a DNS name or an IP address; scheme in lower case."""
    server = parse_ice_server(text)
    assert server.url == url
    assert server.url.partition(":")[0] in ICE_SCHEMES
    assert (server.username, server.credential) == (None, None)


@pytest.mark.parametrize(
    "text",
    [
        # What the review sent: a header naming a second server.
        'stun:a.example.org>; rel="ice-server", <turn:evil.example.org',
        "stun:a.example.org>,<turn:evil.example.org",
        "stun:a.example.org;rel=x",
        'stun:a"b.example.org',
        "stun:a,b.example.org",
        "stun:a.example.org>",
        # Not STUN or TURN, or not this grammar.
        "https://cloud.example.org",
        "stun://stun.example.org",
        "stun:user@stun.example.org",
        "turn:t.example.org:3478/path",
        "stun:",
        "stun::3478",
        "stun:s.example.org:",
        "stun:s.example.org:0",
        "stun:s.example.org:65536",
        "stun:s.example.org:123456",
        "stun:s.example.org?transport=udp",
        "turn:t.example.org?transport=sctp",
        "turn:t.example.org?transport=udp&x=1",
        "turn:t.example.org?transport=",
        # Hosts: IP literals, IPv4, DNS names.
        "turn:[fe80::1%eth0]",
        "turn:[fe80::1%25eth0]",
        "turn:[v1.fe80::1]",
        "turn:[::1",
        "turn:[192.0.2.1]",
        "turn:999.1.1.1",
        "turn:01.2.3.4",
        "turn:1.2.3",
        "turn:-bad.example.org",
        "turn:bad-.example.org",
        "turn:a..b.example.org",
        "turn:example.org.",
        "turn:under_score.example.org",
        "turn:" + "a" * 64 + ".example.org",
        "stun:" + ".".join(["a" * 63] * 4),
        # Non-ASCII: IDNs are written as A-labels; a long s must not pass for `s`.
        "stun:bücher.example",
        "ſtun:stun.example.org",
        "stun:stun.example.org\u202e",
        # Nothing, or too much.
        "",
        "turn:t.example.org city",
        "turn:t.example.org city s3cret extra",
    ],
)
def test_urls_a_header_cannot_carry_are_refused(text: str) -> None:
    """Anything outside the grammar is refused, never handed out."""
    with pytest.raises(IceServerError) as err:
        parse_ice_server(text)
    assert err.value.reason == "invalid_ice_server"
    assert err.value.field == CONF_ICE_SERVERS
    # The error never carries the line (it may hold a password).
    assert str(err.value) == "invalid_ice_server"


def test_only_turn_takes_credentials() -> None:
    """A user and password are read for TURN; a STUN server with them is refused."""
    server = parse_ice_server("turns:t.example.org:5349 city s3cret")
    assert (server.url, server.username, server.credential) == (
        "turns:t.example.org:5349",
        "city",
        "s3cret",
    )
    assert server.is_turn
    assert "s3cret" not in repr(server)
    with pytest.raises(IceServerError, match="invalid_ice_server"):
        parse_ice_server("stun:s.example.org city s3cret")


@pytest.mark.parametrize(
    "credential",
    ["pässword", "pass\x01word", "pass\x7fword", "pass\u202eword", "x" * 513],
)
def test_credentials_a_quoted_string_cannot_carry_are_refused(credential: str) -> None:
    """Control characters, non-ASCII and overlong values: refused, not mangled."""
    for line in (
        f"turn:t.example.org city {credential}",
        f"turn:t.example.org {credential} s3cret",
    ):
        with pytest.raises(IceServerError) as err:
            parse_ice_server(line)
        assert err.value.reason == "invalid_ice_credential"
        assert credential not in str(err.value)


def test_quoted_strings_escape_backslash_and_quote() -> None:
    """RFC 8288 quoted-string: backslash and quote escaped, the rest of VCHAR kept."""
    assert quoted("s3cret") == '"s3cret"'
    assert quoted('pa"ss') == r'"pa\"ss"'
    assert quoted("back\\slash\\") == r'"back\\slash\\"'
    assert quoted('a;b,c>d<e="f"') == r'"a;b,c>d<e=\"f\""'
    printable = "".join(chr(code) for code in range(0x21, 0x7F))
    assert parse_link(f"<turn:t>; credential={quoted(printable)}")[1] == {
        "credential": printable
    }
    for value in ("", "a b", "a\tb", "a\r\nb", "é", "a\x00"):
        with pytest.raises(ValueError, match="printable"):
            quoted(value)


def test_turn_credentials_follow_the_turn_rest_api() -> None:
    """As coturn's use-auth-secret: `<expiry>:<name>`, base64(HMAC-SHA1(secret, name))."""
    username, credential = turn_credentials(SECRET, EXPIRES)
    assert username == f"{int(EXPIRES.timestamp())}:rtcc_share"
    assert username.startswith("1893456600:")
    digest = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert credential == base64.b64encode(digest).decode()
    # Another share, another expiry: other credentials.
    later = EXPIRES.replace(minute=20)
    assert turn_credentials(SECRET, later)[1] != credential


def test_links_hand_out_each_server_as_one_link() -> None:
    """STUN plain, TURN from the secret (expiring with the share), TURN fixed."""
    config = IceConfig.from_options(
        options(
            "stun:stun.example.org:3478",
            "turn:turn.example.org:3478?transport=udp",
            'turns:fixed.example.org:5349 ci"ty pa\\ss"word;,>',
            **{
                CONF_TURN_SECRET: f"  {SECRET}\n",
                CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True,
            },
        )
    )
    assert config.skipped == ()
    assert SECRET not in repr(config)
    links = config.links(EXPIRES)
    username, credential = turn_credentials(SECRET, EXPIRES)
    assert [parse_link(link) for link in links] == [
        ("stun:stun.example.org:3478", {"rel": "ice-server"}),
        (
            "turn:turn.example.org:3478?transport=udp",
            {
                "rel": "ice-server",
                "username": username,
                "credential": credential,
                "credential-type": "password",
            },
        ),
        (
            "turns:fixed.example.org:5349",
            {
                "rel": "ice-server",
                "username": 'ci"ty',
                "credential": 'pa\\ss"word;,>',
                "credential-type": "password",
            },
        ),
    ]
    assert links[0] == '<stun:stun.example.org:3478>; rel="ice-server"'
    assert links[2] == (
        '<turns:fixed.example.org:5349>; rel="ice-server"; username="ci\\"ty";'
        ' credential="pa\\\\ss\\"word;,>"; credential-type="password"'
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, "ice_static_credentials_not_accepted"),
        ({CONF_TURN_SECRET: SECRET}, "ice_static_credentials_not_accepted"),
    ],
)
def test_static_credentials_only_when_accepted(
    changes: dict[str, Any], reason: str
) -> None:
    """A fixed TURN password is left out unless the resident accepted it."""
    stored = options("stun:s.example.org", "turn:t.example.org city s3cret", **changes)
    config = IceConfig.from_options(stored)
    assert config.servers == (IceServer("stun:s.example.org"),)
    assert config.skipped == ((2, reason),)
    accepted = IceConfig.from_options(
        {**stored, CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True}
    )
    assert accepted.skipped == ()
    assert len(accepted.links(EXPIRES)) == 2


def test_stored_lines_that_cannot_be_handed_out_are_skipped_by_number() -> None:
    """What an older version accepted is skipped, never emitted half broken."""
    config = IceConfig.from_options(
        options(
            "stun:a.example.org>,<turn:evil.example.org",
            "turn:t.example.org city hunter\x01",
            "stun:good.example.org",
            "turn:t.example.org",
            "turn:t.example.org city hunter2",
            **{CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True},
        )
    )
    assert config.links(EXPIRES) == [
        '<stun:good.example.org>; rel="ice-server"',
        '<turn:t.example.org>; rel="ice-server"; username="city";'
        ' credential="hunter2"; credential-type="password"',
    ]
    assert config.skipped == (
        (1, "invalid_ice_server"),
        (2, "invalid_ice_credential"),
        (4, "turn_secret_required"),
    )


def test_turn_without_credentials_needs_a_strong_secret() -> None:
    """No secret, or one short enough to guess from a derived credential: skipped."""
    for secret, reason in (
        ("", "turn_secret_required"),
        (SECRET[1:], "weak_turn_secret"),
    ):
        config = IceConfig.from_options(
            options("turn:t.example.org", **{CONF_TURN_SECRET: secret})
        )
        assert (config.servers, config.skipped) == ((), ((1, reason),))
    assert IceConfig.from_options(
        options("turn:t.example.org", **{CONF_TURN_SECRET: SECRET})
    ).servers == (IceServer("turn:t.example.org"),)


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({CONF_ICE_SERVERS: ["https://x.example.org"]}, "invalid_ice_server", None),
        (
            {CONF_ICE_SERVERS: ["turn:t.example.org city pä"]},
            "invalid_ice_credential",
            None,
        ),
        (
            {CONF_ICE_SERVERS: ["turn:t.example.org city s3cret"]},
            "ice_static_credentials_not_accepted",
            None,
        ),
        (
            {CONF_ICE_SERVERS: ["turn:t.example.org"]},
            "turn_secret_required",
            CONF_TURN_SECRET,
        ),
        # A weak secret is refused even before a TURN server uses it.
        ({CONF_TURN_SECRET: "short"}, "weak_turn_secret", CONF_TURN_SECRET),
    ],
)
def test_options_flow_checks(
    changes: dict[str, Any], reason: str, field: str | None
) -> None:
    """The options flow's check names the reason and the option to change."""
    with pytest.raises(IceServerError) as err:
        check_options({**DEFAULT_OPTIONS, **changes})
    assert (err.value.reason, err.value.field) == (reason, field or CONF_ICE_SERVERS)


def test_options_flow_accepts_what_can_be_handed_out() -> None:
    """Defaults, and every kind of server done right, pass."""
    check_options(DEFAULT_OPTIONS)
    check_options({})
    check_options(
        options(
            "stun:s.example.org",
            "turn:t.example.org",
            "turn:u.example.org city s3cret",
            **{CONF_TURN_SECRET: SECRET, CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True},
        )
    )
