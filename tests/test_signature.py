"""Tests for Standard Webhooks verification and the seen-id store of rtcc_share."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from hypothesis import given, strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from standardwebhooks import Webhook
from standardwebhooks.webhooks import hmac_data

from custom_components.rtcc_share.const import (
    DOMAIN,
    SEEN_IDS_MAX,
    SEEN_IDS_SAVE_DELAY_S,
    TIMESTAMP_TOLERANCE_S,
)
from custom_components.rtcc_share.signature import (
    AuthenticationError,
    InvalidKeyError,
    SeenIdStore,
    SeenIdStoreFullError,
    VerifiedMessage,
    Verifier,
    generate_secret,
    parse_key,
)

from .common import SMALL_ORDER_POINTS, ZERO_PUBLIC_KEY, forge_for_zero_key

NOW = 1_604_524_443  # 2020-11-04T21:14:03Z
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"type":"activation.ended","activation_id":"JPD-1","operator":{"id":"op-17"}}'

SECRET_BYTES = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
# The city's Ed25519 key in the contract's format: whsk_ + base64 of the seed.
CITY_PRIVATE_KEY = "whsk_" + base64.b64encode(bytes(range(100, 132))).decode()
CITY_SIGNER = Ed25519PrivateKey.from_private_bytes(
    base64.b64decode(CITY_PRIVATE_KEY.removeprefix("whsk_"))
)
PUBLIC_KEY = (
    "whpk_" + base64.b64encode(CITY_SIGNER.public_key().public_bytes_raw()).decode()
)

ENTRY_ID = "01JRTCCENTRY"
STORAGE_KEY = f"{DOMAIN}.{ENTRY_ID}.seen_ids"


def b64(data: bytes) -> str:
    """Return standard base64 text."""
    return base64.b64encode(data).decode()


def v1_signature(
    msg_id: str = MSG_ID, timestamp: int = NOW, body: bytes = BODY, secret: str = SECRET
) -> str:
    """Return a `v1` header entry made by the official standardwebhooks package."""
    return Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()
    )


def v1a_signature(
    msg_id: str = MSG_ID,
    timestamp: int | str = NOW,
    body: bytes = BODY,
    signer: Ed25519PrivateKey = CITY_SIGNER,
) -> str:
    """Return a `v1a` header entry: Ed25519 over the signed content."""
    return "v1a," + b64(signer.sign(f"{msg_id}.{timestamp}.".encode() + body))


def headers(
    signature: str, msg_id: str = MSG_ID, timestamp: int | str = NOW
) -> dict[str, str]:
    """Return the three Standard Webhooks headers."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def auth_error(
    verifier: Verifier, hdrs: Any, body: bytes = BODY, now: float = NOW
) -> str:
    """Return the code of the AuthenticationError the request fails with."""
    with pytest.raises(AuthenticationError) as err:
        verifier.verify(hdrs, body, now)
    assert str(err.value) == err.value.code
    return err.value.code


@pytest.fixture(name="v1")
def v1_fixture() -> Verifier:
    """Return a verifier for the shared secret."""
    return Verifier.from_key(SECRET)


@pytest.fixture(name="v1a")
def v1a_fixture() -> Verifier:
    """Return a verifier for the city's public key."""
    return Verifier.from_key(PUBLIC_KEY)


# Keys


