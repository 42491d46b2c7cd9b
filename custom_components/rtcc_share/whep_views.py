"""The WHEP endpoint: offer, trickle and delete over HTTP, with its own CORS.

A POST's offer is negotiated here with the shared camera, through Home
Assistant's camera WebRTC API; the share and its viewer sessions are in
`whep`. This is the only module of the live view that chooses HTTP statuses.
"""

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
import logging
from typing import Final

from aiohttp import web
from homeassistant.components.camera import Camera
from homeassistant.components.camera.webrtc import (
    WebRTCAnswer,
    WebRTCCandidate,
    WebRTCError,
    WebRTCMessage,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from webrtc_models import RTCIceCandidateInit

from .const import DOMAIN
from .whep import URL_PREFIX, ViewerSession, WhepShare, async_setup_shares, get_share
from .whep_sdp import (
    END_OF_CANDIDATES,
    Plan,
    SdpError,
    build_answer,
    parse_sdpfrag,
    plan_offer,
)

_LOGGER = logging.getLogger(__name__)

SDP_TYPE: Final = "application/sdp"
SDPFRAG_TYPE: Final = "application/trickle-ice-sdpfrag"
MAX_BODY_BYTES: Final = 64 * 1024
MAX_SESSIONS: Final = 4
ANSWER_TIMEOUT_S: Final = 10.0
# How long candidates trickled by the camera after its answer are awaited.
CANDIDATE_WAIT_S: Final = 2.0

_TOKEN: Final = r"{token:[A-Za-z0-9_-]{43}}"
_SESSION: Final = r"{session:[A-Za-z0-9_-]{22}}"
_CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link",
}
_PREFLIGHT: Final = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}


class WhepError(Exception):
    """A request the endpoint refuses, with its status and error code."""

    def __init__(self, status: HTTPStatus, error: str, detail: str = "") -> None:
        """Keep the status, the contract's error code and a plain detail."""
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def _bad(detail: str) -> WhepError:
    return WhepError(HTTPStatus.BAD_REQUEST, "invalid_sdp", detail)


def _camera_failed(detail: str) -> WhepError:
    return WhepError(HTTPStatus.SERVICE_UNAVAILABLE, "camera_unavailable", detail)


def _not_found() -> WhepError:
    return WhepError(HTTPStatus.NOT_FOUND, "not_found")


@callback
def async_setup_view(hass: HomeAssistant) -> None:
    """Register the views once for all entries (from the integration's setup)."""
    async_setup_shares(hass)
    hass.http.register_view(WhepEndpointView())
    hass.http.register_view(WhepSessionView())


def _json_error(err: WhepError) -> web.Response:
    body: dict[str, str] = {"error": err.error}
    if err.detail:
        body["detail"] = err.detail
    return web.json_response(body, status=err.status, headers=_CORS)


async def _read_body(request: web.Request, content_type: str) -> str:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise WhepError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    if request.content_type != content_type:
        raise WhepError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"expected {content_type}",
        )
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise WhepError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("not UTF-8 text") from None


def _share(request: web.Request, token: str) -> WhepShare:
    share = get_share(request.app[KEY_HASS], token)
    if share is None:
        raise _not_found()
    return share


class _WhepView(HomeAssistantView):
    """Token-scoped, unauthenticated, with CORS answered here.

    HA's own CORS (aiohttp_cors) cannot expose `Location`, and with
    `cors_allowed_origins` configured it would claim these routes too, so the
    routes are added without it and every response carries its own headers.
    """

    url: str
    requires_auth = False
    cors_allowed = False

    def register(
        self, hass: HomeAssistant, app: web.Application, router: web.UrlDispatcher
    ) -> None:
        """Add the routes, without HA's CORS handling or its request log.

        HA's request handler logs each path at debug level, which here holds
        the token; these routes need nothing else of it (no auth, plain
        responses).
        """
        for method in ("post", "patch", "delete", "options"):
            if handler := getattr(self, method, None):
                router.add_route(method, self.url, _serve(hass, handler))

    async def options(self, request: web.Request, **_: str) -> web.Response:
        """Answer a CORS preflight from any origin."""
        return web.Response(status=HTTPStatus.NO_CONTENT, headers=_PREFLIGHT)


