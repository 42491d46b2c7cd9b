"""The city's activation webhook: parse, verify, decide, respond.

Checks run in the contract's order and fail closed: nothing of the body is
parsed before the signature verifies. Home Assistant's webhook layer answers
200 when a handler raises, so every outcome, including an unexpected error,
is turned into the contract's JSON response here.
"""

from collections.abc import Callable
import hmac
from http import HTTPStatus
import json
import logging
import math
import re
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.helpers import parse_content_type
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import json_bytes
from homeassistant.util import dt as dt_util
import probatio

from .const import (
    CONF_REQUIRE_RECIPIENT,
    CONF_WEBHOOK_ID,
    DOMAIN,
    ID_PATTERN,
    INCIDENT_TYPE_MAX_LEN,
    INCIDENT_TYPE_PATTERN,
    MAX_BODY_BYTES,
    MAX_INCIDENT_RADIUS_M,
    MAX_REQUESTED_DURATION_S,
    MIN_REQUESTED_DURATION_S,
    STREAM_HLS,
    STREAM_KINDS,
)
from .data import RtccShareConfigEntry
from .models import (
    ActivationEnd,
    ActivationRequest,
    Ended,
    Grant,
    Granted,
    Incident,
    Location,
    Operator,
    Outcome,
    RefusalReason,
    Refused,
    contract_time,
)
from .signature import AuthenticationError, SeenIdStoreFullError

_LOGGER = logging.getLogger(__name__)

TYPE_REQUESTED: Final = "activation.requested"
TYPE_ENDED: Final = "activation.ended"
JSON_TYPE: Final = "application/json"
OPERATOR_NAME_MAX_LEN: Final = 128
RECIPIENT_MAX_LEN: Final = 128
UNDECODABLE_BODY: Final = "body: the Content-Encoding cannot be decoded"


def _text(max_len: int, min_len: int = 1) -> probatio.All[Any]:
    return probatio.All(str, probatio.Length(min=min_len, max=max_len))


def _number(low: float, high: float) -> Callable[[Any], float]:
    """Accept a finite JSON number (not a boolean) within [low, high]."""

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise probatio.Invalid("expected a number")
        try:
            number = float(value)
        except OverflowError as err:  # an integer beyond any float
            raise probatio.Invalid(f"expected a number in [{low}, {high}]") from err
        if not math.isfinite(number) or not low <= number <= high:
            raise probatio.Invalid(f"expected a number in [{low}, {high}]")
        return number

    return validate


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise probatio.Invalid("expected an integer")
        if not low <= value <= high:
            raise probatio.Invalid(f"expected an integer in [{low}, {high}]")
        return value

    return validate


def _truncated(max_len: int) -> Callable[[Any], str]:
    """An optional free-text field: kept, but never stored unbounded."""

    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise probatio.Invalid("expected a string")
        return value[:max_len]

    return validate


def _stream_kinds(value: Any) -> frozenset[str]:
    """A list of strings; the kinds this home does not know are ignored."""
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise probatio.Invalid("expected a list of strings")
    return frozenset(value) & frozenset(STREAM_KINDS)


_ID = probatio.All(str, probatio.Match(re.compile(ID_PATTERN)))
# The webhook id the message is meant for; compared, never stored or logged.
_RECIPIENT = _text(RECIPIENT_MAX_LEN)
_OPERATOR = probatio.Schema(
    {
        probatio.Required("id"): _text(128),
        probatio.Optional("name"): _truncated(OPERATOR_NAME_MAX_LEN),
    },
    extra=probatio.REMOVE_EXTRA,
)
REQUESTED_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required("type"): TYPE_REQUESTED,
        probatio.Required("activation_id"): _ID,
        probatio.Required("incident"): probatio.Schema(
            {
                probatio.Required("id"): _text(128),
                probatio.Required("type"): probatio.All(
                    _text(INCIDENT_TYPE_MAX_LEN),
                    probatio.Match(re.compile(INCIDENT_TYPE_PATTERN)),
                ),
                probatio.Optional("description"): _text(500, min_len=0),
                probatio.Required("location"): probatio.Schema(
                    {
                        probatio.Required("lat"): _number(-90, 90),
                        probatio.Required("lon"): _number(-180, 180),
                    },
                    extra=probatio.REMOVE_EXTRA,
                ),
                probatio.Optional("radius_m"): _number(1, MAX_INCIDENT_RADIUS_M),
            },
            extra=probatio.REMOVE_EXTRA,
        ),
        probatio.Required("operator"): _OPERATOR,
        probatio.Required("legal_basis"): _text(64),
        probatio.Optional("requested_duration_s"): _integer(
            MIN_REQUESTED_DURATION_S, MAX_REQUESTED_DURATION_S
        ),
        probatio.Optional("recipient"): _RECIPIENT,
        probatio.Optional("accept_streams"): _stream_kinds,
    },
    extra=probatio.REMOVE_EXTRA,
)
ENDED_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required("type"): TYPE_ENDED,
        probatio.Required("activation_id"): _ID,
        probatio.Required("operator"): _OPERATOR,
        probatio.Optional("recipient"): _RECIPIENT,
    },
    extra=probatio.REMOVE_EXTRA,
)