@pytest.mark.parametrize(
    ("key", "version", "raw"),
    [
        (SECRET, "v1", SECRET_BYTES),
        ("whsec_" + b64(b"a" * 24), "v1", b"a" * 24),
        ("whsec_" + b64(b"b" * 64), "v1", b"b" * 64),
        (PUBLIC_KEY, "v1a", CITY_SIGNER.public_key().public_bytes_raw()),
    ],
)
def test_parse_key(key: str, version: str, raw: bytes) -> None:
    """Valid keys give their signature version and raw bytes."""
    assert parse_key(key) == (version, raw)
    assert Verifier.from_key(key).version == version


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "invalid_prefix"),
        (b64(SECRET_BYTES), "invalid_prefix"),
        ("WHSEC_" + b64(SECRET_BYTES), "invalid_prefix"),
        (" whsec_" + b64(SECRET_BYTES), "invalid_prefix"),
        # The city's private key must never be configured in a home.
        (CITY_PRIVATE_KEY, "invalid_prefix"),
        ("whsec_!!!!" + b64(SECRET_BYTES), "invalid_base64"),
        ("whsec_" + b64(SECRET_BYTES).rstrip("="), "invalid_base64"),
        ("whsec_" + b64(SECRET_BYTES) + " ", "invalid_base64"),
        ("whsec_" + b64(SECRET_BYTES) + "\n", "invalid_base64"),
        (
            "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
            "invalid_base64",
        ),
        ("whsec_é" + b64(SECRET_BYTES), "invalid_base64"),
        ("whpk_" + b64(bytes(32))[:-1], "invalid_base64"),
        ("whsec_", "invalid_length"),
        ("whsec_" + b64(bytes(23)), "invalid_length"),
        ("whsec_" + b64(bytes(65)), "invalid_length"),
        ("whpk_", "invalid_length"),
        ("whpk_" + b64(bytes(31)), "invalid_length"),
        ("whpk_" + b64(bytes(33)), "invalid_length"),
        ("whpk_" + b64(bytes(64)), "invalid_length"),
    ],
)
def test_parse_key_errors(key: str, reason: str) -> None:
    """Malformed keys are refused with a reason the config flow translates."""
    with pytest.raises(InvalidKeyError) as err:
        parse_key(key)
    assert err.value.reason == reason
    assert isinstance(err.value, ValueError)
    with pytest.raises(InvalidKeyError):
        Verifier.from_key(key)


def test_standard_base64_alphabet() -> None:
    """Secrets containing '+' and '/' decode (standard, not URL-safe, base64)."""
    raw = bytes([0xFB, 0xFF] * 12)
    assert "+" in b64(raw)
    assert "/" in b64(raw)
    assert parse_key("whsec_" + b64(raw)) == ("v1", raw)


def test_generate_secret() -> None:
    """Generated secrets are valid, 32 random bytes, and work with standardwebhooks."""
    secret = generate_secret()
    assert secret.startswith("whsec_")
    version, raw = parse_key(secret)
    assert (version, len(raw)) == ("v1", 32)
    assert generate_secret() != secret
    verifier = Verifier.from_key(secret)
    assert verifier.verify(
        headers(v1_signature(secret=secret)), BODY, NOW
    ) == VerifiedMessage(MSG_ID, NOW)


# Valid signatures


def test_v1(v1: Verifier) -> None:
    """A request signed by the standardwebhooks package verifies."""
    message = v1.verify(headers(v1_signature()), BODY, NOW)
    assert message == VerifiedMessage(msg_id=MSG_ID, timestamp=NOW)


def test_v1a(v1a: Verifier) -> None:
    """A request signed with the city's Ed25519 key verifies."""
    message = v1a.verify(headers(v1a_signature()), BODY, NOW)
    assert message == VerifiedMessage(msg_id=MSG_ID, timestamp=NOW)


def test_headers_case_insensitive(v1: Verifier) -> None:
    """Header names match in any case, in a plain dict or aiohttp's proxy."""
    mixed = {
        "Webhook-Id": MSG_ID,
        "WEBHOOK-TIMESTAMP": str(NOW),
        "webhook-Signature": v1_signature(),
        "Content-Type": "application/json",
    }
    assert v1.verify(mixed, BODY, NOW).msg_id == MSG_ID
    proxy = CIMultiDictProxy(CIMultiDict(mixed))
    assert v1.verify(proxy, BODY, NOW).msg_id == MSG_ID


