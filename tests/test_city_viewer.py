"""The city viewer page in a real browser (headless Chromium) on a live share."""

import asyncio
import importlib.util
from pathlib import Path
import threading
import time
from types import ModuleType
from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tools.city.browser import chromium
from tools.city.watch import ViewerServer

from .common import City, requested
from .conftest import EXTERNAL_URL, WEBHOOK_ID, SourceCamera
from .video import FPS

PLAY_S = 22
DOORBELL = (
    Path(__file__).parent.parent
    / "config"
    / "custom_components"
    / "demo_doorbell"
    / "camera.py"
)


def _demo_doorbell() -> ModuleType:
    """The development doorbell's module: its live view plays a clip in real time."""
    spec = importlib.util.spec_from_file_location("demo_doorbell_camera", DOORBELL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_browser_plays_a_video_only_share_smoothly(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    city: City,
    video_file: Path,
) -> None:
    """hls.js in Chromium plays a live video-only share: frames, no stall, few requests."""
    doorbell = _demo_doorbell()
    hass.http.register_view(doorbell.LiveView(video_file))
    client = await hass_client_no_auth()
    base = str(client.make_url("")).rstrip("/")
    camera.source = f"{base}{doorbell.LIVE_PATH}"
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
    # LL-HLS: a blocking playlist request and a part per 0.55 s part.
    assert stats["requests"] <= 5 * played, stats
