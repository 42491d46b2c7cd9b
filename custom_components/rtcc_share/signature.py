"""Standard Webhooks authentication of city requests, and replay protection.

The signature is checked with the standard library and `cryptography` rather
than by wrapping the `standardwebhooks` package: that package reads the wall
clock itself, accepts float timestamps and re-formats them before signing,
decodes the body as UTF-8, raises unrelated exceptions on malformed headers
and knows no `v1a`; the `v1` check is a few lines of `hmac`.
"""

from abc import ABC, abstractmethod
import base64
from collections.abc import Mapping
from dataclasses import dataclass
import hashlib
import heapq
import hmac
import re
import secrets
import time
from typing import Final, Literal, override

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import (
    DOMAIN,
    ED25519_KEY_BYTES,
    ID_PATTERN,
    PUBLIC_KEY_PREFIX,
    SECRET_GENERATED_BYTES,
    SECRET_MAX_BYTES,
    SECRET_MIN_BYTES,
    SECRET_PREFIX,
    SEEN_IDS_MAX,
    SEEN_IDS_SAVE_DELAY_S,
    TIMESTAMP_TOLERANCE_S,
)

VERSION_HMAC: Final = "v1"
VERSION_ED25519: Final = "v1a"

HEADER_ID: Final = "webhook-id"
HEADER_TIMESTAMP: Final = "webhook-timestamp"
HEADER_SIGNATURE: Final = "webhook-signature"

ED25519_SIGNATURE_BYTES: Final = 64
STORAGE_VERSION: Final = 1

# Edwards25519 (RFC 8032, section 5.1): field prime, curve constant, group order.
_P: Final = 2**255 - 19
_D: Final = -121665 * pow(121666, -1, _P) % _P
_L: Final = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)
# A pasted secret with fewer distinct bytes than this is a pattern, not random.
_SECRET_MIN_DISTINCT_BYTES: Final = 16

_ID_RE: Final = re.compile(ID_PATTERN)
# Explicit ASCII digits: int() would also take "+5", " 5", "1_0" and "٣".
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")

type KeyErrorReason = Literal[
    "invalid_prefix",
    "invalid_base64",
    "invalid_length",
    "invalid_public_key",
    "weak_public_key",
    "weak_secret",
]
type AuthErrorCode = Literal[
    "missing_signature_headers", "invalid_signature", "stale_timestamp"
]


class InvalidKeyError(ValueError):
    """The configured verification key is malformed."""

    def __init__(self, reason: KeyErrorReason) -> None:
        """Initialize with the reason, which the config flow translates."""
        super().__init__(reason)
        self.reason: KeyErrorReason = reason


class AuthenticationError(Exception):
    """A request failed authentication; `code` is the contract's 401 error."""

    def __init__(self, code: AuthErrorCode) -> None:
        """Initialize with the contract's error code."""
        super().__init__(code)
        self.code: AuthErrorCode = code


class SeenIdStoreFullError(Exception):
    """Too many message ids are live to remember another one.

    Raised rather than forgetting a live id, which would allow its replay.
    """


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """The identity of an authenticated request."""

    msg_id: str
    timestamp: int


def parse_key(key: str) -> tuple[str, bytes]:
    """Return the signature version and raw key bytes of a verification key.

    Raise InvalidKeyError if the key is malformed.
    """
    if key.startswith(SECRET_PREFIX):
        version, encoded = VERSION_HMAC, key.removeprefix(SECRET_PREFIX)
        min_bytes, max_bytes = SECRET_MIN_BYTES, SECRET_MAX_BYTES
    elif key.startswith(PUBLIC_KEY_PREFIX):
        version, encoded = VERSION_ED25519, key.removeprefix(PUBLIC_KEY_PREFIX)
        min_bytes = max_bytes = ED25519_KEY_BYTES
    else:
        raise InvalidKeyError("invalid_prefix")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as err:  # binascii.Error, or non-ASCII text
        raise InvalidKeyError("invalid_base64") from err
    if not min_bytes <= len(raw) <= max_bytes:
        raise InvalidKeyError("invalid_length")
    return version, raw


