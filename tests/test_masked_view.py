"""The entry's privacy masks in force: its masked source, changes, failure, unload."""

import asyncio
from collections.abc import Sequence
import threading
from typing import Any
from unittest.mock import patch

from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import CONF_PRIVACY_MASKS, DEFAULT_OPTIONS
from custom_components.rtcc_share.live import masked_view
from custom_components.rtcc_share.live.mask_pipeline import MaskEncoder
from custom_components.rtcc_share.live.masked_source import (
    MaskedSource,
    MaskUnavailableError,
)
from custom_components.rtcc_share.live.masked_view import (
    MaskedView,
    camera_pyav_options,
)
from custom_components.rtcc_share.live.masks import Mask

from .common import CAMERA, EVENT, WEBHOOK_URL, City, requested, turn_on_consent
from .conftest import SourceCamera
from .mask_video import LiveFeed

MASKS_A: tuple[Mask, ...] = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))
MASKS_B: tuple[Mask, ...] = ((0.5, 0.5, 1.0, 1.0),)
THREAD = "rtcc_share privacy mask"


def _option(masks: Sequence[Mask]) -> list[list[float]]:
    return [list(mask) for mask in masks]


def _masked(masks: Sequence[Mask]) -> dict[str, Any]:
    return {**DEFAULT_OPTIONS, CONF_PRIVACY_MASKS: _option(masks)}


