"""The WebRTC live view (WHEP): real aiortc peers both sides, real H.264, loopback."""

import ast
import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import json
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from aiohttp import ClientResponse
import aioice.ice
from homeassistant.components.camera import Camera, async_register_webrtc_provider
from homeassistant.components.camera.webrtc import (
    WebRTCAnswer,
    WebRTCCandidate,
    WebRTCError,
)
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from webrtc_models import RTCIceCandidate, RTCIceCandidateInit
import yaml

from custom_components.rtcc_share.const import (
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_TURN_SECRET,
)
from custom_components.rtcc_share.live import (
    tokens,
    webrtc_sdp,
    webrtc_share,
    webrtc_view,
)
from custom_components.rtcc_share.live.ice import IceConfig, turn_credentials
from custom_components.rtcc_share.live.webrtc_sdp import plan_offer
from tools.city import cli
from tools.city.chromium import chromium, viewer_page
from tools.city.webrtc import SDP_TYPE, SDPFRAG_TYPE, Viewer, WhepRefusedError

from .conftest import CAMERA
from .webrtc_camera import (
    LoopbackProvider,
    NestLikeCamera,
    ProviderCamera,
    RingLikeCamera,
    async_settle_peers,
)

FRAME_TIMEOUT_S = 20
# When the shares of these tests end (their WHEP endpoints do not look).
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
TURN_SECRET = "a-turn-secret-of-32-characters!!"
_TRANSPORT = (
    "c=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=rtcp-mux\r\n"
)
# A browser-like receive-only offer (audio first, both bundled).
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{_TRANSPORT}a=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=recvonly\r\n"
    f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{_TRANSPORT}a=mid:1\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\na=recvonly\r\n"
)


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
def source_camera(camera_kind: str, video_file: Path) -> Camera:
    """The doorbell: Ring-like, Nest-like (no stream source), or served by a provider."""
    if camera_kind == "provider":
        return ProviderCamera(str(video_file))
    if camera_kind == "nest":
        return NestLikeCamera(video_file)
    return RingLikeCamera(video_file)


@pytest.fixture
async def http(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
) -> Any:
    """The city's HTTP client."""
    return await hass_client_no_auth()


@pytest.fixture
async def viewers(http: Any) -> AsyncGenerator[Callable[..., Viewer]]:
    """Make city viewers; close whatever is left at the end."""
    made: list[Viewer] = []

    def make(url: str, **kwargs: Any) -> Viewer:
        made.append(viewer := Viewer(http, url, **kwargs))
        return viewer

    yield make
    for viewer in made:
        await viewer.close(delete=False)


@pytest.fixture(autouse=True)
async def settle(hass: HomeAssistant) -> AsyncGenerator[None]:
    """After every peer is closed, end aiortc's own leftover tasks."""
    yield
    await async_settle_peers()


@pytest.fixture
async def share(
    hass: HomeAssistant, integration: MockConfigEntry, camera: RingLikeCamera
) -> AsyncGenerator[webrtc_share.WebRtcShare]:
    """A live WHEP share of the Ring-like doorbell, without audio.

    In lab mode: every peer here is on loopback.
    """
    share = await webrtc_share.async_start(
        hass, CAMERA, share_audio=False, expires=EXPIRES, lab_mode=True
    )
    yield share
    await webrtc_share.async_revoke(hass, share)
    await camera.peers.async_close_all()


async def _post(http: Any, url: str, body: bytes, content_type: str) -> ClientResponse:
    return await http.post(url, data=body, headers={"Content-Type": content_type})


async def _frames(viewer: Viewer) -> None:
    await viewer.start()
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await viewer.first_frame.wait()


