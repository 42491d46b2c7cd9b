"""The WebRTC share's WHEP endpoint: offer, trickle and delete over HTTP.

A POST's offer is negotiated here with the shared camera, through Home
Assistant's camera WebRTC API; the share and its viewer sessions are in
`webrtc_share`, the SDP rules in `webrtc_sdp`.
"""

import asyncio
from collections.abc import Callable
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
from homeassistant.helpers.http import KEY_HASS
from webrtc_models import RTCIceCandidateInit

from ..const import DOMAIN
from . import tokens
from .http import CORS, LiveHttpError, LiveView, not_found, read_body
from .webrtc_sdp import (
    END_OF_CANDIDATES,
    Plan,
    SdpError,
    build_answer,
    has_candidates,
    parse_sdpfrag,
    plan_offer,
)
from .webrtc_share import ViewerSession, WebRtcShare

_LOGGER = logging.getLogger(__name__)

SDP_TYPE: Final = "application/sdp"
SDPFRAG_TYPE: Final = "application/trickle-ice-sdpfrag"
MAX_SESSIONS: Final = 4
ANSWER_TIMEOUT_S: Final = 10.0
# How long candidates trickled by the camera after its answer are awaited at
# most, and how long it must stay quiet once it gave one for every transport.
CANDIDATE_WAIT_S: Final = 2.0
CANDIDATE_QUIET_S: Final = 0.2

_SESSION: Final = r"{session:[A-Za-z0-9_-]{22}}"
_PREFLIGHT: Final = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}


def _bad(detail: str) -> LiveHttpError:
    return LiveHttpError(HTTPStatus.BAD_REQUEST, "invalid_sdp", detail)


def _camera_failed(detail: str) -> LiveHttpError:
    return LiveHttpError(HTTPStatus.SERVICE_UNAVAILABLE, "camera_unavailable", detail)


@callback
def async_setup_view(hass: HomeAssistant) -> None:
    """Register the views once for all entries (from the integration's setup)."""
    hass.http.register_view(WhepEndpointView())
    hass.http.register_view(WhepSessionView())


async def _read_sdp(request: web.Request, content_type: str) -> str:
    try:
        return (await read_body(request, content_type)).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("not UTF-8 text") from None


def _share(request: web.Request, token: str) -> WebRtcShare:
    share = tokens.get(request.app[KEY_HASS], WebRtcShare, token)
    if share is None:
        raise not_found()
    return share


class _WhepView(LiveView):
    """A WHEP URL: CORS answered here (Home Assistant's cannot expose `Location`)."""

    cors_allowed = False

    async def options(self, request: web.Request, **_: str) -> web.Response:
        """Answer a CORS preflight from any origin."""
        return web.Response(status=HTTPStatus.NO_CONTENT, headers=_PREFLIGHT)


class WhepEndpointView(_WhepView):
    """`POST` an offer to a share's endpoint."""

    url = tokens.WEBRTC.route()
    name = f"api:{DOMAIN}:whep"

    async def post(self, request: web.Request, token: str) -> web.Response:
        """Open a viewer session: 201 with the answer and its Location."""
        try:
            share = _share(request, token)
            # Cheap refusals before the offer is read and parsed.
            _check_room(share)
            plan = plan_offer(
                await _read_sdp(request, SDP_TYPE),
                share_audio=share.share_audio,
                allow_private=share.lab_mode,
            )
            session = _open(share, plan, request.remote or "unknown")
            answer = await _negotiate(share, session)
        except SdpError as err:
            return _bad(str(err)).response()
        except LiveHttpError as err:
            return err.response()
        headers = {
            **CORS,
            "Content-Type": SDP_TYPE,
            "Location": f"{share.path}/{session.id}",
        }
        response = web.Response(
            status=HTTPStatus.CREATED, body=answer.encode(), headers=headers
        )
        # Computed per answer: TURN credentials are derived for this share.
        for link in share.ice.links(share.expires):
            response.headers.add("Link", link)
        return response


