"""The activation use case: grant a share, or end one, for an authenticated city.

A grant runs in the contract's order and fails closed: the resident's policy,
the camera's stream source, an address to give the city, the masked picture
when privacy masks are set and a way to keep audio out are all checked
before anything is granted; then the grant is
written to the audit log (no record, no stream), remembered, and only then
is the stream started. The answer is an outcome, never an HTTP status: that
is the webhook's to choose.
"""

from datetime import datetime, timedelta
import logging

from homeassistant.core import HomeAssistant
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.util import dt as dt_util

from .audit import AuditUnavailableError
from .const import (
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_SHARE_AUDIO,
    CONF_STREAM_KINDS,
    EVENT_GRANTED,
    EVENT_REFUSED,
    STREAM_HLS,
    STREAM_WEBRTC,
)
from .history import HistoryItem
from .live import hls_share, webrtc_share
from .live.ice import IceConfig
from .live.instant_start import InstantStart
from .live.masked_source import MaskedSource, MaskUnavailableError
from .live.masked_view import MaskedView
from .models import (
    ActivationEnd,
    ActivationRequest,
    AuditEvent,
    Ended,
    EndReason,
    Grant,
    Granted,
    Location,
    Outcome,
    RefusalReason,
    Refused,
    contract_time,
)
from .policy import decide, limits_from_options
from .rejections import Rejections
from .repair_issues import Repairs
from .session import LiveShare, ShareSession
from .source_camera import async_stream_source, police_view_entity_id

_LOGGER = logging.getLogger(__name__)

AUDIO_DETAIL = "the camera sends audio and sharing audio is off"
MASKS_DETAIL = "privacy masks need a stream source"