class InvalidPayloadError(Exception):
    """The body fails the contract's field rules; `detail` names the field."""

    def __init__(self, detail: str) -> None:
        """Keep the detail for the 400 body."""
        super().__init__(detail)
        self.detail = detail


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_payload(body: bytes) -> ActivationRequest | ActivationEnd:
    """Validate the body against the contract's field rules."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidPayloadError("body is not UTF-8") from err
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise InvalidPayloadError("body is not valid JSON") from err
    if not isinstance(data, dict):
        raise InvalidPayloadError("body is not a JSON object")
    try:
        # JSON escapes can spell lone surrogates, which no UTF-8 record can hold.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidPayloadError("body contains an invalid unicode escape") from err
    message_type = data.get("type")
    schema = (
        {TYPE_REQUESTED: REQUESTED_SCHEMA, TYPE_ENDED: ENDED_SCHEMA}.get(message_type)
        if isinstance(message_type, str)
        else None
    )
    if schema is None:
        raise InvalidPayloadError(f"type: expected {TYPE_REQUESTED} or {TYPE_ENDED}")
    try:
        valid = schema(data)
    except probatio.MultipleInvalid as err:
        error = err.errors[0]
        field = ".".join(str(part) for part in error.path) or "body"
        raise InvalidPayloadError(f"{field}: {error.error_message}") from err
    operator = Operator(id=valid["operator"]["id"], name=valid["operator"].get("name"))
    recipient = valid.get("recipient")
    if valid["type"] == TYPE_ENDED:
        return ActivationEnd(
            activation_id=valid["activation_id"], operator=operator, recipient=recipient
        )
    incident = valid["incident"]
    return ActivationRequest(
        activation_id=valid["activation_id"],
        incident=Incident(
            id=incident["id"],
            type=incident["type"],
            description=incident.get("description"),
            location=Location(**incident["location"]),
            radius_m=incident.get("radius_m"),
        ),
        operator=operator,
        legal_basis=valid["legal_basis"],
        requested_duration_s=valid.get("requested_duration_s"),
        recipient=recipient,
        accept_streams=valid.get("accept_streams", frozenset({STREAM_HLS})),
    )


# The one place a refusal becomes an HTTP status.
REFUSAL_STATUS: Final[dict[RefusalReason, HTTPStatus]] = {
    RefusalReason.CONSENT_OFF: HTTPStatus.FORBIDDEN,
    RefusalReason.CONSENT_EXPIRED: HTTPStatus.FORBIDDEN,
    RefusalReason.INCIDENT_TYPE_NOT_ALLOWED: HTTPStatus.FORBIDDEN,
    RefusalReason.OUTSIDE_AREA: HTTPStatus.FORBIDDEN,
    RefusalReason.RATE_LIMITED: HTTPStatus.FORBIDDEN,
    RefusalReason.INVALID_PAYLOAD: HTTPStatus.BAD_REQUEST,
    RefusalReason.DUPLICATE_MESSAGE: HTTPStatus.CONFLICT,
    RefusalReason.UNKNOWN_ACTIVATION: HTTPStatus.NOT_FOUND,
    RefusalReason.ALREADY_ACTIVE: HTTPStatus.CONFLICT,
    RefusalReason.CAMERA_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    RefusalReason.NO_EXTERNAL_URL: HTTPStatus.SERVICE_UNAVAILABLE,
    RefusalReason.AUDIT_LOG_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    RefusalReason.WRONG_RECIPIENT: HTTPStatus.UNAUTHORIZED,
    RefusalReason.RECIPIENT_REQUIRED: HTTPStatus.UNAUTHORIZED,
}
STORE_FULL_DETAIL: Final = "too many messages within the timestamp tolerance"


def _reply(http_status: HTTPStatus, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=http_status, body=json_bytes(body), content_type=JSON_TYPE
    )


def _error(http_status: HTTPStatus, error: str, **extra: Any) -> web.Response:
    return _reply(http_status, {"error": error, **extra})


def _grant_body(grant: Grant) -> dict[str, Any]:
    urls = {"stream_url": grant.stream_url, "webrtc_url": grant.webrtc_url}
    return {
        "status": "active",
        "activation_id": grant.activation_id,
        # A kind that was not granted is absent, never null.
        **{key: url for key, url in urls.items() if url is not None},
        "started_at": contract_time(grant.started),
        "expires_at": contract_time(grant.expires),
        "receipt": grant.receipt,
    }


def respond(outcome: Outcome) -> web.Response:
    """Answer an outcome with the contract's status and body."""
    match outcome:
        case Granted(grant=grant, created=created):
            status = HTTPStatus.CREATED if created else HTTPStatus.OK
            return _reply(status, _grant_body(grant))
        case Ended(activation_id=activation_id):
            return _reply(
                HTTPStatus.OK, {"status": "ended", "activation_id": activation_id}
            )
        case Refused(reason=reason, detail=detail, activation_id=activation_id):
            extra = {
                key: value
                for key, value in (("detail", detail), ("activation_id", activation_id))
                if value is not None
            }
            return _error(REFUSAL_STATUS[reason], reason, **extra)


