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

from aiohttp import web
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
)
from .models import (
    ActivationEnd,
    ActivationRequest,
    Incident,
    Location,
    Operator,
    RtccShareConfigEntry,
)
from .session import ShareRefusedError
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
    )


def _reply(http_status: HTTPStatus, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=http_status, body=json_bytes(body), content_type=JSON_TYPE
    )


def _ended(activation_id: str) -> web.Response:
    return _reply(HTTPStatus.OK, {"status": "ended", "activation_id": activation_id})


def _error(http_status: HTTPStatus, error: str, **extra: Any) -> web.Response:
    return _reply(http_status, {"error": error, **extra})


async def _read_bounded(request: web.Request) -> bytes | None:
    """Read at most MAX_BODY_BYTES; None when the body is larger.

    Raise InvalidPayloadError when aiohttp cannot undo the Content-Encoding
    (invalid or truncated gzip or deflate).
    """
    declared = getattr(request, "content_length", None)
    if declared is not None and declared > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(MAX_BODY_BYTES + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
    except web.RequestPayloadError as err:
        # Marked read, or aiohttp would drain it after the answer and log the
        # decoding error again at ERROR level.
        request.content.feed_eof()
        raise InvalidPayloadError(UNDECODABLE_BODY) from err
    return b"".join(chunks)


async def _async_check_recipient(
    entry: RtccShareConfigEntry, payload: ActivationRequest | ActivationEnd
) -> web.Response | None:
    """Refuse a message signed for another home, or unaddressed when required.

    A captured message is then worthless at every other home pinning the
    same city key. The webhook id itself is never logged or audited.
    """
    recipient = payload.recipient
    if recipient is None:
        if not entry.options.get(CONF_REQUIRE_RECIPIENT, False):
            return None
    elif hmac.compare_digest(recipient.encode(), entry.data[CONF_WEBHOOK_ID].encode()):
        return None
    session = entry.runtime_data.session
    request = payload if isinstance(payload, ActivationRequest) else None
    if recipient is None:
        await session.async_record_refusal("recipient_required", request)
        return _error(HTTPStatus.UNAUTHORIZED, "recipient_required")
    await session.async_record_refusal("wrong_recipient", request)
    return _error(HTTPStatus.UNAUTHORIZED, "wrong_recipient")


def _is_json(request: web.Request) -> bool:
    if request.content_type != JSON_TYPE:
        return False
    charset = request.charset
    return charset is None or charset.lower() in ("utf-8", "utf8")


async def async_handle_webhook(
    entry: RtccShareConfigEntry, request: web.Request
) -> web.Response:
    """Answer one city request with the contract's response."""
    try:
        body = await _read_bounded(request)
    except InvalidPayloadError as err:
        # Before authentication: counted and logged like any unsigned request.
        entry.runtime_data.session.async_note_rejection()
        response = _error(HTTPStatus.BAD_REQUEST, "invalid_payload", detail=err.detail)
        # aiohttp's parser cannot read past the broken body.
        response.force_close()
        return response
    if body is None:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    if not _is_json(request):
        return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    data = entry.runtime_data
    session = data.session
    now = dt_util.utcnow().timestamp()
    try:
        message = data.verifier.verify(request.headers, body, now)
    except AuthenticationError as err:
        session.async_note_rejection()
        return _error(HTTPStatus.UNAUTHORIZED, err.code)
    try:
        fresh = data.seen_ids.check_and_add(message, now)
    except SeenIdStoreFullError:
        # Forgetting a live id would allow its replay: refuse new ones instead.
        await session.async_record_refusal("rate_limited")
        return _error(
            HTTPStatus.FORBIDDEN,
            "rate_limited",
            detail="too many messages within the timestamp tolerance",
        )
    if not fresh:
        await session.async_record_refusal("duplicate_message")
        return _error(HTTPStatus.CONFLICT, "duplicate_message")
    # On disk before anything acts on it: a replay after a crash is refused too.
    await data.seen_ids.async_flush()
    try:
        payload = parse_payload(body)
    except InvalidPayloadError as err:
        await session.async_record_refusal("invalid_payload")
        return _error(HTTPStatus.BAD_REQUEST, "invalid_payload", detail=err.detail)
    if (refused := await _async_check_recipient(entry, payload)) is not None:
        return refused
    try:
        if isinstance(payload, ActivationEnd):
            await session.async_end_by_city(payload)
            return _ended(payload.activation_id)
        created, live = await session.async_activate(payload)
    except ShareRefusedError as err:
        if err.error == "ended":
            return _ended(payload.activation_id)
        return _error(err.status, err.error, **err.extra)
    return _reply(HTTPStatus.CREATED if created else HTTPStatus.OK, live.response())


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
