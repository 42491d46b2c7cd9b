"""Tests for the masked stream source: loopback MPEG-TS, readers, lifetime, failure."""

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import partial
import io
import logging
from pathlib import Path
import threading
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
import av
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import numpy as np
from PIL import Image
import pytest

from custom_components.rtcc_share.live import masked_source
from custom_components.rtcc_share.live.mask_frames import FrameMasker
from custom_components.rtcc_share.live.masked_source import (
    MaskedSource,
    MaskUnavailableError,
)
from custom_components.rtcc_share.live.masks import Mask, mask_box

from .mask_video import LiveFeed, brightest_masked, luma, make_bright_video
from .video import make_video

MASKS: tuple[Mask, ...] = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))
THREAD = "rtcc_share privacy mask"


@pytest.fixture(autouse=True)
def loopback(socket_enabled: None) -> None:
    """The masked source and the live camera listen on loopback."""


@pytest.fixture(scope="module")
def bright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the bright pattern, 352x288 at 10 fps, a keyframe a second."""
    return make_bright_video(
        tmp_path_factory.mktemp("masked") / "bright.mp4", seconds=2
    )


@pytest.fixture
async def feed(bright: Path) -> AsyncIterator[LiveFeed]:
    """The clip as a live camera."""
    async with LiveFeed(bright) as live:
        yield live


class Camera:
    """A stream source provider that counts its calls."""

    def __init__(self, url: str | None) -> None:  # noqa: D107
        self.url = url
        self.calls = 0

    async def __call__(self) -> str | None:
        """Return the source URL."""
        self.calls += 1
        return self.url


@pytest.fixture
async def source(feed: LiveFeed) -> AsyncIterator[MaskedSource]:
    """A masked source of the live feed, lingering briefly."""
    masked = MaskedSource(Camera(feed.url), MASKS, linger_s=0.3)
    await masked.async_open()
    yield masked
    await masked.async_close()


def _read(url: str, frames: int, until: threading.Event | None = None) -> list[Any]:
    """Decode up to `frames` frames of the URL, from its first byte (blocking).

    Fewer if the connection ends, or once `until` is set.
    """
    got = []
    with av.open(url, timeout=20) as container:
        assert not container.streams.audio
        try:
            for frame in container.decode(video=0):
                got.append(frame)
                if len(got) == frames or (until is not None and until.is_set()):
                    break
        except av.OSError:
            pass  # the server ended the stream
    return got


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _no_mask_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name == THREAD]


async def test_a_reader_gets_every_frame_masked(
    hass: HomeAssistant, source: MaskedSource
) -> None:
    """A reader gets every frame masked, from the first.

    Opened like any camera's stream source: luma <= 20 in every pixel of
    every mask, and the rest is the bright camera.
    """
    assert source.url.startswith("http://rtcc_share:")
    frames = await hass.async_add_executor_job(_read, source.url, 25)
    assert len(frames) == 25
    for frame in frames:
        picture = luma(frame)
        assert (frame.width, frame.height) == (352, 288)
        assert brightest_masked(picture, MASKS) <= 20
        assert picture.mean() > 100


async def test_the_secret_is_required(
    hass: HomeAssistant, source: MaskedSource, feed: LiveFeed
) -> None:
    """Without the URL's credentials: 401 and a Basic challenge; no pipeline."""
    bare = source.url.replace(source.url.split("@")[0] + "@", "http://")
    async with aiohttp.ClientSession() as session:
        async with session.get(bare) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        async with session.get(
            bare,
            headers={"Authorization": aiohttp.encode_basic_auth("rtcc_share", "guess")},
        ) as response:
            assert response.status == 401
    assert not source.running
    assert feed.connections == 0
    other = MaskedSource(Camera(feed.url), MASKS)
    await other.async_open()
    assert other.url.split("@")[0] != source.url.split("@")[0]
    await other.async_close()