async def _read_bounded(request: web.Request) -> bytes | None:
    """Read at most MAX_BODY_BYTES; None when the body is larger.

    Raise InvalidPayloadError when aiohttp cannot undo the Content-Encoding
    (invalid or truncated gzip or deflate). A request relayed by Home
    Assistant Cloud (or the websocket API) is a MockRequest: no declared
    length, and a fresh reader each time `content` is read, so it is read
    once.
    """
    declared = getattr(request, "content_length", None)
    if declared is not None and declared > MAX_BODY_BYTES:
        return None
    content = request.content
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await content.read(MAX_BODY_BYTES + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
    except web.RequestPayloadError as err:
        # Marked read, or aiohttp would drain it after the answer and log the
        # decoding error again at ERROR level.
        content.feed_eof()
        raise InvalidPayloadError(UNDECODABLE_BODY) from err
    return b"".join(chunks)


def _recipient_refusal(
    entry: RtccShareConfigEntry, payload: ActivationRequest | ActivationEnd
) -> RefusalReason | None:
    """Refuse a message signed for another home, or unaddressed when required.

    A captured message is then worthless at every other home pinning the
    same city key. The webhook id itself is never logged or audited.
    """
    if (recipient := payload.recipient) is None:
        if entry.options.get(CONF_REQUIRE_RECIPIENT, False):
            return RefusalReason.RECIPIENT_REQUIRED
        return None
    if hmac.compare_digest(recipient.encode(), entry.data[CONF_WEBHOOK_ID].encode()):
        return None
    return RefusalReason.WRONG_RECIPIENT


def _is_json(request: web.Request) -> bool:
    # Parsed from the header as aiohttp parses it: a MockRequest (Home
    # Assistant Cloud's relay) has the header but not aiohttp's properties.
    media_type, params = parse_content_type(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if media_type != JSON_TYPE:
        return False
    charset = params.get("charset")
    return charset is None or charset.lower() in ("utf-8", "utf8")


async def async_handle_webhook(
    entry: RtccShareConfigEntry, request: web.Request
) -> web.Response:
    """Answer one city request with the contract's response."""
    try:
        body = await _read_bounded(request)
    except InvalidPayloadError as err:
        # Before authentication: counted and logged like any unsigned request.
        entry.runtime_data.rejections.async_note_unauthenticated()
        response = _error(HTTPStatus.BAD_REQUEST, "invalid_payload", detail=err.detail)
        # aiohttp's parser cannot read past the broken body.
        response.force_close()
        return response
    if body is None:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    if not _is_json(request):
        return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    data = entry.runtime_data
    now = dt_util.utcnow().timestamp()
    try:
        message = data.verifier.verify(request.headers, body, now)
    except AuthenticationError as err:
        data.rejections.async_note_unauthenticated()
        return _error(HTTPStatus.UNAUTHORIZED, err.code)
    activations = data.activations
    try:
        fresh = data.seen_ids.check_and_add(message, now)
    except SeenIdStoreFullError:
        # Forgetting a live id would allow its replay: refuse new ones instead.
        return respond(
            await activations.async_refuse(
                RefusalReason.RATE_LIMITED, detail=STORE_FULL_DETAIL
            )
        )
    if not fresh:
        return respond(await activations.async_refuse(RefusalReason.DUPLICATE_MESSAGE))
    # On disk before anything acts on it: a replay after a crash is refused too.
    await data.seen_ids.async_flush()
    try:
        payload = parse_payload(body)
    except InvalidPayloadError as err:
        return respond(
            await activations.async_refuse(
                RefusalReason.INVALID_PAYLOAD, detail=err.detail
            )
        )
    if (misaddressed := _recipient_refusal(entry, payload)) is not None:
        request_payload = payload if isinstance(payload, ActivationRequest) else None
        return respond(await activations.async_refuse(misaddressed, request_payload))
    if isinstance(payload, ActivationEnd):
        return respond(await activations.async_end(payload))
    return respond(await activations.async_request(payload))


def async_register(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Register the entry's webhook (POST only, reachable from the internet)."""

    async def handle(
        hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        try:
            return await async_handle_webhook(entry, request)
        except Exception as err:  # noqa: BLE001 - the contract promises JSON, always
            _LOGGER.error(
                "Unexpected error answering an activation request: %s",
                type(err).__name__,
            )
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")

    webhook.async_register(
        hass,
        DOMAIN,
        entry.title,
        entry.data[CONF_WEBHOOK_ID],
        handle,
        local_only=False,
        allowed_methods=["POST"],
    )


def async_unregister(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Remove the entry's webhook."""
    webhook.async_unregister(hass, entry.data[CONF_WEBHOOK_ID])