def _serve(
    hass: HomeAssistant, handler: Callable[..., Awaitable[web.StreamResponse]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if hass.is_stopping:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        return await handler(request, **request.match_info)

    return handle


class WhepEndpointView(_WhepView):
    """`POST` an offer to a share's endpoint."""

    url = f"{URL_PREFIX}/{_TOKEN}"
    name = f"api:{DOMAIN}:whep"

    async def post(self, request: web.Request, token: str) -> web.Response:
        """Open a viewer session: 201 with the answer and its Location."""
        try:
            share = _share(request, token)
            # Cheap refusals before the offer is read and parsed.
            _check_room(share)
            plan = plan_offer(
                await _read_body(request, SDP_TYPE),
                share_audio=share.share_audio,
                allow_private=share.lab_mode,
            )
            session = _open(share, plan, request.remote or "unknown")
            answer = await _negotiate(share, session)
        except SdpError as err:
            return _json_error(_bad(str(err)))
        except WhepError as err:
            return _json_error(err)
        headers = {
            **_CORS,
            "Content-Type": SDP_TYPE,
            "Location": f"{share.path}/{session.id}",
        }
        response = web.Response(
            status=HTTPStatus.CREATED, body=answer.encode(), headers=headers
        )
        for server in share.ice_servers:
            response.headers.add("Link", server.link())
        return response


class WhepSessionView(_WhepView):
    """`PATCH` (trickle) or `DELETE` a viewer session."""

    url = f"{URL_PREFIX}/{_TOKEN}/{_SESSION}"
    name = f"api:{DOMAIN}:whep:session"

    async def patch(
        self, request: web.Request, token: str, session: str
    ) -> web.Response:
        """Pass the city's candidates on to the camera: 204."""
        try:
            share, viewer = _session(request, token, session)
            trickle = parse_sdpfrag(await _read_body(request, SDPFRAG_TYPE))
            if trickle.ufrag not in (None, viewer.plan.ufrag):
                raise _bad("ICE restarts are not supported: POST a new offer")
            camera = _camera(share)
            for candidate in viewer.plan.camera_candidates(trickle):
                await camera.async_on_webrtc_candidate(
                    viewer.camera_session_id, candidate
                )
        except SdpError as err:
            return _json_error(_bad(str(err)))
        except WhepError as err:
            return _json_error(err)
        except HomeAssistantError:
            return _json_error(_camera_failed("the camera refused the candidate"))
        return web.Response(status=HTTPStatus.NO_CONTENT, headers=_CORS)

    async def delete(
        self, request: web.Request, token: str, session: str
    ) -> web.Response:
        """End the viewer session: 200, then 404."""
        try:
            share, viewer = _session(request, token, session)
        except WhepError as err:
            return _json_error(err)
        share.async_end_session(viewer, "deleted")
        return web.Response(status=HTTPStatus.OK, headers=_CORS)


def _session(
    request: web.Request, token: str, session: str
) -> tuple[WhepShare, ViewerSession]:
    share = _share(request, token)
    viewer = share.sessions.get(session)
    if viewer is None or not viewer.opened:
        raise _not_found()
    return share, viewer


def _camera(share: WhepShare) -> Camera:
    try:
        return share.camera()
    except HomeAssistantError:
        raise _camera_failed("the camera is unavailable") from None


def _check_room(share: WhepShare) -> None:
    """Refuse a revoked share, or one whose sessions (negotiating too) are all taken."""
    if share.revoked:
        raise _not_found()
    if len(share.sessions) >= MAX_SESSIONS:
        raise WhepError(
            HTTPStatus.CONFLICT,
            "too_many_sessions",
            f"at most {MAX_SESSIONS} viewer sessions at once",
        )


def _open(share: WhepShare, plan: Plan, address: str) -> ViewerSession:
    """Reserve a slot: checked again, as the offer was read meanwhile."""
    _check_room(share)
    return share.add_session(plan, address)


async def _negotiate(share: WhepShare, session: ViewerSession) -> str:
    """Send the offer to the camera; return the answer with its candidates."""

    @callback
    def on_message(message: WebRTCMessage) -> None:
        if session.id not in share.sessions:
            return
        if isinstance(message, WebRTCAnswer):
            if not session.answer.done():
                session.answer.set_result(message.answer)
        elif isinstance(message, WebRTCCandidate):
            candidate = message.candidate
            if not candidate.candidate:
                session.end_of_candidates.set()
            elif isinstance(candidate, RTCIceCandidateInit):
                session.candidates.append(candidate)
            else:
                session.candidates.append(RTCIceCandidateInit(candidate.candidate))
        elif isinstance(message, WebRTCError):
            if session.opened:
                share.async_end_session(session, "camera_ended")
            else:
                session.failed = True
                if not session.answer.done():
                    session.answer.set_result(None)
                session.end_of_candidates.set()

    try:
        camera = _camera(share)
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            await camera.async_handle_async_webrtc_offer(
                session.plan.camera_offer, session.camera_session_id, on_message
            )
            answer = await asyncio.shield(session.answer)
        if answer is not None and END_OF_CANDIDATES not in answer:
            async with asyncio.timeout(CANDIDATE_WAIT_S):
                await session.end_of_candidates.wait()
    except TimeoutError:
        if not session.answer.done():
            share.async_end_session(session, "no_answer")
            raise _camera_failed("the camera did not answer in time") from None
    except WhepError:
        share.async_end_session(session, "refused")
        raise
    except Exception as err:  # noqa: BLE001 - any camera fault is a refusal
        _LOGGER.warning(
            "%s refused a WebRTC offer: %s",
            share.camera_entity_id,
            type(err).__name__,
        )
        share.async_end_session(session, "refused")
        raise _camera_failed("the camera refused the offer") from None
    answer = session.answer.result()
    if session.id not in share.sessions and not session.failed:
        raise _not_found()
    try:
        if session.failed or answer is None:
            raise _camera_failed("the camera refused the offer")
        city_answer = build_answer(session.plan, answer, session.candidates)
    except SdpError as err:
        share.async_end_session(session, "refused")
        raise _camera_failed(str(err)) from None
    except WhepError:
        share.async_end_session(session, "refused")
        raise
    session.opened = True
    _LOGGER.debug("WebRTC viewer session opened on %s", share.camera_entity_id)
    share.changed()
    return city_answer