async def test_one_pipeline_for_every_reader(
    hass: HomeAssistant, source: MaskedSource, feed: LiveFeed
) -> None:
    """Readers share one camera connection.

    One who joins starts at an IDR made for it, not at the next scheduled
    one (a keyframe a second).
    """
    done = threading.Event()
    first = hass.async_add_executor_job(_read, source.url, 1000, done)
    await _until(lambda: source.stats.frames_encoded >= 4)
    for _ in range(3):
        joined = await hass.async_add_executor_job(_read, source.url, 3)
        assert joined[0].key_frame
        if joined[0].pts % 90_000:
            break
        # Joined just as a scheduled keyframe came: that proves nothing.
    else:
        pytest.fail("every reader joined on a scheduled keyframe")
    done.set()
    first_frames = await first
    assert feed.connections == 1
    assert joined[0].pts in [f.pts for f in first_frames if f.key_frame]
    for frame in (*first_frames, *joined):
        assert brightest_masked(luma(frame), MASKS) <= 20


async def test_stops_after_the_last_reader_and_starts_again(
    hass: HomeAssistant, source: MaskedSource, feed: LiveFeed
) -> None:
    """The pipeline and its camera connection end after the linger time.

    A new reader starts them again.
    """
    await hass.async_add_executor_job(_read, source.url, 3)
    await _until(lambda: not source.running and feed.open == 0)
    await _until(_no_mask_threads)
    frames = await hass.async_add_executor_job(_read, source.url, 3)
    assert brightest_masked(luma(frames[0]), MASKS) <= 20
    assert feed.connections == 2


async def test_start_makes_a_first_masked_packet(
    hass: HomeAssistant, source: MaskedSource, feed: LiveFeed
) -> None:
    """async_start returns once the masked picture exists, then lingers."""
    await source.async_start()
    assert source.running
    assert source.stats.frames_encoded >= 1
    await _until(lambda: not source.running)


async def test_start_without_a_picture(hass: HomeAssistant, bright: Path) -> None:
    """No stream source (or no camera answering): MaskUnavailableError."""
    camera = Camera(None)
    masked = MaskedSource(camera, MASKS)
    await masked.async_open()
    with pytest.raises(MaskUnavailableError):
        await masked.async_start(timeout=0.5)
    assert camera.calls >= 1
    await masked.async_close()
    with pytest.raises(MaskUnavailableError):
        await masked.async_start()
    assert _no_mask_threads()


