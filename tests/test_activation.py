"""The grant use case with both kinds of live view: HLS, WebRTC, or both (contract 1.1)."""

import asyncio
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import json
from pathlib import Path
import shutil
import socket
import threading
from typing import Any
from unittest.mock import patch

import aioice.ice
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
import av
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import Camera, async_register_webrtc_provider
from homeassistant.components.camera.webrtc import WebRTCAnswer
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_ICE_SERVERS,
    CONF_PRIVACY_MASKS,
    CONF_STREAM_KINDS,
    CONF_TURN_SECRET,
    DEFAULT_OPTIONS,
    STREAM_HLS,
    STREAM_WEBRTC,
)
from custom_components.rtcc_share.live import tokens, webrtc_share
from custom_components.rtcc_share.live.ice import turn_credentials
from tools.city.browser import chromium
from tools.city.chromium import WEBRTC_FLAGS
from tools.city.watch import ViewerServer
from tools.city.webrtc import SDP_TYPE, Viewer

from .common import EXTERNAL_URL, WEBHOOK_URL, City, ended, requested, turn_on_consent
from .mask_video import brightest_masked, luma, painted_area
from .webrtc_camera import (
    Go2rtcLikeProvider,
    LoopbackProvider,
    ProviderCamera,
    RingLikeCamera,
    async_settle_peers,
)

FRAME_TIMEOUT_S = 20
TURN_SECRET = "a-turn-secret-of-32-characters!!"
# Every peer here is on loopback: only lab mode lets its candidates cross.
LAB_OPTIONS = {**DEFAULT_OPTIONS, CONF_ALLOW_HTTP_STREAM_URL: True}


