"""The live share through HA's real stream component, with real H.264 video."""

import asyncio
import dataclasses
from datetime import timedelta
import io
import json
import logging
from pathlib import Path
import re
import shutil
import threading
from types import SimpleNamespace
from typing import Any

import av
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.components.stream import CONF_EXTRA_PART_WAIT_TIME
from homeassistant.components.stream.diagnostics import Diagnostics
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_PRIVACY_MASKS,
    CONF_SHARE_AUDIO,
    DEFAULT_OPTIONS,
)
from custom_components.rtcc_share.live import hls_worker
from custom_components.rtcc_share.live.hls_playlists import SEQUENCE_OFFSET
from custom_components.rtcc_share.live.hls_share import RTSP_VIDEO_ONLY, HlsShare
from custom_components.rtcc_share.live.hls_stream import (
    has_non_video_track,
    share_stream_settings,
)
from custom_components.rtcc_share.live.hls_worker import (
    HEALTHY_S,
    Backoff,
    ShareStreamState,
)

from .common import (
    CAMERA,
    CONSENT,
    EXTERNAL_URL,
    WEBHOOK_URL,
    City,
    ended,
    requested,
    turn_on_consent,
)
from .conftest import SourceCamera
from .live_camera import LiveCamera, write_recording
from .mask_video import LiveFeed, brightest_masked, luma, painted_area
from .video import make_video


class Viewer:
    """The city's HLS viewer: fetches the files a player would."""

    def __init__(self, client: Any, stream_url: str) -> None:
        """Fetch relative to the master playlist."""
        self.client = client
        self.base = stream_url.removeprefix(EXTERNAL_URL).rsplit("/", 1)[0]

    async def get(self, name: str) -> tuple[int, bytes]:
        """GET one file of the share."""
        response = await self.client.get(f"{self.base}/{name}")
        return response.status, await response.read()

    async def files(self) -> dict[str, tuple[int, bytes]]:
        """Fetch master playlist, playlist, init and the first segment."""
        files = {"master": await self.get("master_playlist.m3u8")}
        # A file source is read faster than real time and HA keeps only the
        # last few segments: like a player, reload the playlist if the newest
        # segment listed is already gone.
        for _ in range(5):
            files["playlist"] = await self.get("playlist.m3u8")
            files["init"] = await self.get("init.mp4")
            segments = re.findall(rb"segment/\d+\.m4s", files["playlist"][1])
            assert segments, files["playlist"]
            files["segment"] = await self.get(segments[-1].decode())
            if files["segment"][0] == 200:
                break
        return files


@pytest.fixture
async def grant(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
) -> Any:
    """Turn consent on and have the city activate; return a viewer factory."""
    client = await hass_client_no_auth()

    async def _grant(
        activation_id: str = "JPD-RTCC-0017",
    ) -> tuple[int, dict[str, Any], Viewer]:
        await turn_on_consent(hass)
        body, headers = city.sign(requested(activation_id))
        response = await client.post(WEBHOOK_URL, data=body, headers=headers)
        data = await response.json()
        return response.status, data, Viewer(client, data.get("stream_url", "/x/y"))

    _grant.client = client  # type: ignore[attr-defined]
    return _grant


def _decode(init: bytes, segment: bytes) -> tuple[list[str], int]:
    with av.open(io.BytesIO(init + segment)) as container:
        kinds = [f"{s.type}:{s.codec_context.name}" for s in container.streams]
        frames = sum(1 for _ in container.decode(video=0))
    return kinds, frames


async def test_grant_serves_decodable_h264_without_audio(
    hass: HomeAssistant, grant: Any
) -> None:
    """Master playlist, playlist, init and a segment are served and decode."""
    status, _, viewer = await grant()
    assert status == 201
    files = await viewer.files()
    assert {name: code for name, (code, _) in files.items()} == dict.fromkeys(
        files, 200
    )
    assert b"playlist.m3u8" in files["master"][1]
    kinds, frames = await hass.async_add_executor_job(
        _decode, files["init"][1], files["segment"][1]
    )
    assert kinds == ["video:h264"]
    assert frames > 0