class Activations:
    """Grants and ends the activations of one camera."""

    def __init__(
        self,
        hass: HomeAssistant,
        session: ShareSession,
        rejections: Rejections,
        repairs: Repairs,
        masked: MaskedView,
        instant: InstantStart,
    ) -> None:
        """Act on the entry's session, with its privacy masks and instant start."""
        self._hass = hass
        self._session = session
        self._rejections = rejections
        self._repairs = repairs
        self._instant = instant
        self._masked = masked

    async def async_request(self, request: ActivationRequest) -> Outcome:
        """Grant the activation, repeat a live one, or refuse it."""
        session = self._session
        async with session.lock:
            # A test run makes way for a real activation (in _async_grant).
            if (live := session.live) is not None and not live.test:
                if live.request.activation_id == request.activation_id:
                    return Granted(grant=live.grant, created=False)
                return await self.async_refuse(
                    RefusalReason.ALREADY_ACTIVE,
                    request,
                    live_activation_id=live.request.activation_id,
                )
            if session.history.find(request.activation_id):
                return Ended(activation_id=request.activation_id)
            return await self._async_grant(request)

    async def async_end(self, message: ActivationEnd) -> Outcome:
        """End the activation the city names; it may have ended already."""
        session = self._session
        async with session.lock:
            live = session.live
            if (
                live
                and not live.test
                and live.request.activation_id == message.activation_id
            ):
                await session.async_end_locked(EndReason.ENDED_BY_CITY)
                return Ended(activation_id=message.activation_id)
        if session.history.find(message.activation_id) is None:
            return await self.async_refuse(
                RefusalReason.UNKNOWN_ACTIVATION,
                activation_id=message.activation_id,
                operator_id=message.operator.id,
            )
        return Ended(activation_id=message.activation_id)

    async def async_refuse(
        self,
        reason: RefusalReason,
        request: ActivationRequest | None = None,
        *,
        detail: str | None = None,
        live_activation_id: str | None = None,
        **ids: str,
    ) -> Refused:
        """Record an authenticated request that was refused, and tell the bus.

        Without a request, `ids` (activation and operator) identify it.
        """
        if self._rejections.admit_refusal(reason):
            if request is not None:
                ids = {
                    "activation_id": request.activation_id,
                    "incident_id": request.incident.id,
                    "incident_type": request.incident.type,
                    "operator_id": request.operator.id,
                }
            await self._session.audit.async_try_append(
                AuditEvent.ACTIVATION_REFUSED, reason=reason, **ids
            )
            self._session.fire(EVENT_REFUSED, "refused", reason=reason, **ids)
        return Refused(reason=reason, detail=detail, activation_id=live_activation_id)

    async def _async_grant(self, request: ActivationRequest) -> Outcome:
        session = self._session
        # Whole seconds: the share ends exactly at the advertised `expires_at`.
        now = dt_util.utcnow().replace(microsecond=0)
        decision = decide(
            consent_on=session.consent_on,
            consent_lapses_at=session.consent_lapses_at,
            limits=limits_from_options(session.options),
            home=Location(
                lat=self._hass.config.latitude, lon=self._hass.config.longitude
            ),
            request=request,
            now=now,
            history=session.history.past_shares(),
        )
        if decision.reason is not None:
            return await self.async_refuse(decision.reason, request)
        if self._masked.closed:
            return await self.async_refuse(RefusalReason.CAMERA_UNAVAILABLE, request)
        # With masks, every view is of the masked picture, or there is none.
        masked: MaskedSource | None = None
        if masks := self._masked.masks:
            masked = await self._masked.async_source()
            source = None if masked is None else masked.url
        else:
            source = await async_stream_source(
                self._hass, self._session.camera_entity_id
            )
        offered = self._offered(source, masked)
        if not (kinds := request.accept_streams & offered):
            return await self.async_refuse(
                RefusalReason.CAMERA_UNAVAILABLE,
                request,
                detail=f"this camera offers {' and '.join(sorted(offered))}"
                if offered
                else MASKS_DETAIL
                if masks and masked is None
                else None,
            )
        if (base_url := self.external_base_url()) is None:
            return await self.async_refuse(RefusalReason.NO_EXTERNAL_URL, request)
        if masked is not None:
            try:
                # Its first masked frame exists: the views start on a warm source.
                await masked.async_start()
            except MaskUnavailableError:
                _LOGGER.warning("Could not start the privacy-masked view")
                return await self.async_refuse(
                    RefusalReason.CAMERA_UNAVAILABLE, request
                )
        stream: hls_share.HlsShare | None = None
        # Instant start: the share reads the prebuffer, if it has the camera;
        # with masks, the masked source reads it, and the share only that.
        prebuffered = self._instant.share_source()
        direct = prebuffered if masked is None else None
        if source is not None and STREAM_HLS in kinds:
            try:
                stream = await hls_share.async_prepare(
                    self._hass,
                    session.camera_entity_id,
                    source if direct is None else direct.url,
                    share_audio=bool(session.options[CONF_SHARE_AUDIO]),
                    duration_s=decision.duration_s,
                    local=masked is not None or direct is not None,
                )
                if direct is not None:
                    direct.attach(stream.stream)
            except hls_share.AudioNotRemovableError:
                return await self.async_refuse(
                    RefusalReason.CAMERA_UNAVAILABLE, request, detail=AUDIO_DETAIL
                )
            except Exception as err:  # noqa: BLE001 - any camera fault refuses
                _LOGGER.warning(
                    "Could not open the shared stream: %s", type(err).__name__
                )
                return await self.async_refuse(
                    RefusalReason.CAMERA_UNAVAILABLE, request
                )
        expires = now + timedelta(seconds=decision.duration_s)
        # Only a test run can be live here: it ends, recorded, before the grant.
        await session.async_end_locked(EndReason.ACTIVATION_ARRIVED)
        try:
            record = await session.audit.async_append(
                AuditEvent.ACTIVATION_GRANTED,
                activation_id=request.activation_id,
                incident_id=request.incident.id,
                incident_type=request.incident.type,
                operator_id=request.operator.id,
                legal_basis=request.legal_basis,
                distance_m=round(decision.distance_m, 1),
                granted_duration_s=decision.duration_s,
                expires_at=contract_time(expires),
                streams=sorted(kinds),
                # What the city could see: these rectangles were black.
                privacy_masks=[list(mask) for mask in masks],
                # What the city may get from before the grant.
                **(
                    {}
                    if prebuffered is None or (stream is None and masked is None)
                    else prebuffered.audit_fields()
                ),
            )
        except AuditUnavailableError:
            if stream is not None:
                await hls_share.async_revoke(self._hass, stream)
            return await self.async_refuse(RefusalReason.AUDIT_LOG_UNAVAILABLE, request)
        item = HistoryItem(
            activation_id=request.activation_id, started=now, expires=expires
        )
        await session.async_remember(item)
        try:
            webrtc = await self._async_open(
                stream, STREAM_WEBRTC in kinds, expires, masked=masked is not None
            )
        except Exception as err:  # noqa: BLE001 - any camera fault ends the grant
            _LOGGER.warning("Could not start the shared stream: %s", type(err).__name__)
            # Granted and recorded: the id has ended and counts against the day.
            await session.async_close(item, EndReason.CAMERA_UNAVAILABLE)
            return Refused(reason=RefusalReason.CAMERA_UNAVAILABLE)
        grant = Grant(
            activation_id=request.activation_id,
            stream_url=None if stream is None else base_url + stream.path,
            webrtc_url=None if webrtc is None else base_url + webrtc.path,
            started=now,
            expires=expires,
            receipt=record.receipt,
        )
        session.async_go_live(
            LiveShare(
                request=request,
                grant=grant,
                stream=stream,
                webrtc=webrtc,
                item=item,
                masked=masked,
            )
        )
        if not session.consent_on:
            # Consent was withdrawn while the share was being set up.
            await session.async_end_locked(EndReason.CONSENT_OFF)
            return Refused(reason=RefusalReason.CONSENT_OFF)
        # State first, so automations triggered by the event see the share live.
        session.async_changed()
        session.fire(
            EVENT_GRANTED,
            "granted",
            request,
            expires_at=contract_time(expires),
            distance_m=round(decision.distance_m, 1),
        )
        return Granted(grant=grant, created=True)

    def _webrtc_camera(self, masked: bool) -> str | None:
        """Return the camera entity whose WebRTC the city's WHEP endpoint relays.

        With masks, the Police view camera: its stream source is the masked
        picture, which a WebRTC provider (go2rtc) streams. It never has a
        native WebRTC of its own, so a Ring or Nest doorbell, whose video
        never passes through the home, offers no masked WebRTC.
        """
        if not masked:
            return self._session.camera_entity_id
        return police_view_entity_id(self._hass, self._session.entry_id)

    def _offered(
        self, source: str | None, masked: MaskedSource | None
    ) -> frozenset[str]:
        """Return the kinds of live view this camera offers and the resident allows.

        `source` is what the HLS share reads (the masked source's URL with
        masks); with masks, WebRTC only of the Police view camera.
        """
        webrtc_camera = (
            None
            if self._masked.masks and masked is None
            else self._webrtc_camera(masked is not None)
        )
        offered = {
            kind
            for kind, available in (
                (STREAM_HLS, source is not None),
                (
                    STREAM_WEBRTC,
                    webrtc_camera is not None
                    and webrtc_share.supports_webrtc(self._hass, webrtc_camera),
                ),
            )
            if available
        }
        return frozenset(offered) & frozenset(self._session.options[CONF_STREAM_KINDS])

    async def _async_open(
        self,
        stream: hls_share.HlsShare | None,
        webrtc: bool,
        expires: datetime,
        *,
        masked: bool,
    ) -> webrtc_share.WebRtcShare | None:
        """Start the HLS stream and open the WHEP endpoint the grant names."""
        if stream is not None:
            await hls_share.async_start(self._hass, stream)
        if not webrtc or (camera := self._webrtc_camera(masked)) is None:
            return None
        try:
            return await webrtc_share.async_start(
                self._hass,
                camera,
                share_audio=bool(self._session.options[CONF_SHARE_AUDIO]),
                lab_mode=bool(self._session.options[CONF_ALLOW_HTTP_STREAM_URL]),
                expires=expires,
                # Only what the resident listed, and only what a header carries.
                ice=IceConfig.from_options(self._session.options),
            )
        except Exception:
            if stream is not None:
                await hls_share.async_revoke(self._hass, stream)
            raise

    def external_base_url(self) -> str | None:
        """Return the external HTTPS URL (or, in lab mode, any URL) to hand out."""
        url = secure_external_url(self._hass)
        if url is None and self._session.options[CONF_ALLOW_HTTP_STREAM_URL]:
            try:
                url = get_url(self._hass, prefer_external=True)
            except NoURLAvailableError:
                url = None
        self._repairs.external_url(available=url is not None)
        return None if url is None else url.rstrip("/")


def secure_external_url(hass: HomeAssistant) -> str | None:
    """Return the address every grant is given: external, HTTPS, a host name.

    Home Assistant Cloud's Remote UI address counts: the city reaches the
    webhook and the stream through it like through any other.
    """
    try:
        url = get_url(hass, allow_internal=False, allow_ip=False, require_ssl=True)
    except NoURLAvailableError:
        return None
    return url.rstrip("/")
