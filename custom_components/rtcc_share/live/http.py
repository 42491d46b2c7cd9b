"""What every live view's HTTP endpoint shares: routes, CORS, body limits, errors.

The views are reached by the city's players under a share's token, without
Home Assistant's authentication. Their routes are added without Home
Assistant's request handler, which logs every path, token included, at debug
level (the level a resident turns on before filing an issue); they need
nothing else of it. aiohttp's access log, which Home Assistant's logger
settings can turn on, names every path too: the token is cut out of it.
"""

from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
import logging
import re
from typing import Final

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_ALLOW_ALL_CORS, HomeAssistantView

from ..const import DOMAIN, MAX_BODY_BYTES

METHODS: Final = ("get", "post", "patch", "delete", "options")

# Any origin may read the answers: the token is the only key.
CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link",
}


ACCESS_LOGGER: Final = "aiohttp.access"
# A live view's path up to its token, and the token.
_TOKEN_IN_PATH: Final = re.compile(rf"(/api/{DOMAIN}/(?:hls|whep)/)[A-Za-z0-9_-]+")


class _TokenRedactor(logging.Filter):
    """Cuts live views' tokens out of access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_PATH.sub(r"\1…", record.msg)
        for key, value in list(vars(record).items()):
            if key != "msg" and isinstance(value, str) and f"/api/{DOMAIN}/" in value:
                setattr(record, key, _TOKEN_IN_PATH.sub(r"\1…", value))
        return True


def redact_access_log() -> None:
    """Keep tokens out of aiohttp's access log (once per Home Assistant run)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, _TokenRedactor) for f in logger.filters):
        logger.addFilter(_TokenRedactor())


class LiveHttpError(Exception):
    """A request a live view refuses, with its status and error code."""

    def __init__(self, status: HTTPStatus, error: str, detail: str = "") -> None:
        """Keep the status, the contract's error code and a plain detail."""
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail

    def response(self, headers: Mapping[str, str] = CORS) -> web.Response:
        """Return the contract's JSON error body."""
        body = {"error": self.error} | ({"detail": self.detail} if self.detail else {})
        return web.json_response(body, status=self.status, headers=headers)


def not_found() -> LiveHttpError:
    """Return the error of a URL that leads to no live view (or no longer does)."""
    return LiveHttpError(HTTPStatus.NOT_FOUND, "not_found")


async def read_body(request: web.Request, content_type: str) -> bytes:
    """Return the request's body: of this media type, and at most 64 KiB."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise LiveHttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    if request.content_type != content_type:
        raise LiveHttpError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"expected {content_type}",
        )
    body = bytearray()
    # Chunked bodies too: count as they arrive.
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise LiveHttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large"
            )
    return bytes(body)


class LiveView(HomeAssistantView):
    """A view under a share's token: unauthenticated, kept out of HA's request log.

    With `cors_allowed`, Home Assistant's CORS for any origin is used;
    without it the view answers CORS itself (Home Assistant's cannot expose
    `Location`, and with `cors_allowed_origins` configured would claim the
    routes).
    """

    url: str
    requires_auth = False

    def register(
        self, hass: HomeAssistant, app: web.Application, router: web.UrlDispatcher
    ) -> None:
        """Add the routes, without Home Assistant's request handler."""
        routes = [
            router.add_route(method, self.url, _serve(hass, handler))
            for method in METHODS
            if (handler := getattr(self, method, None))
        ]
        if self.cors_allowed and (allow_cors := app.get(KEY_ALLOW_ALL_CORS)):
            for route in routes:
                allow_cors(route)


def _serve(
    hass: HomeAssistant, handler: Callable[..., Awaitable[web.StreamResponse]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if hass.is_stopping:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        return await handler(request, **request.match_info)

    return handle
