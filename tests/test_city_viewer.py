"""The city viewer page in a real browser (headless Chromium) on a live share."""

import asyncio
import importlib
import importlib.util
from pathlib import Path
import sys
import threading
import time
from types import ModuleType
from typing import Any
import urllib.error
import urllib.request

from aiohttp import web
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tools.city.browser import chromium
from tools.city.cli import main
from tools.city.watch import ViewerServer

from .common import City, requested
from .conftest import EXTERNAL_URL, WEBHOOK_ID, SourceCamera
from .live_camera import FPS as CAMERA_FPS, LiveCamera
from .video import FPS

# The camera answers only after this long, as RTSP cameras often take: the
# page is then already waiting on the master playlist when the first segment
# completes, and hls.js starts on a playlist whose newest segment is the first.
CAMERA_ANSWERS_AFTER_S = 1.5
PLAY_S = 22 + CAMERA_ANSWERS_AFTER_S
DOORBELL = (
    Path(__file__).parent.parent
    / "config"
    / "custom_components"
    / "demo_doorbell"
    / "camera.py"
)


def _demo_doorbell() -> ModuleType:
    """The development doorbell's camera module: its live view plays a clip live."""
    folder = DOORBELL.parent
    spec = importlib.util.spec_from_file_location(
        folder.name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None
    assert spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[folder.name] = package
    spec.loader.exec_module(package)
    return importlib.import_module(f"{folder.name}.camera")


async def test_browser_plays_a_video_only_share_smoothly(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    city: City,
    video_file: Path,
) -> None:
    """hls.js in Chromium plays a live video-only share: frames, no stall, few requests.

    No media file is fetched more than twice, the first segment's parts
    included.
    """
    doorbell = _demo_doorbell()

    class SlowCamera(doorbell.LiveView):
        url = "/api/test/slow_camera.ts"
        name = "api:test:slow_camera"

        async def get(self, request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(CAMERA_ANSWERS_AFTER_S)
            return await super().get(request)

    hass.http.register_view(SlowCamera(video_file))
    client = await hass_client_no_auth()
    base = str(client.make_url("")).rstrip("/")
    camera.source = f"{base}{SlowCamera.url}"
    await hass.services.async_call(
        "switch",
        "turn_on",
        {"entity_id": "switch.front_door_consent_to_share"},
        blocking=True,
    )
    body, headers = city.sign(requested("JPD-RTCC-0099"))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 201
    stream_url = (await response.json())["stream_url"].replace(EXTERNAL_URL, base)
    stats: dict[str, Any] = {}
    with ViewerServer(0) as viewer:
        async with chromium() as page:
            began = time.monotonic()
            await page.goto(viewer.page_url(stream_url))
            await asyncio.sleep(PLAY_S)
            stats = await page.js("window.viewerStats")
            played = time.monotonic() - began
    await integration.runtime_data.session.async_end("stopped_by_resident")
    # The live feed's thread ends once the stream worker has hung up.
    for _ in range(100):
        if not [t for t in threading.enumerate() if t.name == "demo_doorbell"]:
            break
        await asyncio.sleep(0.05)
    assert stats["firstFrameMs"] is not None, stats
    playing_s = played - stats["firstFrameMs"] / 1000
    assert playing_s >= 20, stats
    assert stats["frames"] >= 0.8 * FPS * playing_s, stats
    assert (stats["stalls"], stats["freezes"]) == (0, 0), stats
    # No re-request storm. LL-HLS makes a blocking playlist request and a part
    # request per 0.55 s part: 5-8 a second here, more while a loaded machine
    # catches up. hls.js on Home Assistant's own video-only stream makes 13-20,
    # with bursts of about 190 while frozen. The efficiency target (<= 3 a
    # second) is the benchmark's, not this test's.
    assert stats["requests"] <= 12 * played, stats
    # hls.js fetched the first segment's parts again and again, tens of times
    # on loopback, while that segment was the newest in the playlist.
    assert stats["fetches"], stats
    assert max(stats["fetches"].values()) <= 2, stats["fetches"]


async def test_browser_plays_a_doorbell_with_4_s_keyframes_through_a_drop(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    city: City,
) -> None:
    """hls.js plays a camera joined 1 s after a keyframe sent every 4 s, and on.

    The camera then drops for 5 s: hls.js waits and plays again, without a
    fatal error (Home Assistant's numbering after a reconnect made hls.js
    give up with "media sequence mismatch").
    """
    doorbell = LiveCamera("doorbell", keyframe_s=4, join_s=1)
    hass.http.register_view(doorbell.view)
    client = await hass_client_no_auth()
    base = str(client.make_url("")).rstrip("/")
    camera.source = f"{base}{doorbell.path}"
    await hass.services.async_call(
        "switch",
        "turn_on",
        {"entity_id": "switch.front_door_consent_to_share"},
        blocking=True,
    )
    body, headers = city.sign(requested("JPD-RTCC-0098"))
    response = await client.post(
        f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
    )
    assert response.status == 201
    stream_url = (await response.json())["stream_url"].replace(EXTERNAL_URL, base)
    with ViewerServer(0) as viewer:
        async with chromium() as page:
            await page.goto(viewer.page_url(stream_url))
            async with asyncio.timeout(20):
                while (await page.js("window.viewerStats.firstFrameMs")) is None:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(4)
            before = await page.js("window.viewerStats")
            doorbell.drop(5)
            await asyncio.sleep(5)
            returned = await page.js("window.viewerStats.frames")
            # Back on its next keyframe, 3 s after the reconnection.
            await asyncio.sleep(10)
            after = await page.js("window.viewerStats")
    await integration.runtime_data.session.async_end("stopped_by_resident")
    # At least the first segment, a second of video (hls.js may then wait
    # for the second one whole: it starts without a keyframe).
    assert before["frames"] >= CAMERA_FPS, before
    assert after["fatal"] is None, after
    assert after["frames"] - returned >= 2 * CAMERA_FPS, after
    assert "levelParsingError" not in after["errors"], after


@pytest.mark.usefixtures("socket_enabled")
def test_viewer_page_serves_only_its_own_files() -> None:
    """The page, its script and hls.js come from the local server; nothing else."""
    with ViewerServer(0) as viewer:
        base = f"http://127.0.0.1:{viewer.port}"
        for path in ("/", "/viewer.js", "/viewer.css", "/hls.min.js"):
            with urllib.request.urlopen(base + path) as response:
                assert response.status == 200, path
                assert (
                    "script-src 'self'" in response.headers["Content-Security-Policy"]
                )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/../package.json")
        assert err.value.code == 404
    assert "src=https%3A%2F%2Fh%2Fm.m3u8" in viewer.page_url("https://h/m.m3u8")


@pytest.mark.usefixtures("socket_enabled")
def test_cli_watch_plays_a_stream_url(capsys: pytest.CaptureFixture[str]) -> None:
    """`watch --stream-url` serves the page for that stream and says where."""
    argv = ["watch", "--stream-url", "https://h/m.m3u8", "--no-browser", "--port", "0"]
    assert main([*argv, "--serve-for", "0"]) == 0
    assert "viewer page: http://127.0.0.1:" in capsys.readouterr().out


@pytest.mark.usefixtures("socket_enabled")
def test_cli_watch_plays_a_webrtc_url(capsys: pytest.CaptureFixture[str]) -> None:
    """`watch --webrtc-url` serves the page with its WebRTC player."""
    argv = ["watch", "--webrtc-url", "https://h/w", "--no-browser", "--port", "0"]
    assert main([*argv, "--serve-for", "0"]) == 0
    assert "player=webrtc&src=https%3A%2F%2Fh%2Fw" in capsys.readouterr().out


def test_cli_watch_needs_a_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --stream-url or --webrtc-url, watch needs what an activation needs."""
    with pytest.raises(SystemExit) as err:
        main(["watch", "--lat", "1"])
    assert err.value.code == 2
    assert "watch needs --stream-url or --webrtc-url" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["watch", "--webrtc", "--webrtc-url", "https://h/w"])
    assert err.value.code == 2