class WhepSessionView(_WhepView):
    """`PATCH` (trickle) or `DELETE` a viewer session."""

    url = f"{tokens.WEBRTC.route()}/{_SESSION}"
    name = f"api:{DOMAIN}:whep:session"

    async def patch(
        self, request: web.Request, token: str, session: str
    ) -> web.Response:
        """Pass the city's candidates on to the camera: 204."""
        try:
            share, viewer = _session(request, token, session)
            trickle = parse_sdpfrag(await _read_sdp(request, SDPFRAG_TYPE))
            if trickle.ufrag not in (None, viewer.plan.ufrag):
                raise _bad("ICE restarts are not supported: POST a new offer")
            camera = _camera(share)
            for candidate in viewer.plan.camera_candidates(trickle):
                await camera.async_on_webrtc_candidate(
                    viewer.camera_session_id, candidate
                )
        except SdpError as err:
            return _bad(str(err)).response()
        except LiveHttpError as err:
            return err.response()
        except HomeAssistantError:
            return _camera_failed("the camera refused the candidate").response()
        return web.Response(status=HTTPStatus.NO_CONTENT, headers=CORS)

    async def delete(
        self, request: web.Request, token: str, session: str
    ) -> web.Response:
        """End the viewer session: 200, then 404."""
        try:
            share, viewer = _session(request, token, session)
        except LiveHttpError as err:
            return err.response()
        share.async_end_session(viewer, "deleted")
        return web.Response(status=HTTPStatus.OK, headers=CORS)


def _session(
    request: web.Request, token: str, session: str
) -> tuple[WebRtcShare, ViewerSession]:
    share = _share(request, token)
    viewer = share.sessions.get(session)
    if viewer is None or not viewer.opened:
        raise not_found()
    return share, viewer


def _camera(share: WebRtcShare) -> Camera:
    try:
        return share.camera()
    except HomeAssistantError:
        raise _camera_failed("the camera is unavailable") from None


def _check_room(share: WebRtcShare) -> None:
    """Refuse a revoked share, or one whose sessions (negotiating too) are all taken."""
    if share.revoked:
        raise not_found()
    if len(share.sessions) >= MAX_SESSIONS:
        raise LiveHttpError(
            HTTPStatus.CONFLICT,
            "too_many_sessions",
            f"at most {MAX_SESSIONS} viewer sessions at once",
        )


def _open(share: WebRtcShare, plan: Plan, address: str) -> ViewerSession:
    """Reserve a slot: checked again, as the offer was read meanwhile."""
    _check_room(share)
    return share.add_session(plan, address)


async def _negotiate(share: WebRtcShare, session: ViewerSession) -> str:
    """Send the offer to the camera; return the answer with its candidates.

    Whatever ends the request (an answer, an error, a timeout, the client
    gone and the request cancelled), a session the city did not get is
    ended here, so its slot is free and the camera's session closed.
    """
    try:
        share.async_send_offer(
            _camera(share), session, _on_message(share, session), ANSWER_TIMEOUT_S
        )
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                answer = await asyncio.shield(session.answer)
        except TimeoutError:
            raise _camera_failed("the camera did not answer in time") from None
        if answer is not None and END_OF_CANDIDATES not in answer:
            await _gather(share, session, answer)
        if session.failed:
            raise _camera_failed("the camera refused the offer")
        if answer is None or session.id not in share.sessions:
            # The share ended while the camera was answering.
            raise not_found()
        city_answer = build_answer(session.plan, answer, session.candidates)
        share.async_opened(session)
    except SdpError as err:
        raise _camera_failed(str(err)) from None
    finally:
        if not session.opened:
            share.async_end_session(session, "refused")
    _LOGGER.debug("WebRTC viewer session opened on %s", share.camera_entity_id)
    return city_answer


async def _gather(share: WebRtcShare, session: ViewerSession, answer: str) -> None:
    """Wait for the candidates the camera trickles after its answer.

    Until the camera says it has no more, or it has given a candidate for
    every transport of the answer and then stayed quiet for
    CANDIDATE_QUIET_S (Ring never says it has no more), or CANDIDATE_WAIT_S
    have passed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANDIDATE_WAIT_S
    while session.id in share.sessions and not (session.gathered or session.failed):
        wait = deadline - loop.time()
        try:
            if has_candidates(build_answer(session.plan, answer, session.candidates)):
                wait = min(wait, CANDIDATE_QUIET_S)
        except SdpError:
            # No candidate mends a broken answer: it is refused at once.
            return
        if wait <= 0:
            return
        session.news.clear()
        try:
            async with asyncio.timeout(wait):
                await session.news.wait()
        except TimeoutError:
            return


def _on_message(
    share: WebRtcShare, session: ViewerSession
) -> Callable[[WebRTCMessage], None]:
    """Return the camera's message callback for this session."""

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
                session.gathered = True
            elif isinstance(candidate, RTCIceCandidateInit):
                session.candidates.append(candidate)
            else:
                session.candidates.append(RTCIceCandidateInit(candidate.candidate))
            session.news.set()
        elif isinstance(message, WebRTCError):
            if session.opened:
                share.async_end_session(session, "camera_ended")
            else:
                session.async_fail()

    return on_message