async def _end_by(
    hass: HomeAssistant,
    how: str,
    grant: Any,
    entry: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    if how == "expired":
        freezer.tick(timedelta(seconds=DEFAULT_OPTIONS["max_duration_s"] + 1))
        async_fire_time_changed(hass)
    elif how == "ended_by_city":
        body, headers = city.sign(ended())
        await grant.client.post(WEBHOOK_URL, data=body, headers=headers)
    elif how == "consent_off":
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": CONSENT}, blocking=True
        )
    elif how == "consent_lapsed":
        freezer.tick(timedelta(seconds=101))
        async_fire_time_changed(hass)
    elif how == "stopped_by_resident":
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": "button.front_door_stop_sharing_now"},
            blocking=True,
        )
    elif how == "camera_unavailable":
        hass.states.async_set(CAMERA, "unavailable")
    elif how == "unloaded":
        await hass.config_entries.async_unload(entry.entry_id)
    elif how == "ha_stopping":
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    "how",
    [
        "expired",
        "ended_by_city",
        "consent_off",
        "consent_lapsed",
        "stopped_by_resident",
        "camera_unavailable",
        "unloaded",
        "ha_stopping",
    ],
)
async def test_every_end_revokes_every_url(
    hass: HomeAssistant,
    grant: Any,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
    how: str,
) -> None:
    """However the share ends, every URL 404s and no worker thread lingers."""
    ended_events = async_capture_events(hass, "rtcc_share_ended")
    if how == "consent_lapsed":
        # Consent given long ago lapses in the middle of the share.
        await turn_on_consent(hass)
        freezer.tick(
            timedelta(days=DEFAULT_OPTIONS["consent_lapse_days"], seconds=-100)
        )
        async_fire_time_changed(hass)
    status, _, viewer = await grant()
    assert status == 201
    files = await viewer.files()
    segment = re.search(rb"segment/\d+\.m4s", files["playlist"][1]).group().decode()
    await _end_by(hass, how, grant, integration, city, freezer)
    for name in ("master_playlist.m3u8", "playlist.m3u8", "init.mp4", segment):
        assert (await viewer.get(name))[0] == 404, name
    assert [e.data["reason"] for e in ended_events] == [how]
    assert not [t for t in threading.enumerate() if t.name == "stream_worker"]


