"""Build, sign and send City activation API messages (version 1).

Everything but `post` and `probe` does no I/O, so it can be tested and reused:

    body = encode(build_requested(activation_id="RTCC-1", ...))
    headers = sign(key, body)
    response = post(url, body, headers)

`sign` follows docs/city-api.md: a `whsec_` key signs `v1` with the official
`standardwebhooks` package, a `whsk_` key signs `v1a` with Ed25519.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import secrets
import shutil
import subprocess
from typing import Any, Final
from urllib.parse import urlsplit
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
import httpx
from standardwebhooks import Webhook

SECRET_PREFIX: Final = "whsec_"
PRIVATE_KEY_PREFIX: Final = "whsk_"
PUBLIC_KEY_PREFIX: Final = "whpk_"
SECRET_MIN_BYTES: Final = 24
SECRET_MAX_BYTES: Final = 64
SECRET_GENERATED_BYTES: Final = 32
ED25519_KEY_BYTES: Final = 32

TYPE_REQUESTED: Final = "activation.requested"
TYPE_ENDED: Final = "activation.ended"
JSON_TYPE: Final = "application/json"

DEFAULT_TIMEOUT_S: Final = 30.0
PROBE_TIMEOUT_S: Final = 60.0


class KeyFormatError(ValueError):
    """The signing key is not a `whsec_` secret or a `whsk_` private key.

    The message never contains the key.
    """


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A parsed signing key: the signature version and the raw key bytes."""

    version: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class CityResponse:
    """What the home answered."""

    status: int
    reason: str
    body: Any
    """The decoded JSON body, or None when the body is not JSON."""
    text: str

    @property
    def ok(self) -> bool:
        """Return True for a 2xx answer with a JSON body (the integration's)."""
        return 200 <= self.status < 300 and self.body is not None


# Keys


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise KeyFormatError("the key is not valid base64 after its prefix") from err


def generate_secret() -> str:
    """Return a new `whsec_` shared secret of 32 random bytes (`v1`)."""
    return SECRET_PREFIX + _b64(secrets.token_bytes(SECRET_GENERATED_BYTES))


def generate_keypair() -> tuple[str, str]:
    """Return a new Ed25519 pair (`v1a`): (`whsk_` private, `whpk_` public)."""
    key = Ed25519PrivateKey.generate()
    raw_private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PRIVATE_KEY_PREFIX + _b64(raw_private), PUBLIC_KEY_PREFIX + _b64(raw_public)