@pytest.fixture(autouse=True)
def loopback(socket_enabled: None) -> None:
    """Let ICE use loopback only (aioice skips 127.0.0.1 by default)."""
    with patch.object(aioice.ice, "get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
def camera_kind() -> str:
    """Which doorbell the resident has (parametrized to change it)."""
    return "ring"


@pytest.fixture
def silent_rtsp() -> Generator[socket.socket]:
    """An RTSP port that takes connections and never answers (closed at the end)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


@pytest.fixture
def source_camera(
    camera_kind: str, video_file: Path, request: pytest.FixtureRequest
) -> Camera:
    """A Ring doorbell (WebRTC only, no stream source), or a camera offering both.

    `silent`: a camera offering both whose RTSP source hangs (TCP open, silent).
    `live`: a camera whose stream source is a live feed of a bright picture.
    """
    if camera_kind == "provider":
        return ProviderCamera(str(video_file))
    if camera_kind == "live":
        return ProviderCamera(request.getfixturevalue("live_feed").url)
    if camera_kind == "silent":
        port = request.getfixturevalue("silent_rtsp").getsockname()[1]
        return ProviderCamera(f"rtsp://127.0.0.1:{port}/doorbell")
    return RingLikeCamera(video_file)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """The resident lets the city have WebRTC (as the flow does for Ring)."""
    return {**LAB_OPTIONS, CONF_STREAM_KINDS: [STREAM_WEBRTC]}


@pytest.fixture
async def client(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: RingLikeCamera,
) -> AsyncGenerator[Any]:
    """The city's HTTP client, consent on; every peer closed at the end."""
    await turn_on_consent(hass)
    yield await hass_client_no_auth()
    await camera.peers.async_close_all()
    await async_settle_peers()


@pytest.fixture
async def provider(
    hass: HomeAssistant, camera: Camera, video_file: Path
) -> AsyncGenerator[LoopbackProvider]:
    """A go2rtc-like WebRTC provider for the camera's stream source."""
    provider = LoopbackProvider(video_file, getattr(camera, "source", None))
    unregister = async_register_webrtc_provider(hass, provider)
    await hass.async_block_till_done()
    yield provider
    await provider.peers.async_close_all()
    await async_settle_peers()
    unregister()


async def _activate(client: Any, city: City, **changes: Any) -> tuple[int, Any]:
    body, headers = city.sign(requested("W-1", **changes))
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status, await response.json()


async def test_ring_doorbell_is_shared_over_webrtc(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """A WebRTC-only camera: webrtc_url only, real frames, audited, 404 after the end."""
    status, body = await _activate(client, city, accept_streams=["webrtc", "dash"])
    assert status == 201, body
    assert "stream_url" not in body
    path = body["webrtc_url"].removeprefix(EXTERNAL_URL)
    viewer = Viewer(client, path)
    await viewer.start()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await viewer.first_frame.wait()
    assert (
        hass.states.get("binary_sensor.front_door_live_share").attributes["viewers"]
        == 1
    )
    body, headers = city.sign(ended("W-1"))
    assert (await client.post(WEBHOOK_URL, data=body, headers=headers)).status == 200
    response = await client.post(
        path, data=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
    )
    assert response.status == 404
    await viewer.close(delete=False)
    records = await integration.runtime_data.audit.async_export(None, None)
    [granted] = [r for r in records if r["event"] == "activation_granted"]
    assert granted["streams"] == [STREAM_WEBRTC]
    [share_ended] = [r for r in records if r["event"] == "share_ended"]
    [session] = share_ended["webrtc_sessions"]
    assert session["address"] == "127.0.0.1"


async def test_viewer_page_plays_a_ring_doorbell_over_webrtc(
    hass: HomeAssistant,
    client: Any,
    city: City,
    camera: RingLikeCamera,
    integration: MockConfigEntry,
) -> None:
    """The city's viewer page in Chromium: WHEP offer, decoded frames, DELETE on leaving."""
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    status, body = await _activate(client, city, accept_streams=["webrtc"])
    assert status == 201, body
    url = str(client.make_url(body["webrtc_url"].removeprefix(EXTERNAL_URL)))
    sensor = "binary_sensor.front_door_live_share"
    with ViewerServer(0) as viewer:
        async with chromium(flags=WEBRTC_FLAGS) as page:
            await page.goto(viewer.page_url(url, "webrtc"))
            async with asyncio.timeout(FRAME_TIMEOUT_S):
                while not await page.js("window.viewerStats?.frames"):
                    await asyncio.sleep(0.2)
            stats = await page.js("window.viewerStats")
            assert stats["errors"] == [], stats
            assert stats["firstFrameMs"] is not None, stats
            assert hass.states.get(sensor).attributes["viewers"] == 1
            await page.goto("about:blank")
            async with asyncio.timeout(FRAME_TIMEOUT_S):
                while hass.states.get(sensor).attributes["viewers"]:
                    await asyncio.sleep(0.1)
    [offer] = camera.peers.offers
    assert "m=audio" not in offer
    assert camera.peers.remote_candidates
    await integration.runtime_data.session.async_end("stopped_by_resident")
    records = await integration.runtime_data.audit.async_export(None, None)
    [share_ended] = [r for r in records if r["event"] == "share_ended"]
    [session] = share_ended["webrtc_sessions"]
    assert session["ended"] == "deleted", session


@pytest.mark.parametrize("camera_kind", ["provider"])
@pytest.mark.parametrize(
    "entry_options",
    [{**LAB_OPTIONS, CONF_STREAM_KINDS: [STREAM_HLS, STREAM_WEBRTC]}],
)
async def test_camera_offering_both_gets_both_urls_in_one_grant(
    hass: HomeAssistant,
    provider: LoopbackProvider,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    city: City,
) -> None:
    """Both URLs in one 201, both play, the repeat returns them, both 404 after."""
    await turn_on_consent(hass)
    client = await hass_client_no_auth()
    status, body = await _activate(client, city, accept_streams=["hls", "webrtc"])
    assert status == 201, body
    hls = body["stream_url"].removeprefix(EXTERNAL_URL)
    webrtc = body["webrtc_url"].removeprefix(EXTERNAL_URL)
    assert (await client.get(hls)).status == 200
    viewer = Viewer(client, webrtc)
    await viewer.start()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await viewer.first_frame.wait()
    # The grant stands as made, whatever a repeat asks for.
    for accept in (["hls"], ["webrtc"], ["dash"], None):
        changes = {} if accept is None else {"accept_streams": accept}
        assert await _activate(client, city, **changes) == (200, body), accept

    signed, headers = city.sign(ended("W-1"))
    assert (await client.post(WEBHOOK_URL, data=signed, headers=headers)).status == 200
    assert (await client.get(hls)).status == 404
    response = await client.post(
        webrtc, data=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
    )
    assert response.status == 404
    await viewer.close(delete=False)
    assert len(provider.peers.closed) == 1
    records = await integration.runtime_data.audit.async_export(None, None)
    [granted] = [r for r in records if r["event"] == "activation_granted"]
    assert granted["streams"] == [STREAM_HLS, STREAM_WEBRTC]


def _stream_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stream_worker"]


@pytest.mark.parametrize("camera_kind", ["silent"])
@pytest.mark.parametrize(
    "entry_options",
    [{**DEFAULT_OPTIONS, CONF_STREAM_KINDS: [STREAM_HLS, STREAM_WEBRTC]}],
)
async def test_end_does_not_wait_for_a_hanging_hls_source(
    hass: HomeAssistant,
    provider: LoopbackProvider,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    city: City,
    silent_rtsp: socket.socket,
) -> None:
    """HLS source hung: WebRTC closed and every URL 404 at once; the end is answered."""
    await turn_on_consent(hass)
    client = await hass_client_no_auth()
    status, body = await _activate(client, city, accept_streams=["hls", "webrtc"])
    assert status == 201, body
    hls = body["stream_url"].removeprefix(EXTERNAL_URL)
    webrtc = body["webrtc_url"].removeprefix(EXTERNAL_URL)
    viewer = Viewer(client, webrtc)
    await viewer.start()
    assert viewer.location is not None
    # The HLS worker is stuck opening the source (for 5 s, HA's RTSP timeout).
    assert _stream_workers()

    signed, headers = city.sign(ended("W-1"))
    end = asyncio.create_task(client.post(WEBHOOK_URL, data=signed, headers=headers))
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while not provider.peers.closed:
            await asyncio.sleep(0.01)
    assert (await client.delete(viewer.location)).status == 404
    assert (await client.get(hls)).status == 404
    response = await client.post(
        webrtc, data=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
    )
    assert response.status == 404
    assert (await end).status == 200
    # Answered while the HLS worker still hangs: the end did not wait for it.
    assert _stream_workers()
    records = await integration.runtime_data.audit.async_export(None, None)
    [share_ended] = [r for r in records if r["event"] == "share_ended"]
    assert share_ended["viewers"] == []
    [session] = share_ended["webrtc_sessions"]
    assert (session["address"], session["ended"]) == ("127.0.0.1", "share_ended")

    # The source gives up; the worker stops in the background.
    await viewer.close(delete=False)
    silent_rtsp.close()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while _stream_workers():
            await asyncio.sleep(0.05)
    await hass.async_block_till_done(wait_background_tasks=True)


# A receive-only video offer, and a camera's answer that needs no waiting.
_VIDEO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n"
    "a=rtpmap:96 H264/90000\r\na=recvonly\r\n"
)
_CAMERA_ANSWER = (
    _VIDEO_OFFER.replace("abcd", "efgh")
    .replace("actpass", "active")
    .replace(
        "a=recvonly\r\n",
        "a=sendonly\r\na=candidate:1 1 udp 2130706431 8.8.4.4 40000 typ host\r\n"
        "a=end-of-candidates\r\n",
    )
)


async def test_session_churn_is_bounded_in_the_record_and_the_state_writes(
    hass: HomeAssistant,
    client: Any,
    city: City,
    integration: MockConfigEntry,
    camera: RingLikeCamera,
    freezer: FrozenDateTimeFactory,
) -> None:
    """300 POST/DELETE cycles: 50 sessions kept, the rest summed; the count ~once a second."""
    status, body = await _activate(client, city, accept_streams=["webrtc"])
    assert status == 201
    path = body["webrtc_url"].removeprefix(EXTERNAL_URL)
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    writes = async_capture_events(hass, EVENT_STATE_CHANGED)

    async def answer(offer: str, session_id: str, send: Any) -> None:
        send(WebRTCAnswer(_CAMERA_ANSWER))

    with patch.object(camera, "async_handle_async_webrtc_offer", answer):
        for _ in range(300):
            response = await client.post(
                path, data=_VIDEO_OFFER.encode(), headers={"Content-Type": SDP_TYPE}
            )
            assert response.status == 201
            location = response.headers["Location"]
            assert (await client.delete(location)).status == 200
    freezer.tick(timedelta(seconds=1.5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    sensor_writes = [
        event.data["new_state"].attributes["viewers"]
        for event in writes
        if event.data["entity_id"] == "binary_sensor.front_door_live_share"
    ]
    assert sensor_writes == [1, 0]
    share = integration.runtime_data.session.live.webrtc
    assert len(share.log.kept) == 50

    signed, headers = city.sign(ended("W-1"))
    assert (await client.post(WEBHOOK_URL, data=signed, headers=headers)).status == 200
    records = await integration.runtime_data.audit.async_export(None, None)
    [share_ended] = [r for r in records if r["event"] == "share_ended"]
    sessions = share_ended["webrtc_sessions"]
    assert len(sessions) == 51
    assert {s["ended"] for s in sessions[:50]} == {"deleted"}
    others = sessions[-1]
    assert (others["other_sessions"], others["other_addresses"]) == (250, 1)
    assert others["how_ended"] == {"deleted": 250}
    assert "address" not in others
    assert len(json.dumps(share_ended)) < 12_000


async def test_webrtc_only_camera_asked_for_hls_names_what_it_offers(
    client: Any, city: City
) -> None:
    """The default request (HLS) of a Ring doorbell: 503 with a detail."""
    assert await _activate(client, city) == (
        503,
        {"error": "camera_unavailable", "detail": "this camera offers webrtc"},
    )


@pytest.mark.parametrize(
    "entry_options", [{**DEFAULT_OPTIONS, CONF_STREAM_KINDS: [STREAM_HLS]}]
)
async def test_webrtc_the_resident_did_not_allow_is_not_offered(
    client: Any, city: City
) -> None:
    """The resident's choice of kinds binds the grant, and its detail."""
    assert await _activate(client, city, accept_streams=["webrtc"]) == (
        503,
        {"error": "camera_unavailable"},
    )


@pytest.mark.parametrize("accept", ["webrtc", [1], {"hls": True}])
async def test_accept_streams_must_be_a_list_of_strings(
    client: Any, city: City, accept: Any
) -> None:
    """Not a list of strings is the contract's 400."""
    status, body = await _activate(client, city, accept_streams=accept)
    assert (status, body["error"]) == (400, "invalid_payload")
    assert body["detail"].startswith("accept_streams")


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **LAB_OPTIONS,
            CONF_STREAM_KINDS: [STREAM_WEBRTC],
            CONF_ICE_SERVERS: [
                "stun:stun.example.org:3478",
                "turn:turn.example.org:3478",
                # Stored before contract 1.2; never accepted as kept by the city.
                "turn:old.example.org:3478 city s3cret",
            ],
            CONF_TURN_SECRET: TURN_SECRET,
        }
    ],
)
async def test_resident_ice_servers_reach_the_city_and_nothing_else(
    client: Any, city: City
) -> None:
    """The WHEP answer lists the resident's ICE servers, TURN valid for the share.

    A fixed TURN password the resident did not accept to hand out stays home.
    """
    status, body = await _activate(client, city, accept_streams=["webrtc"])
    assert status == 201
    links: list[str] = []

    class Recording:
        """The city's client, keeping the Link headers of the answers."""

        async def post(self, *args: Any, **kwargs: Any) -> Any:
            response = await client.post(*args, **kwargs)
            links.extend(response.headers.getall("Link", []))
            return response

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

    viewer = Viewer(Recording(), body["webrtc_url"].removeprefix(EXTERNAL_URL))
    await viewer.start()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await viewer.first_frame.wait()
    expires = datetime.fromisoformat(body["expires_at"])
    username, credential = turn_credentials(TURN_SECRET, expires)
    assert username == f"{int(expires.timestamp())}:rtcc_share"
    assert links == [
        '<stun:stun.example.org:3478>; rel="ice-server"',
        f'<turn:turn.example.org:3478>; rel="ice-server"; username="{username}";'
        f' credential="{credential}"; credential-type="password"',
    ]
    assert "s3cret" not in str(links)
    await viewer.close(delete=False)


@pytest.mark.parametrize(
    ("entry_options", "lab"),
    [
        ({**DEFAULT_OPTIONS, CONF_STREAM_KINDS: [STREAM_WEBRTC]}, False),
        ({**LAB_OPTIONS, CONF_STREAM_KINDS: [STREAM_WEBRTC]}, True),
    ],
    ids=["default", "lab"],
)
async def test_loopback_candidates_cross_only_in_lab_mode(
    hass: HomeAssistant, client: Any, city: City, camera: RingLikeCamera, lab: bool
) -> None:
    """The WHEP share follows `allow_http_stream_url`; off, no private address crosses."""
    status, body = await _activate(client, city, accept_streams=["webrtc"])
    assert status == 201, body
    path = body["webrtc_url"].removeprefix(EXTERNAL_URL)
    share = tokens.get(hass, webrtc_share.WebRtcShare, path.rsplit("/", 1)[1])
    assert share is not None
    assert share.lab_mode is lab
    viewer = Viewer(client, path)
    await viewer.start()
    [offer] = camera.peers.offers
    assert viewer.answer is not None
    assert ("a=candidate:" in offer) is lab
    assert ("127.0.0.1" in viewer.answer) is lab
    await viewer.close()


MASKS = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))
MASKED_WEBRTC = {
    **LAB_OPTIONS,
    CONF_STREAM_KINDS: [STREAM_WEBRTC],
    CONF_PRIVACY_MASKS: [list(mask) for mask in MASKS],
}