async def test_blocking_playlist_request_is_released(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """An LL-HLS request waiting for a future part returns 404 on revoke, at once."""
    _watch(grant, camera, live_cameras["fast"])
    _, _, viewer = await grant()
    assert (await viewer.get("master_playlist.m3u8"))[0] == 200
    track = integration.runtime_data.session.live.stream.provider
    # The live camera makes that part a second or more from now.
    waiting = asyncio.ensure_future(
        viewer.get(f"playlist.m3u8?_HLS_msn={track.last_sequence + 2}&_HLS_part=0")
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await integration.runtime_data.session.async_end("stopped_by_resident")
    status, _ = await asyncio.wait_for(waiting, timeout=1)
    assert status == 404


async def test_late_viewer_still_gets_video(
    hass: HomeAssistant, grant: Any, freezer: FrozenDateTimeFactory
) -> None:
    """A viewer opening the URL two minutes after the grant gets video."""
    _, _, viewer = await grant()
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    files = await viewer.files()
    assert files["segment"][0] == 200


async def test_ten_viewers_one_upstream(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """Ten concurrent viewers share one worker: one upstream connection."""
    live_camera = live_cameras["fast"]
    _watch(grant, camera, live_camera)
    _, _, viewer = await grant()
    results = await asyncio.gather(
        *(viewer.get("master_playlist.m3u8") for _ in range(10))
    )
    assert [status for status, _ in results] == [200] * 10
    live = integration.runtime_data.session.live
    assert live.stream.stream.get_diagnostics()["start_worker"] == 1
    # The grant's probe for audio, then the stream's one connection.
    assert live_camera.connections == 2
    assert len(live.stream.table.viewers) == 1
    # The resident sees the viewer count as soon as a viewer appears.
    state = hass.states.get("binary_sensor.front_door_live_share")
    assert state.attributes["viewers"] == 1
    assert next(iter(live.stream.table.viewers.values())).requests == 10


async def test_thousand_viewer_addresses_bounded_record_and_few_state_writes(
    hass: HomeAssistant,
    grant: Any,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    """1 000 addresses: 50 kept, the rest summed; the count is written ~once a second."""
    _, _, viewer = await grant()
    assert (await viewer.get("master_playlist.m3u8"))[0] == 200
    await hass.async_block_till_done()
    live = integration.runtime_data.session.live
    writes = async_capture_events(hass, EVENT_STATE_CHANGED)
    freezer.tick(timedelta(seconds=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    for i in range(999):
        live.stream.log_request(f"2001:db8::{i:x}", 100)
    await hass.async_block_till_done()
    assert len(live.stream.table.viewers) == 50
    freezer.tick(timedelta(seconds=1.5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    sensor_writes = [
        event.data["new_state"].attributes["viewers"]
        for event in writes
        if event.data["entity_id"] == "binary_sensor.front_door_live_share"
    ]
    assert sensor_writes == [2, 1000]
    others = live.stream.viewer_summary()[-1]
    assert others["other_addresses"] == 950
    assert (others["requests"], others["bytes"]) == (950, 95_000)
    assert "address" not in others

    body, headers = city.sign(ended())
    await grant.client.post(WEBHOOK_URL, data=body, headers=headers)
    records = await integration.runtime_data.audit.async_export(None, None)
    (record,) = [r for r in records if r["event"] == "share_ended"]
    assert len(record["viewers"]) == 51
    assert record["viewers"][-1]["other_addresses"] == 950
    assert len(json.dumps(record)) < 12_000


def test_viewer_counted_before_anyone_listens() -> None:
    """A request served before the session subscribes is counted, not lost."""
    share = HlsShare(stream=SimpleNamespace(hass=None), token="0" * 64)  # type: ignore[arg-type]
    share.log_request("203.0.113.7", 10)
    assert share.viewer_count == 1
    assert share.viewer_summary()[0]["bytes"] == 10


async def test_audio_source_refused_when_audio_off(
    hass: HomeAssistant, grant: Any, camera: SourceCamera, video_with_audio: Any
) -> None:
    """A source with audio that cannot be filtered is not shared while audio is off."""
    camera.source = str(video_with_audio)
    status, body, _ = await grant()
    assert (status, body["error"]) == (503, "camera_unavailable")


@pytest.mark.parametrize("entry_options", [{**DEFAULT_OPTIONS, CONF_SHARE_AUDIO: True}])
async def test_audio_shared_when_enabled(
    hass: HomeAssistant, grant: Any, camera: SourceCamera, video_with_audio: Any
) -> None:
    """With share_audio on, the audio track is remuxed (not transcoded)."""
    camera.source = str(video_with_audio)
    status, _, viewer = await grant()
    assert status == 201
    files = await viewer.files()
    kinds, _ = await hass.async_add_executor_job(
        _decode, files["init"][1], files["segment"][1]
    )
    assert kinds == ["video:h264", "audio:aac"]


async def test_rtsp_source_requests_video_only(
    hass: HomeAssistant, grant: Any, camera: SourceCamera, integration: MockConfigEntry
) -> None:
    """For RTSP, only the video track is set up: audio never leaves the camera."""
    camera.source = "rtsp://127.0.0.1:9/doorbell"
    status, _, _ = await grant()
    assert status == 201
    live = integration.runtime_data.session.live
    assert RTSP_VIDEO_ONLY.items() <= live.stream.stream.pyav_options.items()


async def test_unknown_token_and_file_404(hass: HomeAssistant, grant: Any) -> None:
    """Unknown tokens and unknown file names are 404."""
    _, _, viewer = await grant()
    assert (await viewer.get("nonsense.txt"))[0] == 404
    response = await grant.client.get("/api/rtcc_share/hls/" + "a" * 64 + "/init.mp4")
    assert response.status == 404


async def test_each_share_has_its_own_live_settings(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """The share cuts a segment per keyframe with short parts; HA's are untouched."""
    ha_settings = hass.data["stream"]["settings"]
    before = dataclasses.replace(ha_settings)
    camera.stream_options = {CONF_EXTRA_PART_WAIT_TIME: 2.0}
    _watch(grant, camera, live_cameras["fast"])
    status, _, viewer = await grant()
    assert status == 201
    share = integration.runtime_data.session.live.stream
    settings = share.provider.stream_settings
    assert settings == share_stream_settings({CONF_EXTRA_PART_WAIT_TIME: 2.0})
    assert (settings.ll_hls, settings.part_target_duration) == (True, 0.55)
    assert settings.min_segment_duration == pytest.approx(0.9)
    # As HA derives them for a 0.55 s part, plus the camera's extra wait.
    assert settings.hls_advance_part_limit == 5
    assert settings.hls_part_timeout == pytest.approx(3.1)
    # Segments are cut at every keyframe of the camera, a second apart.
    async with asyncio.timeout(15):
        while share.provider.last_sequence < 3:
            await asyncio.sleep(0.1)
    playlist = (await viewer.get("playlist.m3u8"))[1].decode()
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist)]
    assert len(durations) == 3
    assert durations == [pytest.approx(1.0, abs=0.15)] * 3, playlist
    assert "#EXT-X-PART-INF:PART-TARGET=0.550" in playlist
    # Home Assistant's own settings, and its own stream of the camera, keep HA's.
    assert ha_settings == before
    assert ha_settings is not settings
    own = await camera.async_create_stream()
    assert own is not share.stream
    # The share's worker opens the source without estimating the frame rate.
    assert share.stream.pyav_options["fpsprobesize"] == "0"
    assert "fpsprobesize" not in own.pyav_options
    assert own.add_provider("hls").stream_settings == dataclasses.replace(
        before, hls_part_timeout=before.hls_part_timeout + 2.0
    )


async def test_audio_appearing_on_reconnect_is_never_served(
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    video_file: Path,
    video_with_audio: Path,
    tmp_path: Path,
) -> None:
    """A source that gains audio on a reconnect: not one byte of it is served."""
    # The share's worker reconnects to the (file) source soon after it ends.
    source = tmp_path / "doorbell.mp4"
    shutil.copy(video_file, source)
    camera.source = str(source)
    status, _, viewer = await grant()
    assert status == 201
    share = integration.runtime_data.session.live.stream
    calls: list[bool] = []
    share.on_audio_appeared = lambda: calls.append(True)
    assert (await viewer.files())["segment"][0] == 200
    stored = list(share.provider.get_segments())  # type: ignore[union-attr]
    # The microphone is switched on; HA's worker reconnects to the source.
    shutil.copy(video_with_audio, source)
    for _ in range(200):
        if calls:
            break
        stored.extend(share.provider.get_segments())  # type: ignore[union-attr]
        await asyncio.sleep(0.02)
    assert calls == [True]
    assert stored
    assert not any(has_non_video_track(segment.init) for segment in stored)
    for name in ("master_playlist.m3u8", "playlist.m3u8", "init.mp4"):
        assert (await viewer.get(name))[0] == 404, name
    # The worker is stopped in the background.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not [t for t in threading.enumerate() if t.name == "stream_worker"]


def test_only_video_tracks_pass(video_file: Path, video_with_audio: Path) -> None:
    """The init check sees AAC beside H.264, and nothing in a video-only init."""
    inits = [path.read_bytes() for path in (video_file, video_with_audio)]
    assert [has_non_video_track(init) for init in inits] == [False, True]
    # A track of unreadable kind counts as not video.
    assert has_non_video_track(inits[0].replace(b"hdlr", b"hdlx"))


async def test_playlists_answer_once_one_segment_is_complete(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
) -> None:
    """With a single segment made, the master and a plain playlist answer at once.

    Home Assistant's own views wait for a second segment, a second later
    with this camera.
    """
    _watch(grant, camera, live_cameras["fast"])
    status, _, viewer = await grant()
    assert status == 201
    async with asyncio.timeout(5):
        master_status, master = await viewer.get("master_playlist.m3u8")
        playlist_status, playlist = await viewer.get("playlist.m3u8")
    assert (master_status, playlist_status) == (200, 200)
    bandwidth, codecs = re.search(rb'BANDWIDTH=(\d+),CODECS="([^"]+)"', master).groups()
    # Six hex digits, which browsers need, even for the test video's level 1.0.
    assert re.fullmatch(rb"avc1\.[0-9a-f]{6}", codecs)
    assert int(bandwidth) > 0
    assert re.findall(rb"segment/\d+\.m4s", playlist) == [b"segment/1.m4s"]
    # Players start and stay three parts behind the newest part.
    assert b"PART-HOLD-BACK=1.650" in playlist
    assert b"#EXT-X-START:TIME-OFFSET=-1.650,PRECISE=YES" in playlist
    # A blocking request keeps HA's semantics: it waits for what it asks for.
    waiting = asyncio.ensure_future(viewer.get("playlist.m3u8?_HLS_msn=2&_HLS_part=0"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    waiting.cancel()
    # Without a part, for that segment whole.
    status, playlist = await viewer.get("playlist.m3u8?_HLS_msn=1")
    assert status == 200
    assert b"./segment/1.m4s" in playlist


async def test_players_see_segments_numbered_from_one(
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's segment 0 is segment 1 in the playlist, its URLs and requests.

    hls.js forgets a segment numbered 0 after each of its parts is appended,
    and fetches its parts again and again while it is the newest one.
    """
    camera.source = str(make_video(tmp_path / "one.mp4", seconds=1))
    # One segment only: the file's end is not followed by a reconnection.
    monkeypatch.setattr(hls_worker, "FIRST_RETRY_S", 60)
    monkeypatch.setattr(hls_worker, "MAX_RETRY_S", 60)
    status, _, viewer = await grant()
    assert status == 201
    async with asyncio.timeout(5):
        _, playlist = await viewer.get("playlist.m3u8")
    first = integration.runtime_data.session.live.stream.provider.get_segment(0)
    assert first is not None
    assert first.complete
    assert b"#EXT-X-MEDIA-SEQUENCE:1\n" in playlist
    # The first segment's parts and the segment itself, then the next one's
    # first part, hinted.
    numbers = re.findall(rb"\./segment/(\d+)\.", playlist)
    assert numbers == [b"1"] * (len(first.parts) + 1) + [b"2"], playlist
    assert b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="./segment/2.0.m4s"' in playlist
    # The files under those numbers are the worker's.
    assert await viewer.get("segment/1.m4s") == (200, first.get_data())
    assert await viewer.get("segment/1.0.m4s") == (200, first.parts[0].data)
    # Nothing is numbered 0, and asking for it does not wait.
    async with asyncio.timeout(0.5):
        assert (await viewer.get("segment/0.m4s"))[0] == 404
        assert (await viewer.get("segment/0.0.m4s"))[0] == 404
    # Blocking requests count the same way: the first part is there already,
    # and a request for "segment 0" waits for it, as before.
    async with asyncio.timeout(1):
        for query in ("_HLS_msn=1&_HLS_part=0", "_HLS_msn=0&_HLS_part=0"):
            status, answer = await viewer.get(f"playlist.m3u8?{query}")
            assert status == 200, query
            assert b"#EXT-X-MEDIA-SEQUENCE:1\n" in answer, query


async def test_playlist_waiting_for_a_first_segment_is_released(
    hass: HomeAssistant, grant: Any, camera: SourceCamera, integration: MockConfigEntry
) -> None:
    """A master playlist request waiting for video returns 404 when the share ends."""
    camera.source = "rtsp://127.0.0.1:9/doorbell"
    status, _, viewer = await grant()
    assert status == 201
    waiting = asyncio.ensure_future(viewer.get("master_playlist.m3u8"))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await integration.runtime_data.session.async_end("stopped_by_resident")
    status, _ = await asyncio.wait_for(waiting, timeout=2)
    assert status == 404


async def test_browser_console_on_another_origin_sees_every_answer(
    hass: HomeAssistant, grant: Any, integration: MockConfigEntry
) -> None:
    """CORS headers on every share URL, and on the 404 once the share ended."""
    origin = {"Origin": "https://rtcc.city.example"}
    _, _, viewer = await grant()
    base = viewer.base
    names = ["master_playlist.m3u8", "playlist.m3u8", "init.mp4"]
    await viewer.files()
    for name in names:
        response = await grant.client.get(f"{base}/{name}", headers=origin)
        assert response.status == 200, name
        assert response.headers["Access-Control-Allow-Origin"] in {
            "*",
            origin["Origin"],
        }
    preflight = await grant.client.options(
        f"{base}/playlist.m3u8",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 200
    await integration.runtime_data.session.async_end("stopped_by_resident")
    for name in [*names, "segment/1.m4s"]:
        response = await grant.client.get(f"{base}/{name}", headers=origin)
        assert response.status == 404, name
        assert response.headers["Access-Control-Allow-Origin"] in {
            "*",
            origin["Origin"],
        }


async def test_audio_appearing_ends_the_share_audited_and_told(
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    video_file: Path,
    video_with_audio: Path,
    tmp_path: Path,
) -> None:
    """The share ends with its own reason, in the audit log and for the resident."""
    source = tmp_path / "doorbell.mp4"
    shutil.copy(video_file, source)
    camera.source = str(source)
    status, _, _ = await grant()
    assert status == 201
    # The worker restarts on the short file every 0.05 s: what is listed may be
    # gone by the time it is asked for, so this test does not fetch it.
    assert integration.runtime_data.session.live is not None
    shutil.copy(video_with_audio, source)
    session = integration.runtime_data.session
    for _ in range(300):
        if session.live is None:
            break
        await asyncio.sleep(0.02)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert session.live is None
    records = await integration.runtime_data.audit.async_export(None, None)
    [ended] = [r for r in records if r["event"] == "share_ended"]
    assert ended["reason"] == "audio_appeared"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert any("started sending audio" in n["message"] for n in notifications.values())


async def test_token_never_in_home_assistants_request_log(
    hass: HomeAssistant, grant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With debug logging on, Home Assistant's request log never shows the token."""
    caplog.set_level(logging.DEBUG)
    _, data, viewer = await grant()
    files = await viewer.files()
    assert files["master"][0] == 200
    token = data["stream_url"].split("/")[-2]
    assert token not in caplog.text


# A live camera that a share joins in the middle of a keyframe interval, that
# drops and that hangs (tests/live_camera.py).


@pytest.fixture
def live_cameras(hass: HomeAssistant, camera: SourceCamera) -> dict[str, LiveCamera]:
    """Live cameras served by Home Assistant's HTTP server (before any client)."""
    cameras = {
        # A doorbell sending a keyframe every 4 s, joined 1 s after one.
        "slow": LiveCamera("slow", keyframe_s=4, join_s=1),
        # One sending a keyframe a second, joined half way.
        "fast": LiveCamera("fast", keyframe_s=1, join_s=0.5),
    }
    for live in cameras.values():
        hass.http.register_view(live.view)
    return cameras


def _watch(grant: Any, camera: SourceCamera, live: LiveCamera) -> None:
    """Make the front door camera's stream source this live camera."""
    camera.source = str(grant.client.make_url(live.path))


def _numbers(playlist: str) -> dict[int, int]:
    """Each segment listed (whole or in parts): its discontinuity sequence number.

    Asserts what RFC 8216 requires of a live playlist: the segments' own
    numbers are their media sequence numbers (consecutive from
    EXT-X-MEDIA-SEQUENCE), each EXT-X-DISCONTINUITY adding one to
    EXT-X-DISCONTINUITY-SEQUENCE.
    """
    media = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)[1])  # type: ignore[index]
    discontinuity = int(
        re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", playlist)[1]  # type: ignore[index]
    )
    numbers: dict[int, int] = {}
    for line in playlist.splitlines():
        if line == "#EXT-X-DISCONTINUITY":
            discontinuity += 1
        elif line.startswith("#EXT-X-PRELOAD-HINT"):
            continue  # a part to come, not yet in the playlist
        elif found := re.search(r"(?:^|URI=\")\./segment/(\d+)(?:\.\d+)?\.m4s", line):
            numbers.setdefault(int(found[1]), discontinuity)
    assert list(numbers) == list(range(media, media + len(numbers))), playlist
    return numbers


async def test_camera_joined_between_keyframes_without_timestamps_is_shared(
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """Frames before the first keyframe carry no timestamps: the share waits them out.

    What an RTSP camera joined mid-interval sends: Home Assistant's worker
    stopped at the seventh such frame and retried 10 s later, forever.
    """
    camera.source = str(
        write_recording(tmp_path / "doorbell.ts", keyframe_s=4, join_s=1, seconds=9)
    )
    status, _, viewer = await grant()
    assert status == 201
    async with asyncio.timeout(10):
        master_status, _ = await viewer.get("master_playlist.m3u8")
    assert master_status == 200
    init_status, init = await viewer.get("init.mp4")
    # Players see the worker's first segment as number 1.
    segment_status, segment = await viewer.get("segment/1.m4s")
    assert (init_status, segment_status) == (200, 200)
    frames = await hass.async_add_executor_job(_keyframes, init, segment)
    # 1.5 s at 10 fps, from the camera's first keyframe.
    assert frames == [True] + [False] * 14


def _keyframes(init: bytes, segment: bytes) -> list[bool]:
    with av.open(io.BytesIO(init + segment)) as container:
        return [frame.key_frame for frame in container.decode(video=0)]


async def test_first_segment_is_short_when_keyframes_are_seconds_apart(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """A camera with 4 s keyframes: the first segment is 1.5 s, not 4 s.

    So a player that reads whole segments (ffmpeg, VLC) sees the camera
    1.5 s after its first keyframe. The second segment starts without a
    keyframe (so the playlist does not claim independent segments; parts
    say which are) and ends at the camera's next one.
    """
    live = live_cameras["slow"]
    _watch(grant, camera, live)
    status, _, viewer = await grant()
    assert status == 201
    async with asyncio.timeout(15):
        assert (await viewer.get("master_playlist.m3u8"))[0] == 200
    track = integration.runtime_data.session.live.stream.provider
    async with asyncio.timeout(10):
        while track.last_sequence < 2:
            await asyncio.sleep(0.1)
    playlist = (await viewer.get("playlist.m3u8"))[1].decode()
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in playlist
    assert not re.search(r"^#EXT-X-DISCONTINUITY$", playlist, re.MULTILINE)
    durations = {
        int(number): float(duration)
        for duration, number in re.findall(
            r"#EXTINF:([\d.]+),\n\./segment/(\d+)\.m4s", playlist
        )
    }
    assert durations == {
        SEQUENCE_OFFSET: pytest.approx(1.5, abs=0.15),
        SEQUENCE_OFFSET + 1: pytest.approx(2.5, abs=0.15),
    }
    independent = re.findall(r'segment/(\d+)\.0\.m4s",INDEPENDENT=YES', playlist)
    assert independent == [str(SEQUENCE_OFFSET), str(SEQUENCE_OFFSET + 2)], playlist
    # One connection: the worker waited for the keyframe instead of failing.
    diagnostics = integration.runtime_data.session.live.stream.stream.get_diagnostics()
    assert (diagnostics["start_worker"], diagnostics.get("worker_error", 0)) == (1, 0)
    # (The first connection is the grant's probe for audio.)
    assert live.connections == 2


async def test_dropped_camera_is_reconnected_and_playlists_stay_consistent(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera gone for 3 s: video again soon after, numbering without gaps.

    Home Assistant's worker waited 10 s before reconnecting, then skipped a
    sequence number, which made hls.js stop for good.
    """
    live = live_cameras["fast"]
    _watch(grant, camera, live)
    status, _, viewer = await grant()
    assert status == 201
    track = integration.runtime_data.session.live.stream.provider
    async with asyncio.timeout(15):
        assert (await viewer.get("master_playlist.m3u8"))[0] == 200
        while track.last_sequence < 2:
            await asyncio.sleep(0.1)
    seen: dict[int, int] = {}

    async def reload(query: str = "") -> tuple[float, int]:
        """Fetch the playlist, check it against every earlier one.

        Return the seconds it took and the first segment listed.
        """
        began = asyncio.get_running_loop().time()
        status, body = await viewer.get(f"playlist.m3u8{query}")
        assert status == 200, (query, status)
        numbers = _numbers(body.decode())
        for number, discontinuity in numbers.items():
            assert seen.setdefault(number, discontinuity) == discontinuity, body
        return asyncio.get_running_loop().time() - began, min(numbers)

    await reload()
    live.drop(3)
    loop = asyncio.get_running_loop()
    dropped_at = loop.time()
    before = track.last_sequence
    # A player waiting for the next part gets the playlist, not a 404, within
    # three target durations.
    waited, _ = await reload(f"?_HLS_msn={before + 1 + SEQUENCE_OFFSET}&_HLS_part=0")
    assert waited <= 3 * track.target_duration + 1
    while loop.time() - dropped_at < 3:
        await reload()
        await asyncio.sleep(0.2)
    # Back: a new segment, after one discontinuity, well before HA's 10 s.
    async with asyncio.timeout(6):
        await reload(f"?_HLS_msn={before + 1 + SEQUENCE_OFFSET}&_HLS_part=0")
    # Until the reconnection's first segment is the first one listed.
    async with asyncio.timeout(10):
        while (first := (await reload())[1]) < min(
            n for n, d in seen.items() if d == 1
        ):
            await asyncio.sleep(0.2)
    assert seen[first] == 1
    assert sorted(set(seen.values())) == [0, 1]
    assert list(seen) == list(range(min(seen), max(seen) + 1))
    # The grant's probe for audio, the stream, the stream again.
    assert live.connections == 3
    # The resident's log says so once, not once per attempt.
    dropped = [r for r in caplog.records if "camera dropped" in r.getMessage()]
    assert [r.levelno for r in dropped if r.levelno >= logging.WARNING] == [
        logging.WARNING
    ]


async def test_blocking_request_to_a_hung_camera_is_answered(
    hass: HomeAssistant,
    live_cameras: dict[str, LiveCamera],
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """A camera silent with its connection open: playlists answer, never 404.

    Home Assistant's view answered a request for the next part 404 after
    about a second: hls.js gave up on a live share, ffmpeg took it as ended.
    """
    live = live_cameras["fast"]
    _watch(grant, camera, live)
    status, _, viewer = await grant()
    assert status == 201
    track = integration.runtime_data.session.live.stream.provider
    async with asyncio.timeout(15):
        assert (await viewer.get("master_playlist.m3u8"))[0] == 200
        while not track.last_segment.complete or track.last_sequence < 1:
            await asyncio.sleep(0.1)
    live.hang(6)
    loop = asyncio.get_running_loop()
    began = loop.time()
    last = track.last_segment
    status, body = await viewer.get(
        f"playlist.m3u8?_HLS_msn={last.sequence + SEQUENCE_OFFSET}"
        f"&_HLS_part={len(last.parts) + 1}"
    )
    waited = loop.time() - began
    assert status == 200
    assert 2 * track.target_duration <= waited <= 3 * track.target_duration + 1
    _numbers(body.decode())
    assert (await viewer.get("playlist.m3u8"))[0] == 200
    assert (await viewer.get("master_playlist.m3u8"))[0] == 200
    # After the hang the share has video again.
    async with asyncio.timeout(15):
        while track.last_sequence <= last.sequence + 1:
            await asyncio.sleep(0.2)
    _numbers((await viewer.get("playlist.m3u8"))[1].decode())


@pytest.mark.parametrize(
    "query",
    [
        "_HLS_msn=abc",
        "_HLS_msn=1&_HLS_part=x",
        "_HLS_msn=1e3",
        "_HLS_msn=" + "9" * 5000,
        "_HLS_msn=1&_HLS_part=" + "9" * 5000,
        "_HLS_msn=-1",
        "_HLS_msn=",
        "_HLS_part=0",
    ],
    ids=[
        "msn",
        "part",
        "exponent",
        "msn5000",
        "part5000",
        "negative",
        "empty",
        "part-only",
    ],
)
async def test_malformed_blocking_request_is_a_bad_request(
    hass: HomeAssistant, grant: Any, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    """A malformed delivery directive: 400 at once, nothing in the resident's log."""
    _, _, viewer = await grant()
    assert (await viewer.get("master_playlist.m3u8"))[0] == 200
    caplog.clear()
    status, _ = await viewer.get(f"playlist.m3u8?{query}")
    assert status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_playlists_of_a_camera_sending_nothing_are_unavailable_not_gone(
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No video yet long after the grant: 503 (try again), 404 only once ended."""
    monkeypatch.setattr(
        "custom_components.rtcc_share.live.hls_playlists.SOURCE_TIMEOUT", 0.5
    )
    camera.source = "rtsp://127.0.0.1:9/doorbell"
    status, _, viewer = await grant()
    assert status == 201
    for name in (
        "master_playlist.m3u8",
        "playlist.m3u8",
        "playlist.m3u8?_HLS_msn=0&_HLS_part=0",
    ):
        assert (await viewer.get(name))[0] == 503, name
    await integration.runtime_data.session.async_end("stopped_by_resident")
    assert (await viewer.get("master_playlist.m3u8"))[0] == 404


def test_segments_and_discontinuities_are_numbered_without_gaps(
    hass: HomeAssistant,
) -> None:
    """A connection that ends before its segment exists leaves no number unused.

    Nor does a connection that made no segment count as a discontinuity.
    """
    state = ShareStreamState(hass, dict, Diagnostics())
    assert (state.next_sequence(), state.stream_id) == (0, 0)
    state.segment_made()
    assert state.next_sequence() == 1  # the connection drops before segment 1
    state.discontinuity()
    assert (state.next_sequence(), state.stream_id) == (1, 1)
    state.discontinuity()  # a connection that made nothing
    state.discontinuity()
    assert (state.next_sequence(), state.stream_id) == (1, 1)
    state.segment_made()
    state.discontinuity()
    assert (state.next_sequence(), state.stream_id) == (2, 2)


def test_reconnects_promptly_and_bounded() -> None:
    """A working camera that drops is retried after 0.25 s, then every 0.5 s."""
    backoff = Backoff()
    assert [backoff.next_delay(60)] + [backoff.next_delay(0.1) for _ in range(4)] == [
        0.25,
        0.5,
        0.5,
        0.5,
        0.5,
    ]
    assert backoff.next_delay(HEALTHY_S) == 0.25


MASKS = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))
# Segments of about a second each, every one fetched from the share's first.
MASKED_SEGMENTS = 4


async def _every_segment(viewer: Viewer, count: int) -> dict[int, bytes]:
    """Fetch the share's segments as a player polling the playlist would, each once."""
    segments: dict[int, bytes] = {}
    async with asyncio.timeout(30):
        while len(segments) < count:
            status, playlist = await viewer.get("playlist.m3u8")
            assert status == 200
            for number in map(int, re.findall(rb"segment/(\d+)\.m4s", playlist)):
                if number not in segments:
                    status, segments[number] = await viewer.get(f"segment/{number}.m4s")
                    assert status == 200
            await asyncio.sleep(0.1)
    return segments


def _decoded_frames(init: bytes, segment: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(init + segment)) as container:
        assert [s.type for s in container.streams] == ["video"]
        return list(container.decode(video=0))


@pytest.mark.parametrize(
    "entry_options",
    [{**DEFAULT_OPTIONS, CONF_PRIVACY_MASKS: [list(mask) for mask in MASKS]}],
)
async def test_every_frame_the_city_gets_is_masked(
    live_feed: LiveFeed,
    hass: HomeAssistant,
    grant: Any,
    camera: SourceCamera,
    integration: MockConfigEntry,
) -> None:
    """A masked share through the real webhook: every frame, from the first, masked.

    The city's stream_url, fetched segment by segment from the share's first
    (numbered 1): in every decoded frame every mask's rectangle is black
    (luma <= 20) and the rest of the picture is still the bright camera.
    The grant's audit record names the masks.
    """
    camera.source = live_feed.url
    status, data, viewer = await grant()
    assert status == 201, data
    segments = await _every_segment(viewer, MASKED_SEGMENTS)
    status, init = await viewer.get("init.mp4")
    assert sorted(segments)[:MASKED_SEGMENTS] == list(range(1, MASKED_SEGMENTS + 1))
    frames = [
        frame
        for number in sorted(segments)
        for frame in await hass.async_add_executor_job(
            _decoded_frames, init, segments[number]
        )
    ]
    assert len(frames) >= MASKED_SEGMENTS * 9
    for frame in frames:
        picture = luma(frame)
        assert brightest_masked(picture, MASKS) <= 20
        assert picture[~painted_area(MASKS, frame.width, frame.height)].mean() > 150
    records = await integration.runtime_data.audit.async_export(None, None)
    [granted] = [r for r in records if r["event"] == "activation_granted"]
    assert granted["privacy_masks"] == [list(mask) for mask in MASKS]
