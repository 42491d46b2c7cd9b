"""Tests for the prebuffer: the newest keyframe interval, bursts, bounds, lifetime."""

import asyncio
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
import io
import itertools
from pathlib import Path
import threading
import time
from typing import Any

import aiohttp
import av
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
import pytest

from custom_components.rtcc_share.live import prebuffer as prebuffer_module
from custom_components.rtcc_share.live.loopback import LoopbackReader
from custom_components.rtcc_share.live.prebuffer import (
    BASE_TICKS,
    READER_OPTIONS,
    CameraSource,
    Prebuffer,
)

from .gop_camera import TICKS, GopCamera, clip, frame_number

THREAD = "rtcc_share prebuffer"


@pytest.fixture(autouse=True)
def loopback(socket_enabled: None) -> None:
    """The camera and the prebuffer listen on loopback."""


class Source:
    """The camera's stream source, counting the prebuffer's questions."""

    def __init__(self, url: str | None) -> None:  # noqa: D107
        self.url = url
        self.calls = 0

    async def __call__(self) -> CameraSource | None:
        """Return the camera's URL, no options."""
        self.calls += 1
        return None if self.url is None else CameraSource(self.url, {})


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _no_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name == THREAD]


@pytest.fixture
async def camera() -> AsyncIterator[GopCamera]:
    """A camera with a keyframe every second (10 frames)."""
    async with GopCamera(1.0) as live:
        yield live


@pytest.fixture
async def prebuffer(camera: GopCamera) -> AsyncIterator[Prebuffer]:
    """The camera's prebuffer, reading it."""
    buffer = Prebuffer(Source(camera.url), audio=False)
    await buffer.async_open()
    await _until(lambda: buffer.lookback() is not None)
    yield buffer
    await buffer.async_close()


def _read(
    url: str, frames: int, options: dict[str, str] | None = None
) -> list[tuple[float, Any]]:
    """Decode up to `frames` frames of the URL; (monotonic time, frame) each."""
    got: list[tuple[float, Any]] = []
    with av.open(url, timeout=10, options=options or {}) as container:
        assert not container.streams.audio
        try:
            for frame in container.decode(video=0):
                got.append((time.monotonic(), frame))
                if len(got) == frames:
                    break
        except av.OSError:
            pass  # the server ended the stream
    return got


async def test_keeps_exactly_the_newest_keyframe_interval(
    camera: GopCamera, prebuffer: Prebuffer
) -> None:
    """The buffer starts at the camera's newest keyframe and holds what followed.

    Checked at several moments of the camera's keyframe interval: no older
    packet, no other keyframe, nothing missing.
    """
    for _ in range(8):
        with prebuffer._lock:
            gop = prebuffer._gop
            assert gop is not None
            packets = [(p.dts, p.is_keyframe) for p, _, _ in gop.packets]
        newest = packets[-1][0] // TICKS
        keyframe = camera.keyframe_at_or_before(newest)
        assert packets == [
            (number * TICKS, number == keyframe)
            for number in range(keyframe, newest + 1)
        ]
        assert 0 <= prebuffer.lookback() < 1.2  # type: ignore[operator]
        await asyncio.sleep(0.27)