async def test_city_decodes_ring_like_camera_without_trickling(
    share: webrtc_share.WebRtcShare,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """A non-trickling client gets the camera's trickled candidates in the answer."""
    viewer = viewers(share.path)
    await _frames(viewer)

    assert viewer.size == (160, 96)
    assert viewer.answer is not None
    assert "a=candidate:" in viewer.answer
    assert "a=sendrecv" not in viewer.answer
    assert "a=sendonly" in viewer.answer
    assert "H264/90000" in viewer.answer
    assert viewer.location is not None
    assert viewer.location.startswith(f"{share.path}/")
    assert share.viewer_count == 1


@pytest.mark.parametrize(
    ("in_answer", "trickle"),
    [(False, False), (False, True), (True, False)],
    ids=["ring-trickles-city-does-not", "both-trickle", "ring-answer-has-candidates"],
)
async def test_ring_like_answer_once_its_candidates_go_quiet(
    share: webrtc_share.WebRtcShare,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
    in_answer: bool,
    trickle: bool,
) -> None:
    """Ring never says it has no more candidates: the 201 does not wait for the window."""
    camera.candidates_in_answer = in_answer
    viewer = viewers(share.path, trickle=trickle)
    # A window no test outlasts: only the camera going quiet ends the wait.
    with patch.object(webrtc_view, "CANDIDATE_WAIT_S", 3600):
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await _frames(viewer)
    assert viewer.answer is not None
    assert "a=candidate:" in viewer.answer


async def test_quiet_wait_starts_again_with_each_candidate(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """Candidates closer together than the quiet time all make it into the answer."""
    answer = (
        OFFER.split("m=video", maxsplit=1)[0]
        .replace("m=audio", "m=video")
        .replace("a=recvonly", "a=sendrecv")
    )

    async def handle(offer: str, session_id: str, send: Any) -> None:
        send(WebRTCAnswer(answer))
        for port in range(3):
            await asyncio.sleep(webrtc_view.CANDIDATE_QUIET_S / 4)
            send(
                WebRTCCandidate(
                    RTCIceCandidateInit(
                        f"candidate:{port} 1 udp 9 8.8.8.8 {port + 1000} typ host",
                        sdp_m_line_index=0,
                    )
                )
            )

    with (
        patch.object(webrtc_view, "CANDIDATE_WAIT_S", 3600),
        patch.object(camera, "async_handle_async_webrtc_offer", handle),
    ):
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 201
    assert (await response.text()).count("a=candidate:") == 3


@pytest.mark.parametrize(
    ("sections", "bundle", "expected"),
    [
        (["cand", "none"], "0 1", True),
        (["none", "cand"], "0 1", True),
        (["none", "none"], "0 1", False),
        (["cand", "none"], None, False),
        (["cand", "cand"], None, True),
        (["rejected", "cand"], None, True),
        (["rejected"], None, True),
    ],
)
def test_has_candidates_per_transport(
    sections: list[str], bundle: str | None, expected: bool
) -> None:
    """One candidate per transport: bundled sections share one, rejected have none."""
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    if bundle is not None:
        lines.append(f"a=group:BUNDLE {bundle}")
    for mid, kind in enumerate(sections):
        port = 0 if kind == "rejected" else 9
        lines += [f"m=video {port} UDP/TLS/RTP/SAVPF 96", f"a=mid:{mid}"]
        if kind == "cand":
            lines.append("a=candidate:1 1 udp 9 8.8.8.8 9 typ host")
    assert webrtc_sdp.has_candidates("\r\n".join(lines) + "\r\n") is expected


async def test_trickled_candidates_reach_camera_with_m_line_index(
    share: webrtc_share.WebRtcShare,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """A trickling client's candidates reach the camera, with the m-line index."""
    viewer = viewers(share.path, trickle=True)
    await _frames(viewer)

    assert camera.peers.remote_candidates
    assert {c.sdp_m_line_index for c in camera.peers.remote_candidates} == {0}
    (offer,) = camera.peers.offers
    assert "a=candidate:" not in offer


async def test_end_of_candidates_alone_is_accepted(
    share: webrtc_share.WebRtcShare, viewers: Callable[..., Viewer]
) -> None:
    """A fragment with only end-of-candidates is a 204 and reaches nobody."""
    viewer = viewers(share.path)
    await _frames(viewer)
    assert await viewer.patch("a=mid:0\r\na=end-of-candidates\r\n") == 204


async def test_delete_ends_session_then_404(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """DELETE answers 200 and closes the camera session; the URL then 404s."""
    changes: list[int] = []
    share.viewers_changed.target = lambda: changes.append(share.viewer_count)
    viewer = viewers(share.path)
    await viewer.start()
    assert viewer.location is not None

    assert (await http.delete(viewer.location)).status == 200
    response = await http.delete(viewer.location)
    assert response.status == 404
    assert await response.json() == {"error": "not_found"}
    assert len(camera.peers.closed) == 1
    # The resident's count follows at most once a second.
    assert changes == [1]
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2))
    await hass.async_block_till_done()
    assert changes == [1, 0]
    (record,) = share.viewer_summary()
    assert record["ended"] == "deleted"
    assert record["address"] == "127.0.0.1"
    assert record["end"] is not None


async def test_fifth_session_409_without_camera_session(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """Four sessions at once; a fifth POST is refused; a DELETE frees a slot."""
    four = [viewers(share.path) for _ in range(4)]
    await asyncio.gather(*(viewer.start() for viewer in four))

    fifth = viewers(share.path)
    with pytest.raises(WhepRefusedError) as refused:
        await fifth.start()
    assert refused.value.status == 409
    assert len(camera.peers.offers) == 4

    await four[0].close()
    await viewers(share.path).start()
    assert share.viewer_count == 4


async def test_audio_refused_unless_shared(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """The camera never sees the audio m-line; the answer rejects it (port 0)."""
    response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 201
    answer = await response.text()
    (offer,) = camera.peers.offers
    assert "m=audio" not in offer
    assert "a=group:BUNDLE 1\r\n" in offer
    assert answer.index("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n") < answer.index("m=video")
    assert "a=mid:0\r\na=inactive" in answer

    # A candidate for the bundled audio section goes to the bundle's transport.
    response = await http.patch(
        response.headers["Location"],
        data=b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
        b"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n",
        headers={"Content-Type": SDPFRAG_TYPE},
    )
    assert response.status == 204
    (candidate,) = camera.peers.remote_candidates
    assert (candidate.sdp_mid, candidate.sdp_m_line_index) == ("1", 0)


async def test_bundle_candidates_of_removed_audio_move_to_video(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """A non-trickling offer with candidates only in the audio section still connects."""
    offer = OFFER.replace(
        "a=recvonly\r\nm=video",
        "a=recvonly\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
        "a=end-of-candidates\r\nm=video",
    )
    assert (await _post(http, share.path, offer.encode(), SDP_TYPE)).status == 201
    (seen,) = camera.peers.offers
    assert seen.count("a=candidate:") == 1


async def test_shared_audio_reaches_camera(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """With audio shared, the camera is asked for audio and it is not rejected."""
    share = await webrtc_share.async_start(
        hass, CAMERA, share_audio=True, expires=EXPIRES, lab_mode=True
    )
    viewer = viewers(share.path, audio=True)
    await _frames(viewer)
    (offer,) = camera.peers.offers
    assert "m=audio" in offer
    assert viewer.answer is not None
    assert "m=audio 0 " not in viewer.answer
    await webrtc_share.async_revoke(hass, share)
    await camera.peers.async_close_all()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"hello", SDP_TYPE, 400, "invalid_sdp"),
        (b"v=0\r\nbad line\r\n", SDP_TYPE, 400, "invalid_sdp"),
        (b"v=0\r\ns=-\r\n", SDP_TYPE, 400, "invalid_sdp"),
        (b"v=0\r\nm=video\r\n", SDP_TYPE, 400, "invalid_sdp"),
        (b"\xff\xfe", SDP_TYPE, 400, "invalid_sdp"),
        (
            OFFER.replace("a=recvonly", "a=sendrecv").encode(),
            SDP_TYPE,
            400,
            "invalid_sdp",
        ),
        (OFFER.replace("a=recvonly\r\n", "").encode(), SDP_TYPE, 400, "invalid_sdp"),
        (OFFER.split("m=video", maxsplit=1)[0].encode(), SDP_TYPE, 400, "invalid_sdp"),
        (OFFER.encode(), "application/json", 415, "unsupported_media_type"),
        (b"v=0\r\n" + b"a=x\r\n" * 20000, SDP_TYPE, 413, "payload_too_large"),
        *(
            (offer.encode(), SDP_TYPE, 400, "invalid_sdp")
            for offer in (
                OFFER.replace("a=recvonly\r\n", "").replace(
                    "t=0 0\r\n", "t=0 0\r\na=recvonly\r\n"
                ),
                OFFER.replace("a=recvonly", "a=recvonly\r\na=sendrecv"),
                OFFER.replace("a=recvonly", "a=recvonly\r\na=sendrecv:1"),
                OFFER.replace("a=recvonly", "a=recvonly\r\na=sendrecv "),
                OFFER.replace("SAVPF 111", "SAVPF 111 0").replace(
                    "m=audio 9", "m=audio\t9"
                ),
                OFFER + "a=rtcp-rsize\ra=sendrecv\r\n",
                OFFER + "a=rtcp-rsize\x85m=audio 9 RTP/AVP 0\x85a=recvonly\r\n",
                OFFER + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n" * 15,
            )
        ),
    ],
    ids=[
        "not-sdp",
        "bad-line",
        "no-m-line",
        "bad-m-line",
        "not-utf8",
        "sendrecv",
        "default-sendrecv",
        "audio-only",
        "wrong-type",
        "too-large",
        "session-level-recvonly-only",
        "recvonly-then-sendrecv",
        "sendrecv-colon",
        "sendrecv-trailing-space",
        "audio-behind-tab",
        "sendrecv-behind-cr",
        "audio-behind-nel",
        "17-m-sections",
    ],
)
async def test_bad_offer_refused_without_camera_session(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    body: bytes,
    content_type: str,
    status: int,
    error: str,
) -> None:
    """Every malformed offer gets its status and a JSON error; the camera sees none."""
    response = await _post(http, share.path, body, content_type)
    assert response.status == status
    assert (await response.json())["error"] == error
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert not camera.peers.offers


async def test_chunked_offer_over_limit_is_413(
    share: webrtc_share.WebRtcShare, http: Any
) -> None:
    """A body without Content-Length is still cut at 64 KiB."""

    async def chunks() -> AsyncGenerator[bytes]:
        for _ in range(70):
            yield b"a" * 1024

    response = await _post(http, share.path, chunks(), SDP_TYPE)  # type: ignore[arg-type]
    assert response.status == 413


async def test_unknown_token_is_404(http: Any) -> None:
    """No share under that token."""
    response = await _post(
        http, f"{tokens.WEBRTC.prefix}/{'x' * 43}", OFFER.encode(), SDP_TYPE
    )
    assert response.status == 404


async def test_camera_that_refuses_is_503(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """An error message instead of an answer: 503, slot freed, camera told to close."""
    camera.refuse = True
    response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 503
    assert (await response.json())["error"] == "camera_unavailable"
    assert not share.sessions
    assert len(camera.peers.closed) == 1
    assert share.viewer_summary() == []


async def test_camera_that_never_answers_is_503(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """No answer within the bound: 503."""
    camera.silent = True
    with patch.object(webrtc_view, "ANSWER_TIMEOUT_S", 0.2):
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 503
    assert not share.sessions


async def test_camera_that_raises_is_503(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera whose offer handler raises: 503, no traceback, no SDP logged."""
    with patch.object(
        RingLikeCamera,
        "async_handle_async_webrtc_offer",
        side_effect=HomeAssistantError("boom"),
    ):
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 503
    assert "ice-pwd" not in caplog.text
    assert "secretsecret" not in caplog.text


async def test_camera_answer_that_is_not_sdp_is_503(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """A broken answer, or one with other m-lines than offered: 503."""
    for answer in ("garbage", OFFER):

        async def handle(
            offer: str, session_id: str, send: Any, answer: str = answer
        ) -> None:
            send(WebRTCAnswer(answer))

        with patch.object(camera, "async_handle_async_webrtc_offer", handle):
            response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
        assert response.status == 503
    assert not share.sessions


async def test_camera_error_while_gathering_is_503(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """An error after the answer but before the 201."""

    async def handle(offer: str, session_id: str, send: Any) -> None:
        from homeassistant.components.camera.webrtc import WebRTCAnswer  # noqa: PLC0415

        send(WebRTCAnswer(OFFER))
        send(WebRTCError("1", "gone"))

    with patch.object(camera, "async_handle_async_webrtc_offer", handle):
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 503


async def test_camera_ending_session_frees_it(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """An error from the camera after the 201 ends the session (audit: camera_ended)."""
    sent: list[Any] = []
    original = camera.async_handle_async_webrtc_offer

    async def handle(offer: str, session_id: str, send: Any) -> None:
        sent.append(send)
        await original(offer, session_id, send)

    with patch.object(camera, "async_handle_async_webrtc_offer", handle):
        viewer = viewers(share.path)
        await viewer.start()
    sent[0](WebRTCError("1", "stream ended"))
    assert share.viewer_count == 0
    assert viewer.location is not None
    assert (await http.delete(viewer.location)).status == 404
    assert share.viewer_summary()[0]["ended"] == "camera_ended"
    # Late messages for a closed session are ignored.
    sent[0](WebRTCError("1", "again"))


async def test_revoke_closes_every_session_and_404s(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """Revoking ends every session, its media, and every URL under the token."""
    two = [viewers(share.path), viewers(share.path, trickle=True)]
    for viewer in two:
        await _frames(viewer)

    await webrtc_share.async_revoke(hass, share)

    assert len(camera.peers.closed) == 2
    for viewer in two:
        assert viewer.location is not None
        assert (await http.delete(viewer.location)).status == 404
        assert (await viewer.patch("a=end-of-candidates\r\n")) == 404
    response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 404
    assert [r["ended"] for r in share.viewer_summary()] == ["share_ended"] * 2
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await asyncio.gather(*(viewer.ended.wait() for viewer in two))


async def test_revoke_during_negotiation_is_404(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
) -> None:
    """A POST still waiting for the camera when the share ends gets 404."""
    camera.silent = True
    post = asyncio.create_task(_post(http, share.path, OFFER.encode(), SDP_TYPE))
    while not share.sessions:
        await asyncio.sleep(0.01)
    await webrtc_share.async_revoke(hass, share)
    assert (await post).status == 404
    assert share.viewer_summary() == []


async def test_aborted_posts_free_their_slots_and_close_camera_sessions(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """Four clients gone while the camera answers: slots freed, camera sessions closed."""
    camera.connecting = asyncio.Event()
    posts = [
        asyncio.create_task(_post(http, share.path, OFFER.encode(), SDP_TYPE))
        for _ in range(4)
    ]
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while len(camera.received) < 4:
            await asyncio.sleep(0.01)
    # The city's connections drop: Home Assistant cancels the four requests.
    for post in posts:
        post.cancel()
    await asyncio.gather(*posts, return_exceptions=True)
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while share.sessions:
            await asyncio.sleep(0.01)
    assert sorted(camera.peers.closed) == sorted(camera.received)

    camera.connecting.set()
    viewer = viewers(share.path)
    await _frames(viewer)
    fifth = camera.received[-1]
    # The four offers reached the camera after all: none of them was started.
    await asyncio.gather(*camera.tasks)
    assert list(camera.peers.pcs) == [fifth]
    assert len(share.viewer_summary()) == 1


@pytest.mark.parametrize("camera_kind", ["nest"])
async def test_session_the_camera_registers_late_is_closed_when_it_appears(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: NestLikeCamera,
) -> None:
    """The share ends while a Nest-like camera answers: its session is closed once it exists."""
    camera.api = asyncio.Event()
    post = asyncio.create_task(_post(http, share.path, OFFER.encode(), SDP_TYPE))
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while not camera.received:
            await asyncio.sleep(0.01)
    await webrtc_share.async_revoke(hass, share)
    camera.api.set()
    assert (await post).status == 404
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while not camera.registered:
            await asyncio.sleep(0.01)
    await hass.async_block_till_done()
    assert camera.registered == camera.received
    assert not camera.peers.pcs
    assert share.viewer_summary() == []


async def test_patch_errors(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    viewers: Callable[..., Viewer],
) -> None:
    """Wrong type 415, ICE restart 400, malformed 400, camera refusal 503."""
    viewer = viewers(share.path)
    await viewer.start()
    assert viewer.location is not None
    response = await http.patch(
        viewer.location,
        data=b"a=end-of-candidates",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status == 415
    assert (await viewer.patch("a=ice-ufrag:other\r\na=mid:1\r\n")) == 400
    assert (await viewer.patch("nonsense\r\n")) == 400
    # A candidate for a section that does not exist goes nowhere.
    assert (
        await viewer.patch("a=mid:9\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")
    ) == 204
    with patch.object(
        RingLikeCamera,
        "async_on_webrtc_candidate",
        side_effect=HomeAssistantError("refused"),
    ):
        status = await viewer.patch(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
            "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
        )
    assert status == 503


async def test_patch_for_unknown_session_is_404(
    share: webrtc_share.WebRtcShare, http: Any
) -> None:
    """A session id that was never issued."""
    response = await http.patch(
        f"{share.path}/{'y' * 22}",
        data=b"a=end-of-candidates\r\n",
        headers={"Content-Type": SDPFRAG_TYPE},
    )
    assert response.status == 404


async def test_cors_preflight_and_exposed_location(
    share: webrtc_share.WebRtcShare, http: Any, viewers: Callable[..., Viewer]
) -> None:
    """A browser on another origin may POST, PATCH and DELETE, and read Location."""
    origin = {"Origin": "https://rtcc.city.example"}
    for url in (share.path, f"{share.path}/{'y' * 22}"):
        response = await http.options(
            url,
            headers={
                **origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        methods = response.headers["Access-Control-Allow-Methods"]
        assert {"POST", "PATCH", "DELETE"} <= set(methods.replace(" ", "").split(","))
        assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    viewer = viewers(share.path)
    response = await http.post(
        share.path,
        data=(await _offer_of(viewer)).encode(),
        headers={**origin, "Content-Type": SDP_TYPE},
    )
    assert response.status == 201
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


async def _offer_of(viewer: Viewer) -> str:
    viewer.pc.addTransceiver("video", direction="recvonly")
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    return viewer.pc.localDescription.sdp


@pytest.fixture
async def http_with_cors_origins(hass: HomeAssistant) -> None:
    """HA's own CORS configured for some origin (aiohttp_cors active)."""
    assert await async_setup_component(
        hass, "http", {"http": {"cors_allowed_origins": ["https://rtcc.city.example"]}}
    )


async def test_cors_with_configured_origins_is_not_500(
    http_with_cors_origins: None,
    share: webrtc_share.WebRtcShare,
    http: Any,
    viewers: Callable[..., Viewer],
) -> None:
    """aiohttp_cors never takes over the routes, so exposing Location does not break."""
    viewer = viewers(share.path)
    response = await http.post(
        share.path,
        data=(await _offer_of(viewer)).encode(),
        headers={"Origin": "https://rtcc.city.example", "Content-Type": SDP_TYPE},
    )
    assert response.status == 201
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


async def _links(
    hass: HomeAssistant, http: Any, viewers: Callable[..., Viewer], ice: IceConfig
) -> list[str]:
    """The Link headers of a WHEP answer, for a share with these ICE servers."""
    share = await webrtc_share.async_start(
        hass, CAMERA, share_audio=False, expires=EXPIRES, ice=ice, lab_mode=True
    )
    viewer = viewers(share.path)
    response = await http.post(
        share.path,
        data=(await _offer_of(viewer)).encode(),
        headers={"Content-Type": SDP_TYPE},
    )
    assert response.status == 201
    await webrtc_share.async_revoke(hass, share)
    links: list[str] = response.headers.getall("Link", [])
    return links


async def test_ice_servers_only_as_configured(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: RingLikeCamera,
    http: Any,
    viewers: Callable[..., Viewer],
) -> None:
    """Link headers list the resident's ICE servers, and nothing without them.

    TURN credentials derived from the secret expire with the share; a fixed
    password (accepted by the resident) is quoted, quote and backslash escaped.
    """
    assert await _links(hass, http, viewers, IceConfig()) == []
    ice = IceConfig.from_options(
        {
            CONF_ICE_SERVERS: [
                "stun:stun.example.org:3478",
                "turn:turn.example.org:3478?transport=udp",
                'turns:fixed.example.org:5349 city s3"cr\\et',
            ],
            CONF_TURN_SECRET: TURN_SECRET,
            CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True,
        }
    )
    username, credential = turn_credentials(TURN_SECRET, EXPIRES)
    assert username == "1893456000:rtcc_share"
    assert await _links(hass, http, viewers, ice) == [
        '<stun:stun.example.org:3478>; rel="ice-server"',
        '<turn:turn.example.org:3478?transport=udp>; rel="ice-server";'
        f' username="{username}"; credential="{credential}";'
        ' credential-type="password"',
        '<turns:fixed.example.org:5349>; rel="ice-server"; username="city";'
        ' credential="s3\\"cr\\\\et"; credential-type="password"',
    ]
    await camera.peers.async_close_all()


async def test_stored_ice_servers_a_header_cannot_carry_are_skipped(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: RingLikeCamera,
    http: Any,
    viewers: Callable[..., Viewer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines stored before the checks: no broken header, a warning without secrets."""
    ice = IceConfig.from_options(
        {
            CONF_ICE_SERVERS: [
                'stun:a.example.org>; rel="ice-server", <turn:evil.example.org',
                "turn:t.example.org city hunter2",
                "turn:t.example.org city hunter\x01",
                "turn:t.example.org",
                "stun:good.example.org",
            ]
        }
    )
    assert await _links(hass, http, viewers, ice) == [
        '<stun:good.example.org>; rel="ice-server"'
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "ICE server on line 1 of the options is not given to the city:"
        " invalid_ice_server",
        "ICE server on line 2 of the options is not given to the city:"
        " ice_static_credentials_not_accepted",
        "ICE server on line 3 of the options is not given to the city:"
        " invalid_ice_credential",
        "ICE server on line 4 of the options is not given to the city:"
        " turn_secret_required",
    ]
    assert "hunter" not in caplog.text
    assert "evil" not in caplog.text
    await camera.peers.async_close_all()


async def test_no_token_or_sdp_in_logs(
    share: webrtc_share.WebRtcShare,
    viewers: Callable[..., Viewer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Debug logging of a whole session shows neither the token nor any SDP."""
    caplog.set_level(logging.DEBUG)
    viewer = viewers(share.path, trickle=True)
    await viewer.start()
    await viewer.close()
    # Home Assistant's and ours (aiortc's own debug log is the test peers').
    ours = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("custom_components.", "homeassistant."))
    )
    assert "WebRTC viewer session opened" in ours
    assert share.token not in ours
    assert "ice-pwd" not in ours
    assert "candidate" not in ours


@pytest.fixture
def provider(video_file: Path) -> LoopbackProvider:
    """A go2rtc-like WebRTC provider for the test video."""
    return LoopbackProvider(video_file)


@pytest.mark.parametrize("camera_kind", ["provider"])
async def test_city_decodes_camera_served_by_webrtc_provider(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: ProviderCamera,
    provider: LoopbackProvider,
    viewers: Callable[..., Viewer],
) -> None:
    """A camera with a stream source and a registered provider streams over WebRTC."""
    assert not webrtc_share.supports_webrtc(hass, CAMERA)
    with pytest.raises(HomeAssistantError):
        await webrtc_share.async_start(hass, CAMERA, share_audio=False, expires=EXPIRES)

    unregister = async_register_webrtc_provider(hass, provider)
    await hass.async_block_till_done()
    assert webrtc_share.supports_webrtc(hass, CAMERA)
    share = await webrtc_share.async_start(
        hass, CAMERA, share_audio=False, expires=EXPIRES, lab_mode=True
    )
    viewer = viewers(share.path, trickle=True)
    await _frames(viewer)
    assert viewer.size == (160, 96)
    assert provider.peers.remote_candidates

    await webrtc_share.async_revoke(hass, share)
    assert len(provider.peers.closed) == 1
    await provider.peers.async_close_all()
    unregister()
    await hass.async_block_till_done()


async def test_unknown_camera_does_not_support_webrtc(hass: HomeAssistant) -> None:
    """No such entity: no WebRTC."""
    assert not webrtc_share.supports_webrtc(hass, "camera.nowhere")


async def test_revoke_survives_camera_removed(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    viewers: Callable[..., Viewer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If the camera entity is gone, revoking still drops every session."""
    viewer = viewers(share.path)
    await viewer.start()
    with patch.object(
        webrtc_share,
        "get_camera_from_entity_id",
        side_effect=HomeAssistantError("gone"),
    ):
        await webrtc_share.async_revoke(hass, share)
    assert not share.sessions
    assert "Closing a WebRTC session" in caplog.text


async def test_camera_candidates_by_mid_and_end_of_candidates(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """Candidates by sdp_mid or without index go in; end-of-candidates ends the wait."""
    answer = (
        OFFER.split("m=video", maxsplit=1)[0]
        .replace("m=audio", "m=video")
        .replace("a=recvonly", "a=sendrecv")
    )

    with pytest.warns(DeprecationWarning, match="RTCIceCandidateInit"):
        # Older integrations still send the deprecated RTCIceCandidate.
        legacy = RTCIceCandidate("candidate:2 1 udp 9 127.0.0.1 10 typ host")

    async def handle(offer: str, session_id: str, send: Any) -> None:
        send(WebRTCAnswer(answer))
        send(
            WebRTCCandidate(
                RTCIceCandidateInit(
                    "candidate:1 1 udp 9 127.0.0.1 9 typ host", sdp_mid="0"
                )
            )
        )
        send(WebRTCCandidate(legacy))
        send(WebRTCCandidate(RTCIceCandidateInit("")))

    with (
        patch.object(webrtc_view, "CANDIDATE_WAIT_S", 30),
        patch.object(camera, "async_handle_async_webrtc_offer", handle),
    ):
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    assert response.status == 201
    text = await response.text()
    assert "a=candidate:1 " in text
    assert "a=candidate:2 " in text


async def test_offer_without_bundle_keeps_its_sections(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """Without BUNDLE, a removed section's candidates stay removed."""
    offer = OFFER.replace("a=group:BUNDLE 0 1\r\n", "")
    assert (await _post(http, share.path, offer.encode(), SDP_TYPE)).status == 201
    (seen,) = camera.peers.offers
    assert "BUNDLE" not in seen
    assert "m=audio" not in seen


async def test_probe_webrtc_reports_first_frame(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scripts/city probe-webrtc` decodes frames, then ends its session."""
    url = str(http.make_url(share.path))
    status = await hass.async_add_executor_job(
        cli.main, ["probe-webrtc", "--url", url, "--seconds", "1.5"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.fullmatch(
        r"first frame \d+\.\d{3} s after the 201; \d+ frames \(160x96\) in 1.5 s\n",
        out,
    )
    assert share.viewer_summary()[0]["ended"] == "deleted"


async def test_probe_webrtc_refused(
    hass: HomeAssistant, http: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown token: the probe says so and fails."""
    url = str(http.make_url(f"{tokens.WEBRTC.prefix}/{'x' * 43}"))
    status = await hass.async_add_executor_job(
        cli.main, ["probe-webrtc", "--url", url, "--seconds", "0"]
    )
    assert status == 1
    assert "refused: HTTP 404" in capsys.readouterr().err


def test_every_whep_error_documented() -> None:
    """Each error status and code of the WHEP endpoint is in docs/openapi.yaml."""
    root = Path(__file__).parent.parent
    spec = yaml.safe_load((root / "docs" / "openapi.yaml").read_text("utf-8"))
    live = root / "custom_components" / "rtcc_share" / "live"
    emitted = {
        (HTTPStatus[call.args[0].attr].value, call.args[1].value)
        for name in ("webrtc_view.py", "http.py")
        for call in ast.walk(ast.parse((live / name).read_text("utf-8")))
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "LiveHttpError"
        and len(call.args) >= 2
        and isinstance(call.args[0], ast.Attribute)
        and isinstance(call.args[1], ast.Constant)
    }
    assert len(emitted) == 6
    documented: set[tuple[int, str]] = set()
    for path in (
        "/api/rtcc_share/whep/{token}",
        "/api/rtcc_share/whep/{token}/{session}",
    ):
        for operation in spec["paths"][path].values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = spec["components"]["responses"][
                        response["$ref"].rsplit("/", 1)[1]
                    ]
                schema = (
                    response.get("content", {})
                    .get("application/json", {})
                    .get("schema", {})
                )
                for part in schema.get("allOf", []):
                    for code in (
                        part.get("properties", {}).get("error", {}).get("enum", [])
                    ):
                        documented.add((int(status), code))
    assert emitted <= documented
    codes = set(
        spec["components"]["schemas"]["WhepError"]["properties"]["error"]["enum"]
    )
    assert {code for _, code in emitted} == codes


@pytest.fixture
async def chromium_page() -> AsyncGenerator[Any]:
    """Headless Chromium on the city's viewer page, served from another origin."""
    if chromium() is None:
        pytest.skip("Debian's chromium is not installed")
    async with viewer_page() as page:
        yield page


async def test_chromium_on_another_origin_plays_and_reads_location(
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
    chromium_page: Any,
) -> None:
    """A browser: CORS preflights pass, Location is readable, frames decode."""
    url = str(http.make_url(share.path))
    result = await chromium_page.js(f"watch({json.dumps(url)})")
    assert result["status"] == 201, result
    assert "m=audio 0 " in result["answer"]
    assert result["location"].startswith(url + "/")
    assert result["patch"] == 204
    assert result["delete"] == 200
    assert result["frames"] > 0
    assert camera.peers.remote_candidates
    assert share.viewer_summary()[0]["ended"] == "deleted"


async def test_revoke_while_offer_is_read_opens_no_camera_session(
    hass: HomeAssistant,
    share: webrtc_share.WebRtcShare,
    http: Any,
    camera: RingLikeCamera,
) -> None:
    """An offer whose body arrives after the share ended gets 404, camera untouched."""
    arrived = asyncio.Event()

    async def slow_body() -> AsyncGenerator[bytes]:
        yield OFFER[:20].encode()
        await arrived.wait()
        yield OFFER[20:].encode()

    post = asyncio.create_task(_post(http, share.path, slow_body(), SDP_TYPE))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    await webrtc_share.async_revoke(hass, share)
    arrived.set()
    assert (await post).status == 404
    assert not camera.peers.offers


async def test_stopping_home_answers_503(
    hass: HomeAssistant, share: webrtc_share.WebRtcShare, http: Any
) -> None:
    """While Home Assistant stops, no new session."""
    hass.set_state(CoreState.stopping)
    try:
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
    finally:
        hass.set_state(CoreState.running)
    assert response.status == 503


async def test_full_share_is_409_before_the_offer_is_read(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """With every slot taken, not even a malformed offer is parsed."""
    plan = plan_offer(OFFER, share_audio=False, allow_private=True)
    for _ in range(webrtc_view.MAX_SESSIONS):
        share.add_session(plan, "192.0.2.1")
    with patch.object(webrtc_view, "plan_offer", side_effect=AssertionError):
        response = await _post(http, share.path, b"m=audio\t9" * 4000, SDP_TYPE)
    assert response.status == 409
    assert (await response.json())["error"] == "too_many_sessions"
    assert not camera.peers.offers


def _camera_answer(extra: str = "") -> str:
    return (
        OFFER.split("m=video", maxsplit=1)[0]
        .replace("m=audio", "m=video")
        .replace("a=recvonly", f"a=sendrecv\r\n{extra}")
    )


async def test_camera_candidates_cannot_inject_lines_nor_city_control_characters(
    share: webrtc_share.WebRtcShare, http: Any, camera: RingLikeCamera
) -> None:
    """A camera candidate with CRLF adds nothing; a PATCH with a VT is refused."""
    evil = (
        "candidate:1 1 udp 9 127.0.0.1 9 typ host\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:evil\r\na=sendrecv"
    )

    async def handle(offer: str, session_id: str, send: Any) -> None:
        send(WebRTCAnswer(_camera_answer()))
        send(WebRTCCandidate(RTCIceCandidateInit(evil, sdp_mid="0")))
        send(
            WebRTCCandidate(
                RTCIceCandidateInit("candidate:2 1 udp 9 127.0.0.1 10 typ host")
            )
        )
        send(WebRTCCandidate(RTCIceCandidateInit("")))

    given: list[RTCIceCandidateInit] = []

    async def on_candidate(session_id: str, candidate: RTCIceCandidateInit) -> None:
        given.append(candidate)

    with (
        patch.object(camera, "async_handle_async_webrtc_offer", handle),
        patch.object(camera, "async_on_webrtc_candidate", on_candidate),
    ):
        response = await _post(http, share.path, OFFER.encode(), SDP_TYPE)
        assert response.status == 201
        answer = await response.text()
        assert answer.count("m=audio") == 1
        assert "m=audio 0 " in answer
        assert "evil" not in answer
        assert "a=sendrecv" not in answer
        assert "a=candidate:2 " in answer
        location = response.headers["Location"]
        frag = "a=mid:1\r\na=candidate:1 1 udp 9 127.0.0.1 9 typ host"
        for body, status in (
            (f"{frag}\x0b\r\n", 400),
            (f"{frag}\ra=candidate:2 1 udp 9 127.0.0.1 10 typ host\r\n", 400),
            (f"{frag} generation\r\n", 204),
        ):
            response = await http.patch(
                location, data=body.encode(), headers={"Content-Type": SDPFRAG_TYPE}
            )
            assert response.status == status, body
    assert given == []


async def test_outside_lab_mode_no_private_address_crosses(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    http: Any,
    camera: RingLikeCamera,
) -> None:
    """The camera gets only the city's public candidates; the city none of the LAN's."""
    share = await webrtc_share.async_start(
        hass, CAMERA, share_audio=False, expires=EXPIRES
    )
    public = "81.2.69.142"
    private = ("10.0.0.5", "127.0.0.1", "169.254.1.1", "100.64.0.1", "fd00::1")
    city = (
        "".join(
            f"a=candidate:{n} 1 udp 9 {address} 9 typ host\r\n"
            for n, address in enumerate(private)
        )
        + f"a=candidate:9 1 udp 9 {public} 9 typ srflx raddr 10.0.0.5 rport 9\r\n"
    )
    offers: list[str] = []
    given: list[RTCIceCandidateInit] = []

    async def handle(offer: str, session_id: str, send: Any) -> None:
        offers.append(offer)
        home = "a=candidate:1 1 udp 9 192.168.1.20 50000 typ host\r\n"
        send(WebRTCAnswer(_camera_answer(home).replace("0.0.0.0", "192.168.1.20")))
        for address in ("192.168.1.20", "a1b2.local", public):
            send(
                WebRTCCandidate(
                    RTCIceCandidateInit(
                        f"candidate:2 1 udp 9 {address} 50000 typ srflx"
                        " raddr 192.168.1.20 rport 50000",
                        sdp_mid="0",
                    )
                )
            )
        send(WebRTCCandidate(RTCIceCandidateInit("")))

    async def on_candidate(session_id: str, candidate: RTCIceCandidateInit) -> None:
        given.append(candidate)

    with (
        patch.object(camera, "async_handle_async_webrtc_offer", handle),
        patch.object(camera, "async_on_webrtc_candidate", on_candidate),
    ):
        response = await _post(
            http,
            share.path,
            OFFER.replace("a=mid:1\r\n", f"a=mid:1\r\n{city}").encode(),
            SDP_TYPE,
        )
        assert response.status == 201
        answer = await response.text()
        response = await http.patch(
            response.headers["Location"],
            data=f"a=mid:1\r\n{city}".encode(),
            headers={"Content-Type": SDPFRAG_TYPE},
        )
        assert response.status == 204
    (offer,) = offers
    masked = f"candidate:9 1 udp 9 {public} 9 typ srflx raddr 0.0.0.0 rport 0"
    assert [line for line in offer.split("\r\n") if "candidate" in line] == [
        f"a={masked}"
    ]
    assert [candidate.candidate for candidate in given] == [masked]
    assert "192.168.1.20" not in answer
    assert ".local" not in answer
    assert (
        f"a=candidate:2 1 udp 9 {public} 50000 typ srflx raddr 0.0.0.0 rport 0"
        in answer
    )
    await webrtc_share.async_revoke(hass, share)