def public_key_of(private_key: str) -> str:
    """Return the `whpk_` public key that belongs to a `whsk_` private key."""
    key = parse_signing_key(private_key)
    if key.version != "v1a":
        raise KeyFormatError("only a whsk_ private key has a public key")
    raw_public = (
        Ed25519PrivateKey.from_private_bytes(key.raw)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return PUBLIC_KEY_PREFIX + _b64(raw_public)


def parse_signing_key(key: str) -> SigningKey:
    """Parse a `whsec_` secret (`v1`) or a `whsk_` private key (`v1a`)."""
    key = key.strip()
    if key.startswith(SECRET_PREFIX):
        raw = _decode(key.removeprefix(SECRET_PREFIX))
        if not SECRET_MIN_BYTES <= len(raw) <= SECRET_MAX_BYTES:
            raise KeyFormatError(
                f"a whsec_ secret holds {SECRET_MIN_BYTES}-{SECRET_MAX_BYTES} bytes"
            )
        return SigningKey("v1", raw)
    if key.startswith(PRIVATE_KEY_PREFIX):
        raw = _decode(key.removeprefix(PRIVATE_KEY_PREFIX))
        if len(raw) != ED25519_KEY_BYTES:
            raise KeyFormatError(f"a whsk_ private key holds {ED25519_KEY_BYTES} bytes")
        return SigningKey("v1a", raw)
    if key.startswith(PUBLIC_KEY_PREFIX):
        raise KeyFormatError(
            "a whpk_ public key cannot sign: use the matching whsk_ private key"
        )
    raise KeyFormatError("expected a whsec_ shared secret or a whsk_ private key")


# Messages


def new_activation_id(now: datetime | None = None) -> str:
    """Return a fresh activation id, e.g. `RTCC-20261104-3fa9c2d1e07b`."""
    now = now or datetime.now(tz=UTC)
    return f"RTCC-{now.astimezone(UTC):%Y%m%d}-{secrets.token_hex(6)}"


def recipient_of(url: str) -> str:
    """Return the webhook id a webhook URL names: its last path segment."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def new_message_id() -> str:
    """Return a fresh `webhook-id`; every request needs one, retries too."""
    return f"msg_{uuid.uuid4().hex}"


def _number(value: float) -> float | int:
    """Send 300 rather than 300.0; both are valid, the first is what people write."""
    return int(value) if float(value).is_integer() else value


def build_requested(
    *,
    activation_id: str,
    incident_id: str,
    incident_type: str,
    lat: float,
    lon: float,
    operator_id: str,
    legal_basis: str,
    radius_m: float | None = None,
    description: str | None = None,
    operator_name: str | None = None,
    duration_s: int | None = None,
    recipient: str | None = None,
    accept_streams: list[str] | None = None,
) -> dict[str, Any]:
    """Return an `activation.requested` message; optional fields only when given.

    `recipient` (API 1.1) is the webhook id the message is meant for;
    `accept_streams` (API 1.1) the kinds of live view the city can play.
    """
    incident: dict[str, Any] = {
        "id": incident_id,
        "type": incident_type,
        "location": {"lat": lat, "lon": lon},
    }
    if description is not None:
        incident["description"] = description
    if radius_m is not None:
        incident["radius_m"] = _number(radius_m)
    operator: dict[str, Any] = {"id": operator_id}
    if operator_name is not None:
        operator["name"] = operator_name
    message: dict[str, Any] = {
        "type": TYPE_REQUESTED,
        "activation_id": activation_id,
        "incident": incident,
        "operator": operator,
        "legal_basis": legal_basis,
    }
    if duration_s is not None:
        message["requested_duration_s"] = duration_s
    if accept_streams is not None:
        message["accept_streams"] = accept_streams
    return _addressed(message, recipient)


def build_ended(
    *, activation_id: str, operator_id: str, recipient: str | None = None
) -> dict[str, Any]:
    """Return an `activation.ended` message, addressed when `recipient` is given."""
    message = {
        "type": TYPE_ENDED,
        "activation_id": activation_id,
        "operator": {"id": operator_id},
    }
    return _addressed(message, recipient)


def _addressed(message: dict[str, Any], recipient: str | None) -> dict[str, Any]:
    """Name the webhook the message is for; no other home then accepts it."""
    return message if recipient is None else {**message, "recipient": recipient}


def encode(message: dict[str, Any]) -> bytes:
    """Serialize a message once; these exact bytes are signed and sent."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()


# Signing


def sign(
    key: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Return the request headers: Standard Webhooks signature and content type.

    `msg_id` and `timestamp` default to a fresh id and the current time.
    """
    signing_key = parse_signing_key(key)
    msg_id = msg_id or new_message_id()
    if timestamp is None:
        timestamp = int(datetime.now(tz=UTC).timestamp())
    if signing_key.version == "v1":
        # The package signs text, UTF-8 encoded: exactly the body's bytes.
        signature = Webhook(signing_key.raw).sign(
            msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode("utf-8")
        )
    else:
        private_key = Ed25519PrivateKey.from_private_bytes(signing_key.raw)
        raw = private_key.sign(f"{msg_id}.{timestamp}.".encode() + body)
        signature = "v1a," + _b64(raw)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "Content-Type": JSON_TYPE,
    }


# I/O


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    insecure: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> CityResponse:
    """POST a signed body; raise httpx.HTTPError when no answer arrives."""
    with httpx.Client(verify=not insecure, timeout=timeout) as client:
        response = client.post(url, content=body, headers=headers)
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    return CityResponse(
        status=response.status_code,
        reason=response.reason_phrase,
        body=data,
        text=response.text,
    )


def probe_command(url: str, *, insecure: bool = False) -> list[str] | None:
    """Return the ffprobe command that lists the stream's tracks, or None."""
    if (ffprobe := shutil.which("ffprobe")) is None:
        return None
    command = [ffprobe, "-v", "error"]
    if insecure:
        command += ["-tls_verify", "0"]
    return [
        *command,
        "-show_entries",
        "stream=codec_name,codec_type,width,height",
        "-of",
        "compact",
        url,
    ]


def probe(
    command: Sequence[str], *, timeout: float = PROBE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a probe command from `probe_command`; no shell, bounded in time."""
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )
