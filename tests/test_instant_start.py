"""Instant start through the integration: when the prebuffer runs, what a grant serves."""

import asyncio
from collections.abc import AsyncIterator, Callable
import io
import json
from pathlib import Path
import re
import threading
from typing import Any

import av
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_INSTANT_START,
    CONF_PRIVACY_MASKS,
    CONF_SHARE_AUDIO,
    DEFAULT_OPTIONS,
)
from custom_components.rtcc_share.live import tokens
from custom_components.rtcc_share.live.instant_start import InstantStart
from custom_components.rtcc_share.live.loopback import LoopbackServer
from custom_components.rtcc_share.live.masks import (
    Mask,
    format_masks,
    masks_from_option,
)
from custom_components.rtcc_share.live.prebuffer import Prebuffer

from .common import (
    CONSENT,
    EXTERNAL_URL,
    WEBHOOK_URL,
    City,
    ended,
    requested,
    turn_on_consent,
)
from .conftest import SourceCamera
from .gop_camera import TICKS, GopCamera, frame_number
from .mask_video import brightest_masked, luma

THREAD = "rtcc_share prebuffer"


@pytest.fixture(autouse=True)
def loopback(socket_enabled: None) -> None:
    """The camera, the prebuffer and the share's worker talk over loopback."""


@pytest.fixture
def keyframe_s() -> float:
    """The camera's keyframe interval."""
    return 1.0


@pytest.fixture
def camera_audio() -> bool:
    """Whether the camera sends audio."""
    return False


@pytest.fixture
async def gop_camera(keyframe_s: float, camera_audio: bool) -> AsyncIterator[GopCamera]:
    """The live camera the test controls."""
    async with GopCamera(keyframe_s, audio=camera_audio) as live:
        yield live


@pytest.fixture
def source_camera(gop_camera: GopCamera) -> SourceCamera:
    """The doorbell, streaming the live camera."""
    return SourceCamera(gop_camera.url)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Instant start on."""
    return {**DEFAULT_OPTIONS, CONF_INSTANT_START: True}


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _instant(entry: MockConfigEntry) -> InstantStart:
    instant: InstantStart = entry.runtime_data.instant
    return instant


async def _buffering(entry: MockConfigEntry) -> Prebuffer:
    """Wait until the prebuffer has a keyframe interval; return it."""
    instant = _instant(entry)
    await _until(
        lambda: (
            instant.prebuffer is not None and instant.prebuffer.lookback() is not None
        )
    )
    assert instant.prebuffer is not None
    return instant.prebuffer


async def _consent(hass: HomeAssistant, on: bool) -> None:
    await hass.services.async_call(
        "switch", "turn_on" if on else "turn_off", {"entity_id": CONSENT}, blocking=True
    )


def _no_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name == THREAD]


async def _set_options(
    hass: HomeAssistant, entry: MockConfigEntry, **options: Any
) -> None:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    current = {**DEFAULT_OPTIONS, **entry.options, **options}
    current[CONF_PRIVACY_MASKS] = format_masks(
        masks_from_option(current[CONF_PRIVACY_MASKS])
    )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], current
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()


async def test_runs_only_while_consent_and_the_option_are_on(
    hass: HomeAssistant, integration: MockConfigEntry, gop_camera: GopCamera
) -> None:
    """Consent off, the option off or unloading stop the buffering at once.

    The camera connection closes; consent and the option on start it again.
    """
    instant = _instant(integration)
    assert instant.prebuffer is None
    assert gop_camera.connections == 0
    await _consent(hass, True)
    prebuffer = await _buffering(integration)
    assert gop_camera.open == 1
    await _consent(hass, False)
    # At once: nothing buffered, no reader, no new connection.
    assert instant.prebuffer is None
    assert not prebuffer.running
    assert prebuffer.lookback() is None
    await _until(lambda: gop_camera.open == 0, timeout=2)

    await _consent(hass, True)
    prebuffer = await _buffering(integration)
    await _set_options(hass, integration, **{CONF_INSTANT_START: False})
    assert instant.prebuffer is None
    assert prebuffer.lookback() is None
    await _until(lambda: gop_camera.open == 0, timeout=2)
    await _set_options(hass, integration, **{CONF_INSTANT_START: True})
    await _buffering(integration)
    # Sharing audio is a new prebuffer, which reads the camera's audio.
    old = instant.prebuffer
    await _set_options(hass, integration, **{CONF_SHARE_AUDIO: True})
    assert instant.prebuffer is not old
    assert instant.prebuffer is not None
    assert instant.prebuffer.audio

    await hass.config_entries.async_unload(integration.entry_id)
    assert instant.prebuffer is None
    assert _no_threads()
    await _until(lambda: gop_camera.open == 0, timeout=2)


async def test_nothing_reachable_before_a_grant(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """While it buffers, no share exists and nothing reads the buffer."""
    await _consent(hass, True)
    prebuffer = await _buffering(integration)
    await asyncio.sleep(1)
    diagnostics = _instant(integration).diagnostics()
    assert diagnostics["running"] and diagnostics["camera_connected"]
    assert diagnostics["buffered_bytes"] > 0 and 0 <= diagnostics["buffered_s"] < 1
    assert diagnostics["camera_connections"] == 1
    assert not hass.data[tokens._VIEWS]
    assert prebuffer.stats.bursts == 0
    assert not prebuffer._readers
    client = await hass_client_no_auth()
    response = await client.get("/api/rtcc_share/hls/x/master_playlist.m3u8")
    assert response.status == 404


def _decode(init: bytes, segment: bytes) -> tuple[list[str], list[Any]]:
    with av.open(io.BytesIO(init + segment)) as container:
        kinds = [s.type for s in container.streams]
        frames = list(container.decode(video=0))
    return kinds, frames


class Grant:
    """A signed grant and the city's player, fetching a share's files."""

    def __init__(self, client: Any, city: City) -> None:  # noqa: D107
        self.client = client
        self.city = city
        self.base = ""

    async def activate(self, activation_id: str) -> tuple[int, dict[str, Any]]:
        """Ask for a share; remember its URL."""
        body, headers = self.city.sign(requested(activation_id))
        response = await self.client.post(WEBHOOK_URL, data=body, headers=headers)
        data = await response.json()
        if "stream_url" in data:
            self.base = data["stream_url"].removeprefix(EXTERNAL_URL).rsplit("/", 1)[0]
        return response.status, data

    async def end(self, activation_id: str) -> None:
        """End the share."""
        body, headers = self.city.sign(ended(activation_id))
        await self.client.post(WEBHOOK_URL, data=body, headers=headers)

    async def get(self, name: str) -> bytes:
        """GET one of the share's files."""
        response = await self.client.get(f"{self.base}/{name}")
        assert response.status == 200, name
        return await response.read()

    async def first_segment(self) -> tuple[bytes, bytes]:
        """The master playlist, then the init section and the first segment."""
        await self.get("master_playlist.m3u8")
        playlist = (await self.get("playlist.m3u8")).decode()
        first = re.findall(r"segment/\d+\.m4s", playlist)[0]
        return await self.get("init.mp4"), await self.get(first)


@pytest.fixture
async def city_player(hass_client_no_auth: ClientSessionGenerator, city: City) -> Grant:
    """The city: grants and a player."""
    return Grant(await hass_client_no_auth(), city)


@pytest.mark.parametrize("keyframe_s", [4.0])
async def test_a_grant_starts_at_the_buffered_keyframe(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    gop_camera: GopCamera,
    city_player: Grant,
    hass_config_dir: str,
) -> None:
    """The share's first segment starts at the camera's newest keyframe.

    Its first frame is that keyframe (decodable), the segment is complete
    before the camera sends its next keyframe, the camera has one connection
    (the prebuffer's), and the audit record says how old that keyframe was.
    """
    await turn_on_consent(hass)
    prebuffer = await _buffering(integration)
    # Well inside a 4 s keyframe interval.
    await _until(lambda: gop_camera.now() % gop_camera.gop == 15)
    with prebuffer._lock:
        assert prebuffer._gop is not None
        keyframe = prebuffer._gop.start // TICKS
    status, _ = await city_player.activate("JPD-RTCC-0001")
    granted_at = dt_util.utcnow()
    assert status == 201
    init, segment = await city_player.first_segment()
    complete_at = asyncio.get_running_loop().time()
    assert complete_at < gop_camera.due(keyframe + gop_camera.gop)
    kinds, frames = await hass.async_add_executor_job(_decode, init, segment)
    assert kinds == ["video"]
    assert frames[0].key_frame
    assert frame_number(frames[0]) == keyframe % len(gop_camera.clip)
    assert gop_camera.connections == 1
    # The next segment starts without a keyframe: no part of it claims one,
    # nor the playlist that every segment does. The buffered video is
    # stamped with its own time, from before the grant.
    playlist = (await city_player.get("playlist.m3u8?_HLS_msn=2&_HLS_part=0")).decode()
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in playlist
    parts = re.findall(
        r"URI=\"\./segment/(\d+)\.(\d+)\.m4s\"(,INDEPENDENT=YES)?", playlist
    )
    assert [(s, p) for s, p, independent in parts if independent] == [("1", "0")]
    assert ("2", "0") in [(s, p) for s, p, _ in parts]
    stamped = dt_util.parse_datetime(
        re.findall(
            r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n#EXTINF:[\d.]+,\n\./segment/1\.m4s",
            playlist,
        )[0]
    )
    assert stamped is not None
    assert 1.1 <= (granted_at - stamped).total_seconds() < 2.5
    [log] = Path(hass_config_dir, "rtcc_share").glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    granted = next(r for r in records if r["event"] == "activation_granted")
    assert granted["instant_start"] is True
    # About 1.5 s (the camera's clock), less what its MPEG-TS demuxer holds.
    assert 1.1 <= granted["lookback_s"] < 2.5
    await city_player.end("JPD-RTCC-0001")