def _decode_point(encoded: bytes) -> tuple[int, int] | None:
    """Return the affine point of a canonical encoding, or None (RFC 8032 5.1.3)."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if x2 == 0:
        return None if sign else (0, y)
    x = pow(x2, (_P + 3) // 8, _P)
    if x * x % _P != x2:
        x = x * _SQRT_M1 % _P
        if x * x % _P != x2:
            return None
    return (_P - x, y) if x & 1 != sign else (x, y)


def _has_small_order(point: tuple[int, int]) -> bool:
    """Return True if eight times the point is the identity (order 1, 2, 4 or 8)."""
    # Extended coordinates (X, Y, Z, T); doubling per RFC 8032 5.1.4.
    x, y, z = point[0], point[1], 1
    for _ in range(3):
        a, b, c = x * x % _P, y * y % _P, 2 * z * z % _P
        h = (a + b) % _P
        e = (h - (x + y) * (x + y)) % _P
        g = (a - b) % _P
        f = (c + g) % _P
        x, y, z = e * f % _P, g * h % _P, f * g % _P
    return x == 0 and y == z


def _is_safe_point(encoded: bytes) -> bool:
    """Return True for the canonical encoding of a point of large order.

    A small-order public key or signature point R lets anyone forge a
    signature, whatever the verifying library accepts.
    """
    point = _decode_point(encoded)
    return point is not None and not _has_small_order(point)


def _is_weak_secret(raw: bytes) -> bool:
    """Return True for a secret that is visibly not random: few bytes, a pattern."""
    if len(set(raw)) < _SECRET_MIN_DISTINCT_BYTES:
        return True
    return any(raw[period:] == raw[:-period] for period in range(1, len(raw) // 2 + 1))


def check_new_key(key: str) -> None:
    """Refuse a key the resident is about to pin; raise InvalidKeyError.

    Besides parse_key's format rules: a public key must be a valid Ed25519
    point of large order, and a pasted secret must not be a visible pattern.
    """
    version, raw = parse_key(key)
    if version == VERSION_HMAC:
        if _is_weak_secret(raw):
            raise InvalidKeyError("weak_secret")
    elif (point := _decode_point(raw)) is None:
        raise InvalidKeyError("invalid_public_key")
    elif _has_small_order(point):
        raise InvalidKeyError("weak_public_key")


def generate_secret() -> str:
    """Return a new random shared secret for `v1` signatures."""
    return SECRET_PREFIX + base64.b64encode(
        secrets.token_bytes(SECRET_GENERATED_BYTES)
    ).decode("ascii")


class Verifier(ABC):
    """Verifies Standard Webhooks signatures with one configured key."""

    version: str

    @classmethod
    def from_key(cls, key: str) -> Verifier:
        """Return the verifier for a verification key; raise InvalidKeyError."""
        version, raw = parse_key(key)
        if version == VERSION_HMAC:
            return _HmacVerifier(raw)
        return _Ed25519Verifier(raw)

    def verify(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> VerifiedMessage:
        """Authenticate a request at Unix time `now`.

        Raise AuthenticationError, and nothing else, when it fails.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        msg_id = lowered.get(HEADER_ID, "")
        timestamp = lowered.get(HEADER_TIMESTAMP, "")
        signature = lowered.get(HEADER_SIGNATURE, "")
        if not (msg_id and timestamp and signature):
            raise AuthenticationError("missing_signature_headers")
        if not (
            (msg_id + timestamp + signature).isascii()
            and _ID_RE.fullmatch(msg_id)
            and _TIMESTAMP_RE.fullmatch(timestamp)
        ):
            raise AuthenticationError("invalid_signature")
        if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE_S:
            raise AuthenticationError("stale_timestamp")

        signatures: list[bytes] = []
        for entry in signature.split():
            version, comma, encoded = entry.partition(",")
            if not comma or version != self.version:
                continue
            try:
                signatures.append(base64.b64decode(encoded, validate=True))
            except ValueError:
                continue
        # The header's own timestamp text is signed, as the sender formatted it.
        content = f"{msg_id}.{timestamp}.".encode() + body
        if not self._any_matches(content, signatures):
            raise AuthenticationError("invalid_signature")
        return VerifiedMessage(msg_id=msg_id, timestamp=int(timestamp))

    @abstractmethod
    def _any_matches(self, content: bytes, signatures: list[bytes]) -> bool:
        """Return True if any of the signatures is valid for the content."""


