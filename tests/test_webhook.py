"""The city's webhook, row by row of the contract, with real signatures and HTTP."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
import gzip
import json
import logging
from typing import Any

from aiohttp import ClientResponse
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from homeassistant.util.aiohttp import MockRequest, serialize_response
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_MAX_ACTIVATIONS_PER_DAY,
    CONF_REQUIRE_RECIPIENT,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_GRANTED,
    EVENT_REFUSED,
)

from .common import (
    CITY_PUBLIC_KEY,
    HOME,
    ZERO_PUBLIC_KEY,
    City,
    ended,
    forge_for_zero_key,
    requested,
)
from .conftest import WEBHOOK_ID, SourceCamera

CONSENT = "switch.front_door_consent_to_share"
URL = f"/api/webhook/{WEBHOOK_ID}"

type Post = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


@pytest.fixture
async def post(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> Post:
    """Send a signed payload (or raw bytes with given headers); return status, JSON."""
    client = await hass_client_no_auth()

    async def _post(
        payload: Any = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **sign: Any,
    ) -> tuple[int, dict[str, Any]]:
        if body is None:
            body, signed = city.sign(payload, **sign)
            headers = signed if headers is None else {**signed, **headers}
        response: ClientResponse = await client.post(URL, data=body, headers=headers)
        assert response.content_type == "application/json"
        return response.status, await response.json()

    return _post


async def consent(hass: HomeAssistant, on: bool = True) -> None:
    """Turn the consent switch on or off as the resident would."""
    await hass.services.async_call(
        "switch", "turn_on" if on else "turn_off", {"entity_id": CONSENT}, blocking=True
    )


async def test_grant_then_idempotent_then_conflict_then_end(
    hass: HomeAssistant, post: Post
) -> None:
    """201, the same body again with 200, 409 for another id, 200 on end."""
    await consent(hass)
    granted = async_capture_events(hass, EVENT_GRANTED)
    status, body = await post(requested())
    assert status == 201
    assert body["status"] == "active"
    assert body["activation_id"] == "JPD-RTCC-0017"
    assert body["stream_url"].startswith("https://home.example.org/api/rtcc_share/hls/")
    assert body["stream_url"].endswith("/master_playlist.m3u8")
    assert body["receipt"].startswith("sha256:")
    assert body["expires_at"] > body["started_at"]
    assert len(granted) == 1
    assert hass.states.get("binary_sensor.front_door_live_share").state == "on"

    assert await post(requested()) == (200, body)
    status, conflict = await post(requested("OTHER-1"))
    assert (status, conflict["error"], conflict["activation_id"]) == (
        409,
        "already_active",
        "JPD-RTCC-0017",
    )
    assert await post(ended()) == (
        200,
        {"status": "ended", "activation_id": "JPD-RTCC-0017"},
    )
    assert hass.states.get("binary_sensor.front_door_live_share").state == "off"
    # Ending again, and asking again for the same id, both say it ended.
    assert (await post(ended()))[0] == 200
    assert await post(requested()) == (
        200,
        {"status": "ended", "activation_id": "JPD-RTCC-0017"},
    )
    assert await post(ended("NEVER-SEEN")) == (404, {"error": "unknown_activation"})


@pytest.mark.parametrize("verification_key", [CITY_PUBLIC_KEY])
async def test_grant_with_ed25519(hass: HomeAssistant, post: Post) -> None:
    """`v1a`: Home Assistant holds only the city's public key."""
    await consent(hass)
    status, body = await post(requested())
    assert status == 201, body


@pytest.mark.parametrize("verification_key", [ZERO_PUBLIC_KEY])
async def test_forged_signature_with_all_zero_key_refused(
    hass: HomeAssistant, post: Post
) -> None:
    """An entry pinned to the all-zero key: a small-order-R, S = 0 forgery gets 401."""
    await consent(hass)
    body = json.dumps(requested()).encode()
    forged = forge_for_zero_key(body, int(dt_util.utcnow().timestamp()))
    assert await post(body=body, headers=forged) == (
        401,
        {"error": "invalid_signature"},
    )
    assert hass.states.get("binary_sensor.front_door_live_share").state == "off"