def test_longest_id(v1: Verifier) -> None:
    """A 128 character id of every allowed character class verifies."""
    msg_id = ("aZ09._:-" * 16)[:128]
    assert v1.verify(headers(v1_signature(msg_id), msg_id), BODY, NOW).msg_id == msg_id


def test_several_signatures_one_valid(v1: Verifier, v1a: Verifier) -> None:
    """One valid signature of the key's version among others passes."""
    other = v1_signature(secret="whsec_" + b64(bytes(32)))
    garbage = [
        "v2,AAAA",
        "nocomma",
        "v1",
        "v1,",
        "v1,!!!!",
        "v1,AAAA",
        other,
        v1a_signature(signer=Ed25519PrivateKey.generate()),
        "v1a," + b64(bytes(63)),
        "v1a,?",
    ]
    for valid, verifier in ((v1_signature(), v1), (v1a_signature(), v1a)):
        for signature in (
            " ".join([*garbage, valid]),
            " ".join([valid, *garbage]),
            f"  {valid}  ",
            f"v1a,AAAA\t{valid}",
        ):
            assert verifier.verify(headers(signature), BODY, NOW).msg_id == MSG_ID


def test_non_utf8_body(v1: Verifier, v1a: Verifier) -> None:
    """Signatures cover raw bytes; a non-UTF-8 body verifies."""
    body = b"\xff\xfe{\x00"
    content = f"{MSG_ID}.{NOW}.".encode() + body
    signature = "v1," + b64(hmac_data(SECRET_BYTES, content))
    assert v1.verify(headers(signature), body, NOW).msg_id == MSG_ID
    assert v1a.verify(headers(v1a_signature(body=body)), body, NOW).msg_id == MSG_ID


# Invalid signatures


@pytest.mark.parametrize(
    "signature",
    [
        "v2," + b64(bytes(32)),
        v1a_signature(),
        "v1",
        "v1,",
        "nocomma",
        "v1,not-base64!",
        "v1," + v1_signature().removeprefix("v1,").rstrip("="),
        "v1," + b64(bytes(32)),
        "v1," + b64(bytes(31)),
        "V1," + v1_signature().removeprefix("v1,"),
        " ",
        "v1;" + v1_signature().removeprefix("v1,"),
    ],
)
def test_v1_invalid_signatures(v1: Verifier, signature: str) -> None:
    """No signature of version `v1` verifying: invalid_signature."""
    assert auth_error(v1, headers(signature)) == "invalid_signature"


@pytest.mark.parametrize(
    "signature",
    [
        v1_signature(),
        "v1a," + b64(bytes(64)),
        "v1a," + v1a_signature().removeprefix("v1a,")[:-4],
        "v1a," + b64(CITY_SIGNER.sign(BODY)),
        v1a_signature(signer=Ed25519PrivateKey.generate()),
        "v1a",
    ],
)
def test_v1a_invalid_signatures(v1a: Verifier, signature: str) -> None:
    """No signature of version `v1a` verifying: invalid_signature."""
    assert auth_error(v1a, headers(signature)) == "invalid_signature"


def test_forged_signature_with_small_order_key_refused() -> None:
    """An entry pinned to the all-zero key refuses a small-order-R, S = 0 forgery.

    OpenSSL's verification accepts the forgery (forge_for_zero_key checks it).
    """
    forged = forge_for_zero_key(BODY, NOW)
    verifier = Verifier.from_key(ZERO_PUBLIC_KEY)
    assert auth_error(verifier, forged) == "invalid_signature"