@pytest.fixture
async def client(
    live_feed: LiveFeed,
    hass: HomeAssistant,
    camera: SourceCamera,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> Any:
    """The city's client; the camera is the live feed (set up first, closed last)."""
    camera.source = live_feed.url
    await turn_on_consent(hass)
    return await hass_client_no_auth()


async def _activate(
    client: Any, city: City, activation_id: str = "M-1"
) -> tuple[int, dict[str, Any]]:
    body, headers = city.sign(requested(activation_id))
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    return response.status, await response.json()


async def _records(entry: MockConfigEntry) -> list[dict[str, Any]]:
    return await entry.runtime_data.audit.async_export(None, None)


def _mask_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


async def test_pyav_options_are_those_home_assistant_uses_for_the_camera(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """The camera's own stream options, turned into PyAV options as HA does."""
    camera.stream_options = {"rtsp_transport": "udp"}
    streams = list(hass.data["stream"]["streams"])
    options = camera_pyav_options(hass, CAMERA, "rtsp://127.0.0.1:9/stream")
    assert (
        options.items()
        >= {
            "rtsp_transport": "udp",
            "rtsp_flags": "prefer_tcp",
            "fpsprobesize": "0",
        }.items()
    )
    # Only the options were wanted: no stream is left behind.
    assert hass.data["stream"]["streams"] == streams


@pytest.mark.parametrize(
    ("entry_options", "after"),
    [(_masked(MASKS_A), MASKS_B), (_masked(()), MASKS_A), (_masked(MASKS_A), ())],
    ids=["changed", "added", "removed"],
)
async def test_changed_masks_end_a_live_share_and_hold_from_the_next_grant(
    hass: HomeAssistant,
    client: Any,
    city: City,
    integration: MockConfigEntry,
    after: tuple[Mask, ...],
) -> None:
    """A grant's record names the masks of its whole share: a change ends it.

    Access ends first, then the change is recorded; the old masked source
    stops; the next grant has the new masks and records them.
    """
    data = integration.runtime_data
    before = data.masked.masks
    assert (await _activate(client, city))[0] == 201
    old = data.masked.current
    assert (old is not None) == bool(before)
    hass.config_entries.async_update_entry(
        integration,
        options={**integration.options, CONF_PRIVACY_MASKS: _option(after)},
    )
    await hass.async_block_till_done()
    assert data.session.live is None
    records = await _records(integration)
    assert [r["event"] for r in records[-2:]] == ["share_ended", "options_changed"]
    assert records[-2]["reason"] == "privacy_masks_changed"
    assert records[-1]["changed"] == [CONF_PRIVACY_MASKS]
    assert hass.states.get(EVENT).attributes["reason"] == "privacy_masks_changed"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert any(
        "privacy masks were changed" in n["message"] for n in notifications.values()
    )
    assert data.masked.masks == after
    if old is not None:
        assert not old.running
        with pytest.raises(RuntimeError):
            _ = old.url  # no longer served
    status, body = await _activate(client, city, "M-2")
    assert status == 201, body
    granted = [
        r for r in await _records(integration) if r["event"] == "activation_granted"
    ]
    assert [r["privacy_masks"] for r in granted] == [_option(before), _option(after)]


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_masking_failing_while_live_ends_the_share_audited_and_told(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """Fail closed: the masked view failing ends the share, with its own reason."""
    assert (await _activate(client, city))[0] == 201
    session = integration.runtime_data.session
    with patch.object(MaskEncoder, "encode", side_effect=RuntimeError("no encoder")):
        async with asyncio.timeout(20):
            while session.live is not None:
                await asyncio.sleep(0.05)
        await hass.async_block_till_done()
    [ended] = [r for r in await _records(integration) if r["event"] == "share_ended"]
    assert ended["reason"] == "privacy_mask_failed"
    assert hass.states.get(EVENT).attributes["reason"] == "privacy_mask_failed"
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert any(
        "privacy masks could not be applied" in n["message"]
        for n in notifications.values()
    )


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_no_masked_picture_no_grant(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """A masked view that cannot be produced is not granted: 503, nothing live."""
    with patch.object(MaskedSource, "async_start", side_effect=MaskUnavailableError):
        assert await _activate(client, city) == (503, {"error": "camera_unavailable"})
    assert integration.runtime_data.session.live is None
    records = await _records(integration)
    assert "activation_granted" not in [r["event"] for r in records]
    assert records[-1]["reason"] == "camera_unavailable"


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_unload_stops_the_masking(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """Unloading ends the share and stops the masked source and its thread."""
    assert (await _activate(client, city))[0] == 201
    masked = integration.runtime_data.masked
    source = masked.current
    assert source is not None
    assert _mask_threads()
    assert await hass.config_entries.async_unload(integration.entry_id)
    assert masked.closed
    assert await masked.async_source() is None
    assert not source.running
    async with asyncio.timeout(10):
        while _mask_threads():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_home_assistant_stopping_stops_the_masking(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """Entries are not unloaded at a stop: the masking stops with the share."""
    assert (await _activate(client, city))[0] == 201
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert integration.runtime_data.session.live is None
    assert integration.runtime_data.masked.closed
    async with asyncio.timeout(10):
        while _mask_threads():
            await asyncio.sleep(0.05)


async def test_closing_waits_for_a_stalled_camera_only_briefly(
    hass: HomeAssistant,
) -> None:
    """A masking thread held by a stalled camera ends in the background."""
    release = asyncio.Event()
    closed = asyncio.Event()

    class Stalled:
        async def async_close(self) -> None:
            await release.wait()
            closed.set()

    view = MaskedView(hass, lambda: CAMERA, MASKS_A)
    view._source = Stalled()  # type: ignore[assignment]
    with patch.object(masked_view, "CLOSE_WAIT_S", 0.05):
        await view.async_close()
    assert not closed.is_set()
    release.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert closed.is_set()


@pytest.mark.parametrize(
    "entry_options", [_masked(()) | {CONF_PRIVACY_MASKS: [[0.5, 0, 0.2, 1]]}]
)
async def test_stored_masks_that_are_not_valid_fail_the_setup(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """Never guess what to mask: the entry does not load, nothing is shared."""
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_masks_that_are_not_valid_set_while_loaded(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """Set without the options flow: the share ends, then the setup fails."""
    assert (await _activate(client, city))[0] == 201
    audit = integration.runtime_data.audit
    hass.config_entries.async_update_entry(
        integration, options={**integration.options, CONF_PRIVACY_MASKS: "all"}
    )
    await hass.async_block_till_done()
    assert integration.state is ConfigEntryState.SETUP_ERROR
    records = await audit.async_export(None, None)
    [ended] = [r for r in records if r["event"] == "share_ended"]
    assert ended["reason"] == "privacy_masks_changed"


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_no_masked_source_while_the_camera_cannot_be_asked(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    camera: SourceCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera that is off, or whose stream options are not valid: nothing to mask."""
    masked = integration.runtime_data.masked
    camera._attr_is_on = False
    assert await masked.async_source() is None
    camera._attr_is_on = True
    camera.stream_options = {"rtsp_transport": "carrier pigeon"}
    assert await masked.async_source() is None
    assert "The privacy-masked view of camera.front_door cannot be made" in caplog.text
    assert masked.current is None


@pytest.mark.parametrize("entry_options", [_masked(MASKS_A)])
async def test_closed_masks_grant_nothing(
    hass: HomeAssistant, client: Any, city: City, integration: MockConfigEntry
) -> None:
    """Once the masked view is closed (masks not valid, Home Assistant stopping)."""
    await integration.runtime_data.masked.async_close()
    assert await _activate(client, city) == (503, {"error": "camera_unavailable"})