@pytest.mark.parametrize("camera_audio", [True])
@pytest.mark.parametrize("share_audio", [False, True])
async def test_audio_follows_the_share_audio_option(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    integration: MockConfigEntry,
    city_player: Grant,
    share_audio: bool,
) -> None:
    """A camera with audio: the share carries it only if audio is shared.

    Without sharing, the prebuffer keeps the audio out at the source, so the
    share is granted (not refused as for a camera read directly).
    """
    await _set_options(hass, integration, **{CONF_SHARE_AUDIO: share_audio})
    await turn_on_consent(hass)
    await _buffering(integration)
    status, _ = await city_player.activate("JPD-RTCC-0002")
    assert status == 201
    init, segment = await city_player.first_segment()
    kinds, frames = await hass.async_add_executor_job(_decode, init, segment)
    assert kinds == (["video", "audio"] if share_audio else ["video"])
    assert frames
    await city_player.end("JPD-RTCC-0002")


async def test_whole_segments_of_twenty_frames_soon_after_a_short_burst(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    gop_camera: GopCamera,
    city_player: Grant,
) -> None:
    """A burst shorter than 1.5 s: segments end there and 1.5 s after its keyframe.

    Even with the camera's next keyframe in between, so that players that
    read whole segments (ffmpeg) have about 20 frames as soon as there are.
    """
    await turn_on_consent(hass)
    await _buffering(integration)
    await _until(lambda: gop_camera.now() % gop_camera.gop == 8)
    status, _ = await city_player.activate("JPD-RTCC-0003")
    assert status == 201
    await city_player.get("master_playlist.m3u8")
    async with asyncio.timeout(10):
        while True:
            playlist = (await city_player.get("playlist.m3u8")).decode()
            durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist)]
            if "./segment/3.m4s" in playlist:
                break
            await asyncio.sleep(0.1)
    # The burst (about 0.6 s), to the camera's keyframe, to 1.5 s after the
    # burst's.
    assert "#EXT-X-MEDIA-SEQUENCE:1\n" in playlist
    assert durations[0] < 1
    assert sum(durations[:3]) == pytest.approx(1.5, abs=0.01)
    assert sum(durations[:2]) == pytest.approx(1.0, abs=0.01)
    independent = re.findall(r"segment/(\d+)\.0\.m4s\",INDEPENDENT=YES", playlist)
    assert independent[:2] == ["1", "3"]
    await city_player.end("JPD-RTCC-0003")


async def test_new_options_wait_for_the_live_share_to_end(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    gop_camera: GopCamera,
    city_player: Grant,
) -> None:
    """Instant start turned off during a share: the share keeps its source.

    The prebuffer stops once the share ends; consent off would stop both.
    """
    await turn_on_consent(hass)
    prebuffer = await _buffering(integration)
    status, _ = await city_player.activate("JPD-RTCC-0004")
    assert status == 201
    await city_player.first_segment()
    await _set_options(hass, integration, **{CONF_INSTANT_START: False})
    assert _instant(integration).prebuffer is prebuffer
    assert prebuffer.running
    await city_player.end("JPD-RTCC-0004")
    await hass.async_block_till_done()
    assert _instant(integration).prebuffer is None
    assert not prebuffer.running