def test_small_order_r_or_non_canonical_s_refused(v1a: Verifier) -> None:
    """A signature with a small-order R, or S not reduced mod L, is refused."""
    content = f"{MSG_ID}.{NOW}.".encode() + BODY
    raw = CITY_SIGNER.sign(content)
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(raw[32:], "little") + order
    for forged in (
        raw[:32] + s.to_bytes(32, "little"),
        *(point + raw[32:] for point in SMALL_ORDER_POINTS),
        *(point + bytes(32) for point in SMALL_ORDER_POINTS),
    ):
        assert auth_error(v1a, headers("v1a," + b64(forged))) == "invalid_signature"
    assert v1a.verify(headers("v1a," + b64(raw)), BODY, NOW).msg_id == MSG_ID


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        (MSG_ID + "x", NOW, BODY),
        (MSG_ID, NOW + 1, BODY),
        (MSG_ID, NOW, BODY + b" "),
        (MSG_ID, NOW, b""),
    ],
)
def test_tampered(
    v1: Verifier, v1a: Verifier, msg_id: str, timestamp: int, body: bytes
) -> None:
    """Changing the id, timestamp or body invalidates the signatures."""
    for verifier, signature in ((v1, v1_signature()), (v1a, v1a_signature())):
        tampered = headers(signature, msg_id, timestamp)
        assert auth_error(verifier, tampered, body) == "invalid_signature"


# Malformed headers


@pytest.mark.parametrize(
    "name", ["webhook-id", "webhook-timestamp", "webhook-signature"]
)
def test_missing_header(v1: Verifier, name: str) -> None:
    """A missing or empty header: missing_signature_headers."""
    complete = headers(v1_signature())
    missing = {key: value for key, value in complete.items() if key != name}
    assert auth_error(v1, missing) == "missing_signature_headers"
    assert auth_error(v1, complete | {name: ""}) == "missing_signature_headers"


def test_no_headers(v1: Verifier) -> None:
    """No headers at all: missing_signature_headers."""
    assert auth_error(v1, {}) == "missing_signature_headers"


@pytest.mark.parametrize(
    "msg_id",
    ["a" * 129, "msg id", "msg/1", "msg\n", "msg\x00", "msgé", "msg_١", "msg,1"],
)
def test_invalid_id(v1: Verifier, msg_id: str) -> None:
    """An id outside the contract's pattern: invalid_signature."""
    signature = "v1," + b64(hmac_data(SECRET_BYTES, f"{msg_id}.{NOW}.".encode() + BODY))
    assert auth_error(v1, headers(signature, msg_id)) == "invalid_signature"


@pytest.mark.parametrize(
    "timestamp",
    [
        "1.6e9",
        "1e20",
        "NaN",
        "inf",
        "+1604524443",
        "-1604524443",
        " 1604524443",
        "1604524443 ",
        "1604524443.0",
        "1_604_524_443",
        "0x5FA31E9B",
        "١٦٠٤٥٢٤٤٤٣",
        "１６０４５２４４４３",
        "0001604524443",
        "9" * 13,
        "9" * 400,
    ],
)
def test_invalid_timestamp(v1: Verifier, v1a: Verifier, timestamp: str) -> None:
    """A timestamp that is not 1-12 plain ASCII digits: invalid_signature.

    Each request is validly signed over its timestamp text, so only the format
    check refuses it.
    """
    content = f"{MSG_ID}.{timestamp}.".encode() + BODY
    signature = "v1," + b64(hmac_data(SECRET_BYTES, content))
    assert (
        auth_error(v1, headers(signature, timestamp=timestamp)) == "invalid_signature"
    )
    signature = v1a_signature(timestamp=timestamp)
    assert (
        auth_error(v1a, headers(signature, timestamp=timestamp)) == "invalid_signature"
    )


def test_zero_padded_timestamp(v1a: Verifier) -> None:
    """Twelve digits with leading zeros still are an integer; the text is signed."""
    padded = f"{NOW:012d}"
    assert len(padded) == 12
    message = v1a.verify(
        headers(v1a_signature(timestamp=padded), timestamp=padded), BODY, NOW
    )
    assert message == VerifiedMessage(MSG_ID, NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"webhook-signature": v1_signature() + " v1,é"},
        {"webhook-signature": "é " + v1_signature()},
        {"webhook-signature": v1_signature() + "\u00a0"},
        {"webhook-id": "msg\u2028"},
        {"webhook-timestamp": "\udcff"},
    ],
)
def test_non_ascii_header_values(v1: Verifier, changes: dict[str, str]) -> None:
    """Non-ASCII header values are refused, even beside a valid signature."""
    assert auth_error(v1, headers(v1_signature()) | changes) == "invalid_signature"


