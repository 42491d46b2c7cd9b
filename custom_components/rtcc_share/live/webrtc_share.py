"""The WebRTC live view: one share per activation over Home Assistant's camera WebRTC API.

The home relays signalling only. The city's offer goes to the camera entity's
`async_handle_async_webrtc_offer` (a native implementation such as Ring's or
Nest's, or a registered WebRTC provider such as go2rtc); the media flows from
wherever the camera's answer points, straight to the city. Each share has its
own unguessable token; every URL under it answers 404 once it is revoked.

This module keeps the shares and their viewer sessions; the HTTP endpoint
(WHEP) is in `webrtc_view`, the SDP checks and rewrites the contract requires
in `webrtc_sdp`.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
import logging
import secrets
from typing import Any

from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import StreamType
from homeassistant.components.camera.helper import get_camera_from_entity_id
from homeassistant.components.camera.webrtc import WebRTCSendMessage
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid
from webrtc_models import RTCIceCandidateInit

from ..const import DOMAIN
from . import tokens
from .ice import IceConfig
from .viewers import SessionLog, Throttle, session_record
from .webrtc_sdp import Plan

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class ViewerSession:
    """One city viewer's WebRTC session."""

    id: str
    camera_session_id: str
    address: str
    plan: Plan
    start: datetime
    # True once the city has its 201: only then is it a viewer.
    opened: bool = False
    # The camera refused or ended it before the 201.
    failed: bool = False
    # The camera's answer; None if the session ended (or was refused) first.
    answer: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    candidates: list[RTCIceCandidateInit] = field(default_factory=list)
    # The camera said it has no more candidates.
    gathered: bool = False
    # Set when a candidate, the end of candidates, a refusal or the end comes.
    news: asyncio.Event = field(default_factory=asyncio.Event)

    @callback
    def async_fail(self) -> None:
        """The camera refused the offer (or ended the session before the 201)."""
        self.failed = True
        self.async_wake()

    @callback
    def async_wake(self) -> None:
        """Wake the POST waiting for the answer or for candidates."""
        if not self.answer.done():
            self.answer.set_result(None)
        self.news.set()