@pytest.mark.parametrize("stream_source", ["none", "raises"])
async def test_a_camera_without_a_stream_source(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    source_camera: SourceCamera,
    city_player: Grant,
    monkeypatch: pytest.MonkeyPatch,
    stream_source: str,
) -> None:
    """Nothing to buffer: the grant reads the camera as without instant start."""
    if stream_source == "none":
        source_camera.source = None
    else:

        async def raising() -> str:
            raise HomeAssistantError

        monkeypatch.setattr(source_camera, "stream_source", raising)
    await turn_on_consent(hass)
    instant = _instant(integration)
    await asyncio.sleep(0.7)
    assert instant.prebuffer is not None
    assert not instant.prebuffer.connected
    assert instant.share_source() is None
    status, body = await city_player.activate("JPD-RTCC-0005")
    assert (status, body.get("error")) == (503, "camera_unavailable")


async def test_a_prebuffer_that_cannot_listen(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No loopback port: logged, nothing runs; the next change tries again."""

    async def refuse(self: Any) -> None:
        raise OSError

    monkeypatch.setattr(LoopbackServer, "async_open", refuse)
    await turn_on_consent(hass)
    await hass.async_block_till_done()
    assert _instant(integration).prebuffer is None
    assert "Instant start could not begin: OSError" in caplog.text


@pytest.mark.parametrize("keyframe_s", [4.0])
async def test_a_long_burst_is_one_segment(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    gop_camera: GopCamera,
    city_player: Grant,
) -> None:
    """A burst longer than 1.5 s is the first segment, whole.

    A player starting a little behind live (PART-HOLD-BACK) then starts in
    it, at its keyframe, never in a segment without one.
    """
    await turn_on_consent(hass)
    await _buffering(integration)
    await _until(lambda: gop_camera.now() % gop_camera.gop == 33)
    status, _ = await city_player.activate("JPD-RTCC-0006")
    assert status == 201
    await city_player.get("master_playlist.m3u8")
    playlist = (await city_player.get("playlist.m3u8")).decode()
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist)]
    assert durations[0] > 2.5
    assert 'segment/1.0.m4s",INDEPENDENT=YES' in playlist
    hold_back = float(re.findall(r"PART-HOLD-BACK=([\d.]+)", playlist)[0])
    parts = [float(d) for d in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", playlist)]
    assert sum(parts) - hold_back < durations[0]
    await city_player.end("JPD-RTCC-0006")


MASKS: tuple[Mask, ...] = ((0.1, 0.05, 0.33, 0.5), (0.6, 0.1, 0.9, 0.6))


@pytest.mark.parametrize("keyframe_s", [4.0])
@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_INSTANT_START: True,
            CONF_PRIVACY_MASKS: [list(mask) for mask in MASKS],
        }
    ],
)
async def test_masks_are_painted_on_the_buffered_video_too(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    gop_camera: GopCamera,
    city_player: Grant,
) -> None:
    """With masks, the masking reads the prebuffer: every frame masked.

    The share reads only the masked picture, whose pipeline got the buffered
    interval (the camera has one connection, the prebuffer's); the first
    segment's frames and every one after are masked; the grant's record
    names the masks and instant start.
    """
    await turn_on_consent(hass)
    prebuffer = await _buffering(integration)
    await _until(lambda: gop_camera.now() % gop_camera.gop == 25)
    status, body = await city_player.activate("JPD-RTCC-0007")
    assert status == 201, body
    share = integration.runtime_data.session.live.stream
    assert "/prebuffer/" not in share.stream.source
    assert "/masked.ts" in share.stream.source
    init, segment = await city_player.first_segment()
    kinds, frames = await hass.async_add_executor_job(_decode, init, segment)
    assert kinds == ["video"]
    assert frames[0].key_frame
    for frame in frames:
        assert brightest_masked(luma(frame), MASKS) <= 20
    # The masking began with the buffered interval, not the camera.
    assert prebuffer.stats.bursts >= 1
    assert any(name.startswith("mask_") for name in prebuffer._names)
    assert gop_camera.connections == 1
    records = await integration.runtime_data.audit.async_export(None, None)
    [granted] = [r for r in records if r["event"] == "activation_granted"]
    assert granted["privacy_masks"] == [list(mask) for mask in MASKS]
    assert granted["instant_start"] is True
    await city_player.end("JPD-RTCC-0007")