# Timestamp tolerance


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (-TIMESTAMP_TOLERANCE_S - 1, "stale_timestamp"),
        (-TIMESTAMP_TOLERANCE_S, None),
        (0, None),
        (TIMESTAMP_TOLERANCE_S, None),
        (TIMESTAMP_TOLERANCE_S + 1, "stale_timestamp"),
        (10**11, "stale_timestamp"),
        (-NOW, "stale_timestamp"),
    ],
)
def test_timestamp_tolerance(
    v1: Verifier, v1a: Verifier, offset: int, code: str | None
) -> None:
    """Timestamps up to 300 s from the clock, either way, are accepted."""
    timestamp = NOW + offset
    for verifier, signature in (
        (v1, v1_signature(timestamp=timestamp)),
        (v1a, v1a_signature(timestamp=timestamp)),
    ):
        request = headers(signature, timestamp=timestamp)
        if code is None:
            assert verifier.verify(request, BODY, NOW).timestamp == timestamp
        else:
            assert auth_error(verifier, request) == code


@pytest.mark.parametrize("now", [NOW + 300.5, NOW - 300.001])
def test_timestamp_tolerance_fractional_now(v1: Verifier, now: float) -> None:
    """The clock's fractions count: 300.5 s away is stale."""
    assert auth_error(v1, headers(v1_signature()), now=now) == "stale_timestamp"


def test_stale_before_signature(v1: Verifier) -> None:
    """A stale request is reported stale whatever its signature."""
    request = headers("v1,AAAA", timestamp=NOW - 1000)
    assert auth_error(v1, request) == "stale_timestamp"


# Fuzzing

_header_names = st.sampled_from(
    ["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "webhook-signature"]
) | st.text(max_size=20)
_signature_text = st.lists(
    st.sampled_from(["v1", "v1a", "v2", ",", " ", "AAAA", "=", "é", "\x00"])
    | st.text(max_size=8),
    max_size=12,
).map("".join)
_header_values = (
    st.text()
    | st.from_regex(r"[0-9]{1,13}", fullmatch=True)
    | st.from_regex(r"[A-Za-z0-9._:-]{1,130}", fullmatch=True)
    | _signature_text
)


@given(
    hdrs=st.dictionaries(_header_names, _header_values, max_size=6),
    body=st.binary(max_size=64),
    now=st.floats(min_value=-1e15, max_value=1e15),
)
def test_fuzz_only_authentication_errors(
    hdrs: dict[str, str], body: bytes, now: float
) -> None:
    """Arbitrary headers and bodies never raise anything but AuthenticationError."""
    for verifier in (Verifier.from_key(SECRET), Verifier.from_key(PUBLIC_KEY)):
        with pytest.raises(AuthenticationError):
            verifier.verify(hdrs, body, now)


@given(
    msg_id=st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True),
    offset=st.integers(
        min_value=-TIMESTAMP_TOLERANCE_S, max_value=TIMESTAMP_TOLERANCE_S
    ),
    signature=_signature_text,
    body=st.binary(max_size=64),
)
def test_fuzz_signature_field(
    msg_id: str, offset: int, signature: str, body: bytes
) -> None:
    """Well-formed ids and fresh timestamps with arbitrary signature text fail cleanly."""
    request = headers(signature, msg_id, NOW + offset)
    for verifier in (Verifier.from_key(SECRET), Verifier.from_key(PUBLIC_KEY)):
        with pytest.raises(AuthenticationError):
            verifier.verify(request, body, NOW)