async def test_a_reader_gets_the_burst_at_once_then_live_video(
    hass: Any, camera: GopCamera, prebuffer: Prebuffer
) -> None:
    """A name's first connection: the buffered interval at once, then live.

    Its first frame is the newest keyframe (decodable), at BASE_TICKS; the
    buffered frames come faster than the camera sends them; the burst names
    the last of them.
    """
    await asyncio.sleep(0.5)  # mid-interval
    url = prebuffer.url("share_1")
    assert url.startswith("http://rtcc_share:")
    newest = camera.now() - 1
    keyframe = camera.keyframe_at_or_before(newest)
    frames = await hass.async_add_executor_job(_read, url, 20, READER_OPTIONS)
    numbers = [frame_number(frame) for _, frame in frames]
    length = len(camera.clip)
    assert numbers == [(keyframe + n) % length for n in range(20)]
    first = frames[0][1]
    assert first.key_frame
    assert first.pts == BASE_TICKS
    burst = prebuffer.burst("share_1")
    assert burst is not None
    end = burst.end
    buffered = [f for _, f in frames if f.pts <= end]
    assert len(buffered) == (end - BASE_TICKS) // TICKS + 1
    # All the camera had sent, but what its MPEG-TS demuxer still held.
    assert len(buffered) >= newest - keyframe - 2
    # The burst came at once; the frame after it only when the camera sent it.
    assert frames[len(buffered) - 1][0] - frames[0][0] < 0.15
    # Its keyframe came as many frames ago as the burst holds (10 fps).
    age = (dt_util.utcnow() - burst.started_at).total_seconds()
    age -= time.monotonic() - frames[0][0]
    assert len(buffered) / 10 - 0.1 < age < len(buffered) / 10 + 1
    assert prebuffer.stats.bursts == 1
    assert prebuffer.burst("other") is None


async def test_a_name_never_gets_the_same_video_twice(
    hass: Any, camera: GopCamera, prebuffer: Prebuffer
) -> None:
    """A name's next connection starts at a keyframe it has not had."""
    first = await hass.async_add_executor_job(_read, prebuffer.url("share_1"), 3)
    again = await hass.async_add_executor_job(_read, prebuffer.url("share_1"), 2)
    seen = [frame_number(f) for _, f in first]
    assert again[0][1].key_frame
    assert frame_number(again[0][1]) not in seen
    assert prebuffer.burst("share_1") is None
    # Another name gets the buffered interval.
    other = await hass.async_add_executor_job(_read, prebuffer.url("share_2"), 1)
    assert other[0][1].key_frame
    assert prebuffer.burst("share_2") is not None


async def test_the_secret_and_a_valid_name_are_required(
    prebuffer: Prebuffer,
) -> None:
    """Without the URL's credentials: 401; a name it does not take: refused."""
    url = prebuffer.url("share_1")
    bare = "http://" + url.split("@")[1]
    async with aiohttp.ClientSession() as session:
        async with session.get(bare) as response:
            assert response.status == 401
        async with session.get(url.replace("share_1", "a.b")) as response:
            assert response.status == 404
    for name in ("", "a/b", "x" * 65, "é"):
        with pytest.raises(ValueError):
            prebuffer.url(name)
    assert prebuffer.stats.bursts == 0


async def test_close_stops_at_once(
    hass: Any, camera: GopCamera, prebuffer: Prebuffer
) -> None:
    """Closing ends every reader, drops the buffer and the camera connection."""
    url = prebuffer.url("share_1")
    reading = hass.async_add_executor_job(_read, url, 1000)
    await _until(lambda: prebuffer._readers != [])
    prebuffer.halt()
    assert prebuffer.lookback() is None
    assert not prebuffer.running
    frames = await reading
    assert 0 < len(frames) < 1000
    await prebuffer.async_close()
    assert _no_threads()
    # The camera notices at its next frame.
    await _until(lambda: camera.open == 0, timeout=1)
    with pytest.raises(RuntimeError):
        prebuffer.url("share_1")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)


async def test_a_camera_that_drops_is_reconnected(
    hass: Any, camera: GopCamera, prebuffer: Prebuffer
) -> None:
    """The camera dropping ends the readers; the prebuffer connects again."""
    reading = hass.async_add_executor_job(_read, prebuffer.url("share_1"), 1000)
    await _until(lambda: prebuffer._readers != [])
    camera.drop()
    frames = await reading
    assert len(frames) < 1000
    await _until(lambda: camera.connections == 2 and prebuffer.connected)
    await _until(lambda: prebuffer.lookback() is not None)
    assert prebuffer.stats.camera_connections == 2