@pytest.mark.parametrize("verification_key", [CITY_PUBLIC_KEY])
async def test_message_signed_for_another_home_is_refused(
    hass: HomeAssistant,
    post: Post,
    integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replay of a message addressed to another webhook: 401 wrong_recipient.

    Neither this home's webhook id nor the other's reaches the log, the bus
    or the audit log.
    """
    caplog.set_level(logging.DEBUG, logger="custom_components.rtcc_share")
    events = async_capture_events(hass, EVENT_REFUSED)
    await consent(hass)
    other = "f" * 64
    for message in (requested(recipient=other), {**ended(), "recipient": other}):
        assert await post(message) == (401, {"error": "wrong_recipient"})
    assert hass.states.get("binary_sensor.front_door_live_share").state == "off"
    records = await integration.runtime_data.audit.async_export(None, None)
    refused = [r for r in records if r["event"] == "activation_refused"]
    assert [r["reason"] for r in refused] == ["wrong_recipient"] * 2
    assert refused[0]["activation_id"] == "JPD-RTCC-0017"
    assert [e.data["reason"] for e in events] == ["wrong_recipient"] * 2
    written = json.dumps(records) + json.dumps([e.data for e in events])
    rtcc_logs = "".join(
        r.getMessage() for r in caplog.records if r.name.startswith("custom_")
    )
    for secret in (WEBHOOK_ID, other):
        assert secret not in written + rtcc_logs
    # Addressed to this webhook: granted, and ended.
    assert (await post(requested(recipient=WEBHOOK_ID)))[0] == 201
    assert (await post({**ended(), "recipient": WEBHOOK_ID}))[0] == 200


@pytest.mark.parametrize(
    ("verification_key", "entry_options"),
    [(CITY_PUBLIC_KEY, {**DEFAULT_OPTIONS, CONF_REQUIRE_RECIPIENT: True})],
)
async def test_unaddressed_message_refused_when_recipient_required(
    hass: HomeAssistant, post: Post, integration: MockConfigEntry
) -> None:
    """The resident requires a recipient: without one, 401 recipient_required."""
    await consent(hass)
    assert await post(requested()) == (401, {"error": "recipient_required"})
    assert await post(ended()) == (401, {"error": "recipient_required"})
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [r["reason"] for r in records if r["event"] == "activation_refused"] == [
        "recipient_required"
    ] * 2
    assert (await post(requested(recipient=WEBHOOK_ID)))[0] == 201


@pytest.mark.parametrize(
    "entry_options",
    [{k: v for k, v in DEFAULT_OPTIONS.items() if k != CONF_REQUIRE_RECIPIENT}],
)
async def test_entry_made_before_the_recipient_option_accepts_unaddressed(
    hass: HomeAssistant, post: Post
) -> None:
    """No stored require_recipient: read as off, no migration needed."""
    await consent(hass)
    assert (await post(requested()))[0] == 201


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (requested(), "consent_off"),
    ],
)
async def test_consent_off_refuses(
    hass: HomeAssistant, post: Post, payload: dict[str, Any], error: str
) -> None:
    """Without consent nothing is granted; the refusal fires an event."""
    refused = async_capture_events(hass, EVENT_REFUSED)
    assert await post(payload) == (403, {"error": error})
    await hass.async_block_till_done()
    assert refused[0].data["reason"] == error


def _far() -> dict[str, Any]:
    body = requested()
    body["incident"]["location"] = {"lat": HOME[0] + 0.01, "lon": HOME[1]}
    return body


def _type(code: str) -> dict[str, Any]:
    body = requested()
    body["incident"]["type"] = code
    return body


async def test_policy_refusals(hass: HomeAssistant, post: Post) -> None:
    """Incident type and area are the resident's to decide."""
    await consent(hass)
    assert await post(_type("protest")) == (403, {"error": "incident_type_not_allowed"})
    assert await post(_far()) == (403, {"error": "outside_area"})


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_MAX_ACTIVATIONS_PER_DAY: 1}]
)
async def test_rate_limited(hass: HomeAssistant, post: Post) -> None:
    """The second activation in 24 h is refused when the limit is one."""
    await consent(hass)
    assert (await post(requested("A-1")))[0] == 201
    assert (await post(ended("A-1")))[0] == 200
    assert await post(requested("A-2")) == (403, {"error": "rate_limited"})