@pytest.mark.parametrize("entry_options", [MASKED_WEBRTC])
async def test_ring_doorbell_with_masks_gets_no_webrtc_url(
    client: Any, city: City, camera: RingLikeCamera, integration: MockConfigEntry
) -> None:
    """Its video never passes through the home: with masks, no view at all."""
    assert await _activate(client, city, accept_streams=["webrtc", "hls"]) == (
        503,
        {"error": "camera_unavailable", "detail": "privacy masks need a stream source"},
    )
    assert camera.received == []
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [r["reason"] for r in records if r["event"] == "activation_refused"] == [
        "camera_unavailable"
    ]


@dataclass
class PictureViewer(Viewer):
    """A city viewer that keeps the luma of every frame it decodes."""

    pictures: list[Any] = field(default_factory=list)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._reader = asyncio.create_task(self._keep(track))

    async def _keep(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.pictures.append(luma(frame.reformat(format="yuv420p")))
                self.first_frame.set()
        except MediaStreamError:
            self.ended.set()


@pytest.fixture
async def go2rtc(
    hass: HomeAssistant, camera: Camera, video_file: Path
) -> AsyncGenerator[Go2rtcLikeProvider]:
    """A go2rtc-like provider: any camera with an RTSP or HTTP stream source."""
    provider = Go2rtcLikeProvider(video_file)
    unregister = async_register_webrtc_provider(hass, provider)
    await hass.async_block_till_done()
    yield provider
    await provider.peers.async_close_all()
    await async_settle_peers()
    unregister()


@pytest.mark.parametrize("camera_kind", ["live"])
@pytest.mark.parametrize("entry_options", [MASKED_WEBRTC])
async def test_masked_webrtc_is_the_police_views_masked_picture(
    hass: HomeAssistant,
    go2rtc: Go2rtcLikeProvider,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    city: City,
) -> None:
    """With masks, WebRTC relays the Police view camera, whose source is masked.

    The provider is handed the masked source's URL (never the camera's), and
    every frame the city decodes has every mask black.
    """
    await turn_on_consent(hass)
    client = await hass_client_no_auth()
    status, body = await _activate(client, city, accept_streams=["webrtc"])
    assert status == 201, body
    masked = await integration.runtime_data.masked.async_source()
    assert masked is not None
    viewer = PictureViewer(client, body["webrtc_url"].removeprefix(EXTERNAL_URL))
    await viewer.start()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while len(viewer.pictures) < 20:
            await asyncio.sleep(0.1)
    assert go2rtc.sources == [masked.url]
    for picture in viewer.pictures:
        height, width = picture.shape
        assert brightest_masked(picture, MASKS) <= 20
        assert picture[~painted_area(MASKS, width, height)].mean() > 150
    signed, headers = city.sign(ended("W-1"))
    assert (await client.post(WEBHOOK_URL, data=signed, headers=headers)).status == 200
    assert len(go2rtc.peers.closed) == 1
    await viewer.close(delete=False)