# Seen-id store


def message(msg_id: str = MSG_ID, timestamp: int = NOW) -> VerifiedMessage:
    """Return a verified message."""
    return VerifiedMessage(msg_id=msg_id, timestamp=timestamp)


async def new_store(hass: HomeAssistant) -> SeenIdStore:
    """Return a loaded seen-id store of the test entry."""
    store = SeenIdStore(hass, ENTRY_ID)
    await store.async_load()
    return store


async def advance(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Move the clock and run what became due."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


@pytest.fixture(name="frozen")
def frozen_fixture(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Freeze the clock at NOW."""
    freezer.move_to(datetime.fromtimestamp(NOW, UTC))
    return freezer


async def test_replay_refused(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A second message with a seen id is refused."""
    store = await new_store(hass)
    assert len(store) == 0
    assert store.check_and_add(message(), NOW)
    assert not store.check_and_add(message(), NOW)
    assert not store.check_and_add(message(timestamp=NOW + 5), NOW + 5)
    assert store.check_and_add(message("other"), NOW)
    assert len(store) == 2


async def test_expiry(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """An id is kept until its timestamp can no longer pass, then dropped."""
    store = await new_store(hass)
    assert store.check_and_add(message(), NOW)
    # The timestamp check still accepts NOW at NOW + 300: the id is kept.
    assert not store.check_and_add(message(), NOW + TIMESTAMP_TOLERANCE_S)
    assert store.check_and_add(message("later"), NOW + TIMESTAMP_TOLERANCE_S + 1)
    assert len(store) == 1
    assert store.check_and_add(message(), NOW + TIMESTAMP_TOLERANCE_S + 1)


@pytest.mark.parametrize(
    ("timestamp", "kept_until"),
    [
        # Sender ahead of HA's clock: kept until its timestamp is stale.
        (NOW + 200, NOW + 200 + TIMESTAMP_TOLERANCE_S),
        # Sender behind: kept for a full window from now.
        (NOW - 200, NOW + TIMESTAMP_TOLERANCE_S),
    ],
)
async def test_expiry_from_later_of_now_and_timestamp(
    hass: HomeAssistant, hass_storage: dict[str, Any], timestamp: int, kept_until: int
) -> None:
    """An id is kept until max(now, timestamp) + tolerance."""
    store = await new_store(hass)
    assert store.check_and_add(message(timestamp=timestamp), NOW)
    assert not store.check_and_add(message(timestamp=timestamp), kept_until)
    assert store.check_and_add(message(timestamp=timestamp), kept_until + 0.001)


async def test_prunes_in_expiry_order(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Pruning drops exactly the expired ids, whatever the order they came in."""
    store = await new_store(hass)
    for index, timestamp in enumerate((NOW + 250, NOW, NOW + 100, NOW + 50)):
        assert store.check_and_add(message(f"id{index}", timestamp), NOW)
    assert store.check_and_add(message("probe"), NOW + 360)
    # NOW + 300 (id1) and NOW + 350 (id3) expired; id2 and id0 are kept.
    assert len(store) == 3
    assert not store.check_and_add(message("id2", NOW + 100), NOW + 360)
    assert not store.check_and_add(message("id0", NOW + 250), NOW + 360)
    assert store.check_and_add(message("id1"), NOW + 360)


async def test_persisted_across_instances(
    hass: HomeAssistant, hass_storage: dict[str, Any], frozen: FrozenDateTimeFactory
) -> None:
    """Ids are saved after a short delay and refused by a new instance."""
    store = await new_store(hass)
    assert store.check_and_add(message(), NOW)
    assert STORAGE_KEY not in hass_storage
    await advance(hass, frozen, SEEN_IDS_SAVE_DELAY_S)
    assert hass_storage[STORAGE_KEY]["version"] == 1
    assert hass_storage[STORAGE_KEY]["data"] == [[MSG_ID, NOW + TIMESTAMP_TOLERANCE_S]]

    restarted = await new_store(hass)
    assert len(restarted) == 1
    assert not restarted.check_and_add(message(), NOW + 1)


async def test_save_not_postponed_by_traffic(
    hass: HomeAssistant, hass_storage: dict[str, Any], frozen: FrozenDateTimeFactory
) -> None:
    """Steady traffic does not postpone the save: it follows the first new id."""
    store = await new_store(hass)
    for index in range(3):
        assert store.check_and_add(message(f"id{index}"), NOW + index * 0.4)
        frozen.tick(timedelta(seconds=0.4))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert [row[0] for row in hass_storage[STORAGE_KEY]["data"]] == [
        "id0",
        "id1",
        "id2",
    ]

    # A later id schedules the next save.
    assert store.check_and_add(message("id3"), NOW + 2)
    await advance(hass, frozen, SEEN_IDS_SAVE_DELAY_S)
    assert len(hass_storage[STORAGE_KEY]["data"]) == 4


async def test_load_drops_expired(
    hass: HomeAssistant, hass_storage: dict[str, Any], frozen: FrozenDateTimeFactory
) -> None:
    """Loading forgets ids whose timestamps can no longer pass."""
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": [["old", NOW - 1], ["edge", NOW], ["live", NOW + 120.5]],
    }
    store = await new_store(hass)
    assert len(store) == 2
    assert store.check_and_add(message("old"), NOW)
    assert not store.check_and_add(message("edge"), NOW)
    assert not store.check_and_add(message("live"), NOW)
    # Loaded ids expire like new ones.
    assert store.check_and_add(message("probe"), NOW + 121)
    assert store.check_and_add(message("live"), NOW + 121)


async def test_load_empty(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """Without stored data the store starts empty."""
    store = await new_store(hass)
    assert len(store) == 0


async def test_cap(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """When full of live ids, new messages are refused rather than ids forgotten."""
    store = await new_store(hass)
    for index in range(SEEN_IDS_MAX):
        assert store.check_and_add(message(f"id{index}"), NOW)
    with pytest.raises(SeenIdStoreFullError):
        store.check_and_add(message("one-too-many"), NOW + 1)
    assert len(store) == SEEN_IDS_MAX
    # A replay is still reported as such while full.
    assert not store.check_and_add(message("id0"), NOW + 1)
    # Once the ids expire there is room again.
    assert store.check_and_add(message("one-too-many"), NOW + TIMESTAMP_TOLERANCE_S + 1)
    assert len(store) == 1


async def test_flush(
    hass: HomeAssistant, hass_storage: dict[str, Any], frozen: FrozenDateTimeFactory
) -> None:
    """A flush writes a pending save at once, and nothing when none is pending."""
    store = await new_store(hass)
    await store.async_flush()
    assert STORAGE_KEY not in hass_storage
    assert store.check_and_add(message(), NOW)
    await store.async_flush()
    assert hass_storage[STORAGE_KEY]["data"] == [[MSG_ID, NOW + TIMESTAMP_TOLERANCE_S]]
    # The delayed save was replaced by the flush, and nothing is pending.
    hass_storage.pop(STORAGE_KEY)
    await advance(hass, frozen, SEEN_IDS_SAVE_DELAY_S)
    await store.async_flush()
    assert STORAGE_KEY not in hass_storage


async def test_remove(
    hass: HomeAssistant, hass_storage: dict[str, Any], frozen: FrozenDateTimeFactory
) -> None:
    """Removing deletes the stored ids."""
    store = await new_store(hass)
    assert store.check_and_add(message(), NOW)
    await advance(hass, frozen, SEEN_IDS_SAVE_DELAY_S)
    assert STORAGE_KEY in hass_storage
    await store.async_remove()
    assert STORAGE_KEY not in hass_storage
    assert len(await new_store(hass)) == 0
