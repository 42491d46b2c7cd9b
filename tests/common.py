"""Helpers shared by the tests: signing city requests like a city would."""

import base64
from datetime import UTC, datetime
from itertools import count
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from standardwebhooks import Webhook
from standardwebhooks.webhooks import hmac_data

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CITY_PRIVATE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
CITY_PUBLIC_KEY = (
    "whpk_"
    + base64.b64encode(
        CITY_PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
)

HOME = (32.29876, -90.18481)
EXTERNAL_URL = "https://home.example.org"

# The front door's entry (tests/conftest.py) and its entities.
CAMERA = "camera.front_door"
ENTRY_ID = "01JRTCCSHAREFRONTDOOR00000"
WEBHOOK_ID = "0123456789abcdef" * 4
WEBHOOK_URL = f"/api/webhook/{WEBHOOK_ID}"
CONSENT = "switch.front_door_consent_to_share"
LAPSES = "sensor.front_door_consent_lapses"
LIVE = "binary_sensor.front_door_live_share"
EVENT = "event.front_door_activation"
STOP = "button.front_door_stop_sharing_now"
POLICE_VIEW = "camera.front_door_police_view"


async def turn_on_consent(hass: HomeAssistant) -> None:
    """Turn the front door's consent switch on, as the resident does."""
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": CONSENT}, blocking=True
    )


# The eight small-order points of Ed25519, canonically encoded: the identity,
# the point of order 2, two of order 4 (y = 0) and four of order 8.
SMALL_ORDER_POINTS = tuple(
    bytes.fromhex(encoding)
    for encoding in (
        "01" + "00" * 31,
        "ec" + "ff" * 30 + "7f",
        "00" * 32,
        "00" * 31 + "80",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    )
)
ZERO_PUBLIC_KEY = "whpk_" + base64.b64encode(bytes(32)).decode()


def forge_for_zero_key(body: bytes, timestamp: int) -> dict[str, str]:
    """Return headers whose `v1a` forgery verifies with the all-zero key in OpenSSL.

    The key has order 4: [S]B = R + [k]A holds for S = 0 whenever R = -[k]A,
    where k hashes R with the message, so about one id in four works.
    """
    zero_key = Ed25519PublicKey.from_public_bytes(bytes(32))
    for attempt in count():
        msg_id = f"forged-{attempt}"
        content = f"{msg_id}.{timestamp}.".encode() + body
        for point in SMALL_ORDER_POINTS:
            try:
                zero_key.verify(point + bytes(32), content)
            except InvalidSignature:
                continue
            return {
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": "v1a,"
                + base64.b64encode(point + bytes(32)).decode(),
                "Content-Type": "application/json",
            }
    raise AssertionError  # pragma: no cover - count() never ends


def requested(activation_id: str = "JPD-RTCC-0017", **changes: Any) -> dict[str, Any]:
    """Return a valid `activation.requested` body, with top-level changes."""
    body: dict[str, Any] = {
        "type": "activation.requested",
        "activation_id": activation_id,
        "incident": {
            "id": "CAD-20-118233",
            "type": "shots_fired",
            "description": "Shots fired, 3 males fleeing north on foot",
            "location": {"lat": HOME[0] + 0.001, "lon": HOME[1]},
            "radius_m": 300,
        },
        "operator": {"id": "op-17", "name": "RTCC operator 17"},
        "legal_basis": "exigent_circumstances",
        "requested_duration_s": 600,
    }
    body.update(changes)
    return body


def ended(activation_id: str = "JPD-RTCC-0017") -> dict[str, Any]:
    """Return a valid `activation.ended` body."""
    return {
        "type": "activation.ended",
        "activation_id": activation_id,
        "operator": {"id": "op-17"},
    }


class City:
    """Signs requests as the city: `v1` with standardwebhooks, `v1a` with Ed25519."""

    def __init__(self, key: str = SECRET) -> None:
        """Sign with the given shared secret, or Ed25519 when given the public key."""
        self.key = key
        self.count = 0

    def headers(
        self,
        body: bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """Return the Standard Webhooks headers for a body."""
        self.count += 1
        msg_id = msg_id or f"msg_{self.count}_{dt_util.utcnow().timestamp()}"
        timestamp = (
            int(dt_util.utcnow().timestamp()) if timestamp is None else timestamp
        )
        if self.key.startswith("whsec_"):
            try:
                text = body.decode()
            except UnicodeDecodeError:
                # `sign` takes text only; the package's own HMAC covers raw bytes.
                raw = hmac_data(
                    Webhook(self.key)._whsecret,
                    f"{msg_id}.{timestamp}.".encode() + body,
                )
                signature = "v1," + base64.b64encode(raw).decode()
            else:
                signature = Webhook(self.key).sign(
                    msg_id, datetime.fromtimestamp(timestamp, tz=UTC), text
                )
        else:
            raw = CITY_PRIVATE_KEY.sign(f"{msg_id}.{timestamp}.".encode() + body)
            signature = "v1a," + base64.b64encode(raw).decode()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    def sign(self, payload: Any, **kwargs: Any) -> tuple[bytes, dict[str, str]]:
        """Return the JSON body and its headers."""
        body = json.dumps(payload).encode()
        return body, self.headers(body, **kwargs)