@dataclass(slots=True)
class WebRtcShare:
    """One activation's WHEP endpoint and the log of its viewer sessions."""

    hass: HomeAssistant
    camera_entity_id: str
    share_audio: bool
    # The share's end: TURN credentials handed out expire with it.
    expires: datetime
    ice: IceConfig
    # Lab mode (`allow_http_stream_url`): candidates for private addresses cross.
    lab_mode: bool = False
    token: str = field(default_factory=tokens.WEBRTC.new)
    sessions: dict[str, ViewerSession] = field(default_factory=dict)
    log: SessionLog = field(default_factory=SessionLog)
    revoked: bool = False
    # Tells the resident that viewer sessions opened or ended.
    viewers_changed: Throttle = field(init=False)

    def __post_init__(self) -> None:
        """Throttle the viewer count's updates."""
        self.viewers_changed = Throttle(self.hass)

    @property
    def path(self) -> str:
        """Return the WHEP endpoint's path (no host)."""
        return f"{tokens.WEBRTC.prefix}/{self.token}"

    @property
    def viewer_count(self) -> int:
        """Return how many viewer sessions are open."""
        return sum(1 for s in self.sessions.values() if s.opened)

    def viewer_summary(self) -> list[dict[str, Any]]:
        """Return the viewer sessions by start (the first ones; the rest summed)."""
        return self.log.summary(
            [
                (s.start, session_record(s.address, s.start, None, None))
                for s in self.sessions.values()
                if s.opened
            ]
        )

    def camera(self) -> Camera:
        """Return the shared camera entity; HomeAssistantError if it is gone."""
        return get_camera_from_entity_id(self.hass, self.camera_entity_id)

    def add_session(self, plan: Plan, address: str) -> ViewerSession:
        """Add a viewer session still to be negotiated with the camera."""
        session = ViewerSession(
            id=secrets.token_urlsafe(16),
            camera_session_id=ulid(),
            address=address,
            plan=plan,
            start=dt_util.utcnow(),
        )
        self.sessions[session.id] = session
        return session

    @callback
    def async_opened(self, session: ViewerSession) -> None:
        """The city has its answer: the session is a viewer from now."""
        session.opened = True
        self.viewers_changed()

    @callback
    def async_send_offer(
        self,
        camera: Camera,
        session: ViewerSession,
        send_message: WebRTCSendMessage,
        timeout: float,
    ) -> None:
        """Hand the offer to the camera, whatever then happens to the request."""
        self.hass.async_create_background_task(
            self._async_offer(camera, session, send_message, timeout),
            f"{DOMAIN} WebRTC offer",
            eager_start=True,
        )

    async def _async_offer(
        self,
        camera: Camera,
        session: ViewerSession,
        send_message: WebRTCSendMessage,
        timeout: float,
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                await camera.async_handle_async_webrtc_offer(
                    session.plan.camera_offer, session.camera_session_id, send_message
                )
        except Exception as err:  # noqa: BLE001 - any camera fault is a refusal
            _LOGGER.warning(
                "%s refused a WebRTC offer: %s",
                self.camera_entity_id,
                type(err).__name__,
            )
            session.async_fail()
        finally:
            if session.id not in self.sessions:
                # Ended while the camera was at it: a camera that registers
                # its session only as its handler returns (as Nest does) has
                # just opened it.
                _close_camera_session(self, session)

    @callback
    def async_end_session(self, session: ViewerSession, how: str) -> None:
        """Close one session at the camera and record how it ended."""
        if self.sessions.pop(session.id, None) is None:
            return
        # Wakes a POST still negotiating it.
        session.async_wake()
        _close_camera_session(self, session)
        if session.opened:
            self.log.add(session.address, session.start, dt_util.utcnow(), how)
            self.viewers_changed()

    @callback
    def revoke(self) -> None:
        """End access at once: every URL under the token answers 404 from now."""
        self.revoked = True
        tokens.remove(self.hass, self)

    async def async_teardown(self) -> None:
        """Close every session at the camera."""
        # The share's end tells the resident itself.
        self.viewers_changed.cancel()
        self.viewers_changed.target = None
        for session in list(self.sessions.values()):
            self.async_end_session(session, "share_ended")


def _close_camera_session(share: WebRtcShare, session: ViewerSession) -> None:
    try:
        share.camera().close_webrtc_session(session.camera_session_id)
    except Exception as err:  # noqa: BLE001 - a camera's fault must not stop a revoke
        _LOGGER.warning(
            "Closing a WebRTC session of %s failed: %s",
            share.camera_entity_id,
            type(err).__name__,
        )


def supports_webrtc(hass: HomeAssistant, camera_entity_id: str) -> bool:
    """Return whether the camera can stream over WebRTC in Home Assistant."""
    try:
        camera = get_camera_from_entity_id(hass, camera_entity_id)
    except HomeAssistantError:
        return False
    return StreamType.WEB_RTC in camera.camera_capabilities.frontend_stream_types


async def async_start(
    hass: HomeAssistant,
    camera_entity_id: str,
    *,
    share_audio: bool,
    expires: datetime,
    ice: IceConfig = IceConfig(),
    lab_mode: bool = False,
) -> WebRtcShare:
    """Open the activation's WHEP endpoint (no camera session until a POST)."""
    if not supports_webrtc(hass, camera_entity_id):
        raise HomeAssistantError(f"{camera_entity_id} cannot stream over WebRTC")
    for line, reason in ice.skipped:
        # The reason only: the line may hold a password.
        _LOGGER.warning(
            "ICE server on line %d of the options is not given to the city: %s",
            line,
            reason,
        )
    share = WebRtcShare(
        hass=hass,
        camera_entity_id=camera_entity_id,
        share_audio=share_audio,
        expires=expires,
        ice=ice,
        lab_mode=lab_mode,
    )
    tokens.add(hass, share)
    return share


async def async_revoke(hass: HomeAssistant, share: WebRtcShare) -> None:
    """End access at once: the token, then every camera session."""
    share.revoke()
    await share.async_teardown()