async def test_a_failure_ends_every_reader_and_is_reported(
    hass: HomeAssistant,
    source: MaskedSource,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fail closed: a failure ends every reader and is reported.

    The readers' connections end, the listeners are told, the log names the
    error's type only (no secret, no camera URL); a later reader gets a new
    pipeline.
    """
    caplog.set_level(logging.DEBUG)
    apply = FrameMasker.apply
    calls = 0

    def failing_apply(self: FrameMasker, frame: av.VideoFrame) -> av.VideoFrame:
        nonlocal calls
        calls += 1
        if calls == 6:
            raise av.ExternalError(-1, "boom", source.url)
        return apply(self, frame)

    monkeypatch.setattr(FrameMasker, "apply", failing_apply)
    failures: list[None] = []
    remove = source.async_add_failure_listener(lambda: failures.append(None))
    frames = await hass.async_add_executor_job(_read, source.url, 25)
    assert len(frames) < 6
    assert all(brightest_masked(luma(f), MASKS) <= 20 for f in frames)
    assert failures == [None]
    assert "failed (ExternalError)" in caplog.text
    monkeypatch.setattr(FrameMasker, "apply", apply)
    frames = await hass.async_add_executor_job(_read, source.url, 3)
    assert len(frames) == 3
    remove()
    remove()
    secret = source.url.split("@")[0].rsplit(":", 1)[1]
    assert secret not in caplog.text
    assert "live.ts" not in caplog.text


async def test_a_failure_before_the_first_packet(
    hass: HomeAssistant, source: MaskedSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture that cannot be masked is not available."""

    def failing_apply(self: FrameMasker, frame: av.VideoFrame) -> av.VideoFrame:
        raise ValueError

    monkeypatch.setattr(FrameMasker, "apply", failing_apply)
    failures: list[None] = []
    source.async_add_failure_listener(lambda: failures.append(None))
    with pytest.raises(MaskUnavailableError):
        await source.async_start()
    assert failures == [None]


async def test_snapshot(
    hass: HomeAssistant, source: MaskedSource, bright: Path
) -> None:
    """A snapshot is a JPEG masked like the stream.

    One frame from the camera when nothing runs; the pipeline's newest while
    it does.
    """

    def masked_ok(jpeg: bytes) -> None:
        image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
        for mask in MASKS:
            x0, y0, x1, y1 = mask_box(mask, 352, 288)
            assert image[y0:y1, x0:x1].max() <= 20
        assert image.mean() > 80

    masked_ok(await source.async_snapshot())
    assert not source.running
    await source.async_start()
    masked_ok(await source.async_snapshot())


async def test_snapshot_unavailable(
    hass: HomeAssistant, bright: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No snapshot without a masked picture, never the camera's own.

    No source, no picture, or no masking: MaskUnavailableError.
    """
    masked = MaskedSource(Camera(None), MASKS)
    with pytest.raises(MaskUnavailableError):
        await masked.async_snapshot()
    masked = MaskedSource(Camera(str(bright.with_name("missing.mp4"))), MASKS)
    with pytest.raises(MaskUnavailableError):
        await masked.async_snapshot()

    def failing_apply(self: FrameMasker, frame: av.VideoFrame) -> av.VideoFrame:
        raise ValueError

    monkeypatch.setattr(FrameMasker, "apply", failing_apply)
    masked = MaskedSource(Camera(str(bright)), MASKS)
    with pytest.raises(MaskUnavailableError):
        await masked.async_snapshot()


async def test_audio_is_never_carried(hass: HomeAssistant, tmp_path: Path) -> None:
    """A camera with audio: the masked view is video only."""
    clip = make_video(tmp_path / "audio.mp4", seconds=2, audio=True)
    masked = MaskedSource(Camera(str(clip)), MASKS)
    await masked.async_open()
    frames = await hass.async_add_executor_job(_read, masked.url, 3)
    assert len(frames) == 3
    await masked.async_close()


async def test_close_ends_readers_and_threads(
    hass: HomeAssistant, feed: LiveFeed
) -> None:
    """Closing ends every reader's connection and the pipeline's thread."""
    masked = MaskedSource(Camera(feed.url), MASKS)
    await masked.async_open()
    reading = hass.async_add_executor_job(_read, masked.url, 1000)
    await _until(lambda: masked.stats.frames_encoded >= 3)
    await masked.async_close()
    frames = await reading
    assert 0 < len(frames) < 1000
    assert _no_mask_threads()
    with pytest.raises(RuntimeError):
        _ = masked.url


async def test_a_camera_that_does_not_answer(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream source that raises or hangs is the camera's problem.

    No picture, no failure reported, and closing still ends the thread.
    """
    monkeypatch.setattr(masked_source, "SOURCE_URL_TIMEOUT_S", 0.1)
    hang = asyncio.Event()

    async def hanging() -> str:
        await hang.wait()
        return "never"

    async def raising() -> str:
        raise HomeAssistantError

    for provider in (hanging, raising):
        masked = MaskedSource(provider, MASKS)
        await masked.async_open()
        failures: list[None] = []
        masked.async_add_failure_listener(partial(failures.append, None))
        with pytest.raises(MaskUnavailableError):
            await masked.async_start(timeout=0.5)
        await masked.async_close()
        assert failures == []
    assert _no_mask_threads()


async def test_no_reader_once_closed(hass: HomeAssistant, feed: LiveFeed) -> None:
    """A request that races the close starts nothing."""
    masked = MaskedSource(Camera(feed.url), MASKS)
    await masked.async_open()
    authorization = aiohttp.encode_basic_auth(
        "rtcc_share", masked.url.split("@")[0].rsplit(":", 1)[1]
    )
    await masked.async_close()
    request = make_mocked_request(
        "GET", "/masked.ts", headers={"Authorization": authorization}
    )
    response = await masked._handle(request)
    assert response.status == 503
    assert not masked.running


async def test_open_fails_cleanly(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener that cannot start leaves nothing open."""

    async def refuse(self: web.SockSite) -> None:
        raise OSError

    monkeypatch.setattr(web.SockSite, "start", refuse)
    masked = MaskedSource(Camera(None), MASKS)
    with pytest.raises(OSError):
        await masked.async_open()
    with pytest.raises(RuntimeError):
        _ = masked.url