async def test_a_keyframe_interval_too_long_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MAX_GOP_S (or MAX_GOP_BYTES) nothing is kept until the next keyframe."""
    monkeypatch.setattr(prebuffer_module, "MAX_GOP_S", 0.45)
    async with GopCamera(2.0) as camera:
        buffer = Prebuffer(Source(camera.url), audio=False)
        await buffer.async_open()
        await _until(lambda: buffer.stats.dropped_gops >= 1, timeout=5)
        assert buffer.lookback() is None
        await _until(lambda: buffer.lookback() is not None, timeout=5)
        assert buffer.lookback() < 0.5  # type: ignore[operator]
        await buffer.async_close()
    monkeypatch.setattr(prebuffer_module, "MAX_GOP_S", 10.0)
    monkeypatch.setattr(prebuffer_module, "MAX_GOP_BYTES", 1000)
    async with GopCamera(1.0) as camera:
        buffer = Prebuffer(Source(camera.url), audio=False)
        await buffer.async_open()
        await _until(lambda: buffer.stats.dropped_gops >= 2, timeout=5)
        await buffer.async_close()


@pytest.mark.parametrize("audio", [False, True])
async def test_audio_only_when_shared(hass: Any, audio: bool) -> None:
    """A camera with audio: its readers get the audio only if it is shared."""

    def streams(url: str) -> list[str]:
        with av.open(url, timeout=10) as container:
            kinds = [stream.type for stream in container.streams]
            for packet in container.demux():
                if packet.stream.type == "audio" or packet.pts is None:
                    continue
                break
            return kinds

    async with GopCamera(1.0, audio=True) as camera:
        buffer = Prebuffer(Source(camera.url), audio=audio)
        await buffer.async_open()
        await _until(lambda: buffer.lookback() is not None)
        kinds = await hass.async_add_executor_job(streams, buffer.url("reader"))
        await buffer.async_close()
    assert kinds == (["video", "audio"] if audio else ["video"])


async def test_no_camera_no_reader(hass: Any) -> None:
    """Without a stream source: asked again with back-off; readers get 503."""
    source = Source(None)
    buffer = Prebuffer(source, audio=False)
    await buffer.async_open()
    await _until(lambda: source.calls >= 2)
    assert buffer.running and not buffer.connected
    async with (
        aiohttp.ClientSession() as session,
        session.get(buffer.url("reader")) as response,
    ):
        assert response.status == 503
    await buffer.async_close()
    with pytest.raises(RuntimeError):
        await buffer.async_open()
    assert _no_threads()


class _Demuxed:
    """A container whose demuxer gives these packets (as a camera might)."""

    def __init__(self, packets: list[tuple[int | None, int | None, bool]]) -> None:
        self._output = av.open(io.BytesIO(), "w", format="mpegts")
        self.video = self._output.add_stream("h264", rate=10)
        data = clip(1.0)[0][0]
        self.packets = []
        for pts, dts, keyframe in packets:
            packet = av.Packet(data)
            packet.stream = self.video
            packet.time_base = Fraction(1, 90_000)
            packet.pts, packet.dts, packet.is_keyframe = pts, dts, keyframe
            self.packets.append(packet)

    def demux(self, streams: object) -> Any:
        return iter(self.packets)


def test_timestamps_the_prebuffer_passes_on() -> None:
    """From the first keyframe on, in order, in 90 kHz; a jump ends the connection."""
    prebuffer = Prebuffer(Source(None), audio=False)
    camera = _Demuxed(
        [
            (0, 0, False),  # before the first keyframe
            (9000, None, True),  # no DTS: its PTS stands for it
            (None, None, False),  # no timestamp at all
            (18000, 18000, False),
            (18000, 18000, False),  # not after the one before
            (27000, 27000, False),
            (20 * 90_000, 20 * 90_000, False),  # a jump
        ]
    )
    packets = prebuffer._packets(camera, camera.video, None)  # type: ignore[arg-type]
    kept = [(p.dts, p.is_keyframe) for p, _ in itertools.islice(packets, 3)]
    assert kept == [(9000, True), (18000, False), (27000, False)]
    with pytest.raises(prebuffer_module.SourceError):
        next(packets)


@pytest.mark.parametrize("audio", [False, True])
async def test_how_the_camera_is_opened(
    audio: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fast, with the camera's options; RTSP video only unless audio is shared.

    A camera that cannot be opened is retried, its error never logged.
    """
    opened: list[dict[str, str]] = []

    def refuse(url: str, options: dict[str, str], timeout: object) -> None:
        opened.append(options)
        raise av.ConnectionRefusedError(111, "refused", url)

    monkeypatch.setattr(prebuffer_module.av, "open", refuse)

    async def rtsp() -> CameraSource:
        return CameraSource("rtsp://user:pw@127.0.0.1:9/x", {"stimeout": "5000000"})

    buffer = Prebuffer(rtsp, audio=audio)
    await buffer.async_open()
    await _until(lambda: len(opened) >= 2)
    await buffer.async_close()
    expected = {"fpsprobesize": "0", "timeout": "5000000"}
    if not audio:
        expected["allowed_media_types"] = "video"
    assert opened[0] == expected
    assert not buffer.connected