class _HmacVerifier(Verifier):
    """`v1`: HMAC-SHA256 with the shared secret."""

    version = VERSION_HMAC

    def __init__(self, secret: bytes) -> None:
        """Initialize with the decoded secret."""
        self._secret = secret

    @override
    def _any_matches(self, content: bytes, signatures: list[bytes]) -> bool:
        """Return True if any signature equals the content's HMAC."""
        expected = hmac.new(self._secret, content, hashlib.sha256).digest()
        return any(hmac.compare_digest(expected, sig) for sig in signatures)


class _Ed25519Verifier(Verifier):
    """`v1a`: Ed25519 with the city's pinned public key."""

    version = VERSION_ED25519

    def __init__(self, public_key: bytes) -> None:
        """Initialize with the raw 32-byte public key."""
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)
        # A key pinned before the flow refused unsafe ones verifies nothing.
        self._safe = _is_safe_point(public_key)

    @override
    def _any_matches(self, content: bytes, signatures: list[bytes]) -> bool:
        """Return True if any signature verifies with the public key."""
        if not self._safe:
            return False
        for sig in signatures:
            if (
                len(sig) != ED25519_SIGNATURE_BYTES
                or not _is_safe_point(sig[:32])
                or int.from_bytes(sig[32:], "little") >= _L
            ):
                continue
            try:
                self._public_key.verify(sig, content)
            except InvalidSignature:
                continue
            return True
        return False


class SeenIdStore:
    """The webhook-ids accepted within the timestamp window, kept across restarts.

    After an id's expiry the timestamp check alone refuses its replay, so only
    ids accepted in the last window are kept, bounded by SEEN_IDS_MAX.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize the store of one config entry."""
        self._store: Store[list[tuple[str, float]]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.seen_ids", private=True
        )
        self._expiry: dict[str, float] = {}
        # Min-heap on expiry, one item per id in _expiry, for cheap pruning.
        self._heap: list[tuple[float, str]] = []
        self._save_scheduled = False

    def __len__(self) -> int:
        """Return the number of remembered ids."""
        return len(self._expiry)

    async def async_load(self) -> None:
        """Load the remembered ids, dropping expired ones."""
        if (stored := await self._store.async_load()) is None:
            return
        now = time.time()
        self._expiry = {msg_id: expiry for msg_id, expiry in stored if expiry >= now}
        self._heap = [(expiry, msg_id) for msg_id, expiry in self._expiry.items()]
        heapq.heapify(self._heap)

    @callback
    def check_and_add(self, msg: VerifiedMessage, now: float) -> bool:
        """Remember a message id; return False if it was already seen (replay).

        Raise SeenIdStoreFullError when SEEN_IDS_MAX ids are live.
        """
        while self._heap and self._heap[0][0] < now:
            del self._expiry[heapq.heappop(self._heap)[1]]
        if msg.msg_id in self._expiry:
            return False
        if len(self._expiry) >= SEEN_IDS_MAX:
            raise SeenIdStoreFullError
        # Replays are refused by their timestamp after ts + tolerance; the
        # id outlives that when HA's clock is ahead of the sender's.
        expiry = max(now, msg.timestamp) + TIMESTAMP_TOLERANCE_S
        self._expiry[msg.msg_id] = expiry
        heapq.heappush(self._heap, (expiry, msg.msg_id))
        # Not re-debounced on every add, so steady traffic can't starve the save.
        if not self._save_scheduled:
            self._save_scheduled = True
            self._store.async_delay_save(self._data_to_save, SEEN_IDS_SAVE_DELAY_S)
        return True

    async def async_flush(self) -> None:
        """Write a pending save now, so a reloaded entry sees every id."""
        if self._save_scheduled:
            await self._store.async_save(self._data_to_save())

    async def async_remove(self) -> None:
        """Delete the stored ids (the entry is being removed)."""
        await self._store.async_remove()

    @callback
    def _data_to_save(self) -> list[tuple[str, float]]:
        """Return the ids to persist; the pending save is being written."""
        self._save_scheduled = False
        return list(self._expiry.items())