async def test_transport_errors(hass: HomeAssistant, post: Post, city: City) -> None:
    """Size and media type are checked before anything else."""
    big = b"{" + b" " * (64 * 1024) + b"}"
    assert await post(body=big, headers=city.headers(big)) == (
        413,
        {"error": "payload_too_large"},
    )
    huge = b" " * (20 * 1024 * 1024)
    assert await post(body=huge, headers={"Content-Type": "application/json"}) == (
        413,
        {"error": "payload_too_large"},
    )
    body = json.dumps(requested()).encode()
    assert await post(
        body=body, headers={**city.headers(body), "Content-Type": "text/plain"}
    ) == (
        415,
        {"error": "unsupported_media_type"},
    )


SIGNED_JSON = json.dumps(requested()).encode()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"not gzip at all"),
        ("deflate", b"not deflate at all"),
    ],
    ids=["gzip", "deflate"],
)
async def test_broken_content_encoding_is_a_400_not_a_500(
    hass: HomeAssistant,
    post: Post,
    city: City,
    integration: MockConfigEntry,
    encoding: str,
    body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An undecodable body: 400 invalid_payload, counted and logged as a rejection."""
    headers = {**city.headers(SIGNED_JSON), "Content-Encoding": encoding}
    for _ in range(3):
        status, answer = await post(body=body, headers=headers)
        assert (status, answer["error"]) == (400, "invalid_payload")
        assert answer["detail"] == "body: the Content-Encoding cannot be decoded"
    # gzip cut short decodes to a prefix of the signed body: its signature fails.
    truncated = gzip.compress(SIGNED_JSON)[:-12]
    assert await post(
        body=truncated, headers={**headers, "Content-Encoding": "gzip"}
    ) == (401, {"error": "invalid_signature"})
    assert integration.runtime_data.rejections.unauthenticated == 4
    assert "ERROR" not in caplog.text
    assert caplog.text.count("Rejected unauthenticated activation requests") == 1


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda h: h.pop("webhook-id"), "missing_signature_headers"),
        (lambda h: h.pop("webhook-timestamp"), "missing_signature_headers"),
        (lambda h: h.pop("webhook-signature"), "missing_signature_headers"),
        (lambda h: h.update({"webhook-signature": "v1"}), "invalid_signature"),
        (lambda h: h.update({"webhook-signature": "v1,@@@"}), "invalid_signature"),
        (lambda h: h.update({"webhook-timestamp": "1e20"}), "invalid_signature"),
        (lambda h: h.update({"webhook-timestamp": "NaN"}), "invalid_signature"),
    ],
)
async def test_authentication_errors(
    hass: HomeAssistant,
    post: Post,
    city: City,
    mangle: Callable[[dict[str, str]], Any],
    error: str,
) -> None:
    """Every malformed or missing header is a 401 and counted."""
    body = json.dumps(requested()).encode()
    headers = city.headers(body)
    mangle(headers)
    assert await post(body=body, headers=headers) == (401, {"error": error})
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_rejected_requests").state == "1"


async def test_stale_timestamp_and_other_body(
    hass: HomeAssistant, post: Post, city: City
) -> None:
    """±301 s is stale; a signature for another body is invalid."""
    ts = int(dt_util.utcnow().timestamp())
    for skew in (-301, 301):
        status, body = await post(requested(), timestamp=ts + skew)
        assert (status, body) == (401, {"error": "stale_timestamp"})
    body = json.dumps(requested()).encode()
    headers = city.headers(json.dumps(requested("X")).encode())
    assert await post(body=body, headers=headers) == (
        401,
        {"error": "invalid_signature"},
    )


async def test_duplicate_message(hass: HomeAssistant, post: Post) -> None:
    """A webhook-id is single-use."""
    await post(requested(), msg_id="msg-1")
    assert await post(requested(), msg_id="msg-1") == (
        409,
        {"error": "duplicate_message"},
    )


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "body is not valid JSON"),
        (b"not json", "body is not valid JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"\xff\xfe", "body is not UTF-8"),
        (b'{"type": "activation.requested", "x": NaN}', "body is not valid JSON"),
        (b"[" * 30000 + b"]" * 30000, "body is not a JSON object"),
    ],
    ids=["empty", "not-json", "array", "not-utf8", "nan", "deep-nesting"],
)
async def test_invalid_bodies(
    hass: HomeAssistant, post: Post, city: City, raw: bytes, detail: str
) -> None:
    """Authenticated but unparseable bodies are a 400 with a detail."""
    assert await post(body=raw, headers=city.headers(raw)) == (
        400,
        {"error": "invalid_payload", "detail": detail},
    )


def _with(path: str, value: Any) -> dict[str, Any]:
    body = requested()
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("type", "activation.paused"),
        ("activation_id", ""),
        ("activation_id", "a" * 129),
        ("activation_id", "has space"),
        ("activation_id", KeyError),
        ("incident.id", ""),
        ("incident.id", "x" * 10000),
        ("incident.type", "Shots Fired"),
        ("incident.type", "a" * 65),
        ("incident.description", "d" * 501),
        ("incident.location.lat", 91),
        ("incident.location.lat", "32.1"),
        ("incident.location.lon", -181),
        ("incident.location.lon", True),
        ("incident.location", KeyError),
        ("incident.radius_m", 0),
        ("incident.radius_m", 5001),
        ("operator.id", ""),
        ("operator", KeyError),
        ("legal_basis", "l" * 65),
        ("legal_basis", KeyError),
        ("requested_duration_s", 29),
        ("requested_duration_s", 86401),
        ("requested_duration_s", 60.5),
        ("recipient", ""),
        ("recipient", 7),
        ("recipient", "r" * 129),
    ],
)
async def test_field_rules(
    hass: HomeAssistant, post: Post, path: str, value: Any
) -> None:
    """Every field rule gives a 400 naming the field."""
    status, body = await post(_with(path, value))
    assert status == 400
    assert body["error"] == "invalid_payload"
    assert body["detail"].startswith(path.split(".", maxsplit=1)[0])


async def test_lon_nan_is_refused(hass: HomeAssistant, post: Post, city: City) -> None:
    """NaN in JSON is not JSON."""
    raw = json.dumps(_with("incident.location.lon", float("nan"))).encode()
    status, body = await post(body=raw, headers=city.headers(raw))
    assert (status, body["error"]) == (400, "invalid_payload")


async def test_unknown_fields_ignored(hass: HomeAssistant, post: Post) -> None:
    """Forward compatibility: unknown fields do not fail the request."""
    await consent(hass)
    status, _ = await post(requested(future_field={"x": 1}))
    assert status == 201


async def test_camera_without_stream(
    hass: HomeAssistant, post: Post, camera: SourceCamera
) -> None:
    """A camera that offers no stream cannot be shared."""
    await consent(hass)
    camera.source = None
    assert await post(requested()) == (503, {"error": "camera_unavailable"})


async def test_no_external_url(hass: HomeAssistant, post: Post) -> None:
    """No HTTPS external URL: 503 and a repair issue."""
    await consent(hass)
    await hass.config.async_update(external_url=None)
    assert await post(requested()) == (503, {"error": "no_external_url"})
    issues = ir.async_get(hass).issues
    assert any(domain == DOMAIN for domain, _ in issues)


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_ALLOW_HTTP_STREAM_URL: True}]
)
async def test_lab_http_url(hass: HomeAssistant, post: Post) -> None:
    """In lab mode a plain-HTTP address is used when there is no HTTPS one."""
    await consent(hass)
    await hass.config.async_update(
        external_url="http://lab.example.org", internal_url="http://192.168.1.2:8123"
    )
    status, body = await post(requested())
    assert status == 201
    assert body["stream_url"].startswith("http://")


async def test_audit_unavailable_fails_closed(
    hass: HomeAssistant, post: Post, integration: MockConfigEntry, tmp_path
) -> None:
    """No audit record, no stream: 503 and a repair issue."""
    await consent(hass)
    blocker = tmp_path / "file"
    blocker.write_text("")
    integration.runtime_data.audit.path = blocker / "log.jsonl"
    assert await post(requested()) == (503, {"error": "audit_log_unavailable"})
    assert integration.runtime_data.session.live is None
    assert (DOMAIN, f"audit_log_unavailable_{integration.entry_id}") in ir.async_get(
        hass
    ).issues


async def test_camera_turned_off(
    hass: HomeAssistant, post: Post, camera: SourceCamera
) -> None:
    """A camera that is off cannot be shared."""
    await consent(hass)
    camera._attr_is_on = False
    assert await post(requested()) == (503, {"error": "camera_unavailable"})


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_ALLOW_HTTP_STREAM_URL: True}]
)
async def test_lab_mode_without_any_url(hass: HomeAssistant, post: Post) -> None:
    """Lab mode still needs some address to hand out."""
    await consent(hass)
    await hass.config.async_update(external_url=None, internal_url=None)
    hass.config.api = None
    assert await post(requested()) == (503, {"error": "no_external_url"})


async def test_refusal_is_answered_even_if_it_cannot_be_audited(
    hass: HomeAssistant, post: Post, integration: MockConfigEntry, tmp_path: Any
) -> None:
    """A refusal stays a refusal; the unwritable log raises a repair issue."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    integration.runtime_data.audit.path = blocker / "log.jsonl"
    assert await post(requested()) == (403, {"error": "consent_off"})
    assert (DOMAIN, f"audit_log_unavailable_{integration.entry_id}") in ir.async_get(
        hass
    ).issues


async def test_unexpected_fault_is_still_json(
    hass: HomeAssistant,
    post: Post,
    integration: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug answers the contract's JSON with 500, logging no request content."""

    async def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(integration.runtime_data.activations, "async_request", broken)
    assert await post(requested()) == (500, {"error": "internal_error"})
    assert "RuntimeError" in caplog.text
    assert WEBHOOK_ID not in [
        r.getMessage() for r in caplog.records if r.name.startswith("custom_")
    ]


async def _relayed(
    hass: HomeAssistant, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Deliver a request as Home Assistant Cloud's relay does: a MockRequest."""
    request = MockRequest(
        content=body, mock_source="cloud", method="POST", headers=headers
    )
    response = await webhook.async_handle_webhook(hass, WEBHOOK_ID, request)
    serialized = serialize_response(response)
    assert response.content_type == "application/json"
    return serialized["status"], json.loads(serialized["body"])


async def test_request_relayed_by_home_assistant_cloud_is_answered(
    hass: HomeAssistant, integration: MockConfigEntry, city: City
) -> None:
    """Through the cloud relay (or the websocket API) every check answers as over HTTP.

    A MockRequest has no parsed media type or declared length, and reads its
    body afresh from each `content`: read once, it is never taken for 413.
    """
    await consent(hass)
    status, grant = await _relayed(hass, *city.sign(requested("CLOUD-1")))
    assert status == 201
    assert grant["stream_url"].startswith("https://home.example.org/")
    body, headers = city.sign(ended("CLOUD-1"))
    assert await _relayed(hass, body, headers) == (
        200,
        {"status": "ended", "activation_id": "CLOUD-1"},
    )
    assert await _relayed(hass, body, headers) == (409, {"error": "duplicate_message"})
    body, headers = city.sign(requested("CLOUD-2"))
    text = {**headers, "Content-Type": "text/plain"}
    assert (await _relayed(hass, body, text))[0] == 415
    charset = {**headers, "Content-Type": "application/json; charset=latin-1"}
    assert (await _relayed(hass, body, charset))[0] == 415
    assert (await _relayed(hass, b" " * 70_000, headers))[0] == 413
    assert await _relayed(hass, body + b" ", headers) == (
        401,
        {"error": "invalid_signature"},
    )