async def test_a_source_that_fails_or_is_not_video(hass: Any, tmp_path: Path) -> None:
    """A stream source that raises, or has no H.264/HEVC video: retried, no reader."""
    calls = 0

    async def raising() -> CameraSource:
        nonlocal calls
        calls += 1
        raise HomeAssistantError

    buffer = Prebuffer(raising, audio=False)
    await buffer.async_open()
    await _until(lambda: calls >= 2)
    await buffer.async_close()

    clip_path = tmp_path / "mjpeg.mkv"
    with av.open(str(clip_path), "w") as output:
        stream = output.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(5):
            frame = av.VideoFrame(64, 48, "yuvj420p")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    source = Source(str(clip_path))
    buffer = Prebuffer(source, audio=False)
    await buffer.async_open()
    await _until(lambda: source.calls >= 2)
    assert buffer.stats.camera_connections == 0
    await buffer.async_close()


async def test_names_kept_and_readers_refused_by_their_muxer(
    hass: Any,
    camera: GopCamera,
    prebuffer: Prebuffer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most NAMES_KEPT names remembered; a reader whose muxer fails is ended."""
    monkeypatch.setattr(prebuffer_module, "NAMES_KEPT", 1)
    await hass.async_add_executor_job(_read, prebuffer.url("first"), 1, READER_OPTIONS)
    await hass.async_add_executor_job(_read, prebuffer.url("second"), 1, READER_OPTIONS)
    assert list(prebuffer._names) == ["second"]

    def failing(*args: object) -> None:
        raise ValueError

    monkeypatch.setattr(LoopbackReader, "mux", failing)
    frames = await hass.async_add_executor_job(_read_or_nothing, prebuffer.url("third"))
    assert frames == []
    await _until(lambda: not prebuffer._readers)


def _read_or_nothing(url: str) -> list[Any]:
    try:
        return [frame for _, frame in _read(url, 1, READER_OPTIONS)]
    except av.FFmpegError:
        return []


async def test_halted_before_it_opened() -> None:
    """Halted while opening: nothing listens, nothing reads the camera."""
    buffer = Prebuffer(Source(None), audio=False)
    buffer.halt()
    await buffer.async_open()
    assert not buffer.running
    assert buffer._thread is None
    assert buffer.buffered() == (0.0, 0)
    await buffer.async_close()
    assert _no_threads()


async def test_an_unexpected_failure_is_retried(
    camera: GopCamera,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anything unexpected while reading: its type logged, the camera read again."""
    keep = Prebuffer._keep
    failed = False

    def failing_once(self: Prebuffer, *args: Any) -> None:
        nonlocal failed
        if not failed:
            failed = True
            raise RuntimeError(camera.url)
        keep(self, *args)

    monkeypatch.setattr(Prebuffer, "_keep", failing_once)
    buffer = Prebuffer(Source(camera.url), audio=False)
    await buffer.async_open()
    await _until(lambda: buffer.lookback() is not None)
    assert buffer.stats.camera_connections == 2
    await buffer.async_close()
    assert "camera reader: RuntimeError" in caplog.text
    assert camera.url not in caplog.text
