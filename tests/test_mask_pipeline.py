"""Tests for the masking pipeline: decode, paint, encode, with real H.264."""

from collections.abc import Callable
from fractions import Fraction
import itertools
from pathlib import Path
import threading
from typing import Any

import av
from av.container import InputContainer
from av.stream import Stream
import numpy as np
import pytest

from custom_components.rtcc_share.live import mask_pipeline
from custom_components.rtcc_share.live.mask_frames import FrameMasker
from custom_components.rtcc_share.live.mask_pipeline import (
    MAX_FPS,
    OUTPUT_TIME_BASE,
    MaskEncoder,
    MaskFailedError,
    MaskPipeline,
    SourceError,
    Timeline,
    bitrate_cap,
    grab_masked_frame,
)
from custom_components.rtcc_share.live.masks import Mask

from .mask_video import FPS, brightest_masked, luma, make_bright_video, painted_area
from .video import make_video

MASKS: tuple[Mask, ...] = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))


@pytest.fixture(scope="module")
def bright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of the bright pattern, 352x288 at 10 fps."""
    return make_bright_video(tmp_path_factory.mktemp("masks") / "bright.mp4")


class Sink:
    """Collects the pipeline's packets; stops it after `limit` of them."""

    def __init__(  # noqa: D107
        self,
        stop: threading.Event,
        limit: int,
        *,
        keyframe_at: int | None = None,
        fail_at: int | None = None,
    ) -> None:
        self.stop = stop
        self.limit = limit
        self.keyframe_at = keyframe_at
        self.fail_at = fail_at
        self.packets: list[av.Packet[Stream]] = []
        self.asked = 0

    def keyframe_wanted(self) -> bool:
        """Ask for a keyframe once, when told to."""
        self.asked += 1
        return self.asked - 1 == self.keyframe_at

    def send(self, packet: av.Packet[Stream], read_at: float) -> None:
        """Keep the packet; fail or stop when told to."""
        if len(self.packets) == self.fail_at:
            raise OSError("reader went away")
        self.packets.append(packet)
        if len(self.packets) >= self.limit:
            self.stop.set()


def _run(
    source: str | Callable[[], str], limit: int, **sink_options: Any
) -> tuple[MaskPipeline, Sink]:
    stop = threading.Event()
    sink = Sink(stop, limit, **sink_options)
    pipeline = MaskPipeline(source if callable(source) else lambda: source, MASKS, sink)
    pipeline.run(stop)
    return pipeline, sink


def _decode(packets: list[av.Packet[Stream]]) -> list[av.VideoFrame]:
    """Decode packets in order, from the first, as a new reader would."""
    codec = av.CodecContext.create("h264", "r")
    assert isinstance(codec, av.VideoCodecContext)
    frames = []
    for packet in packets:
        frames.extend(codec.decode(av.Packet(bytes(packet))))
    frames.extend(codec.decode(None))
    return frames


def _source_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [luma(frame) for frame in container.decode(video=0)]


def test_every_frame_is_masked_and_the_rest_is_the_camera(bright: Path) -> None:
    """Every frame, decoded from the first packet on, is masked and camera.

    Every pixel of every mask's rectangle is black (luma <= 20), though the
    camera is bright and moving right up to its edges; outside the painted
    macroblocks the picture is the camera's (same brightness and contrast,
    pixel by pixel alike).
    """
    _, sink = _run(str(bright), 30)
    assert sink.packets[0].is_keyframe
    frames = _decode(sink.packets)
    assert len(frames) == 30
    source = _source_frames(bright)
    unmasked = ~painted_area(MASKS, 352, 288)
    for index, frame in enumerate(frames):
        picture = luma(frame)
        assert brightest_masked(picture, MASKS) <= 20
        camera = source[index][unmasked].astype(float)
        shown = picture[unmasked].astype(float)
        assert shown.mean() == pytest.approx(camera.mean(), abs=3)
        assert shown.std() == pytest.approx(camera.std(), rel=0.1)
        assert np.corrcoef(shown, camera)[0, 1] > 0.9


@pytest.mark.parametrize(
    "masks",
    [
        MASKS,
        ((0.0, 0.0, 1.0, 0.2), (0.0, 0.8, 1.0, 1.0)),
        ((0.4, 0.3, 0.55, 0.6),),
        ((0.485, 0.725, 0.981, 0.962),),
        ((0.03, 0.1, 0.06, 0.9), (0.2, 0.45, 0.97, 0.5), (0.9, 0.02, 0.99, 0.2)),
    ],
)
def test_masks_stay_black_when_the_bitrate_cap_bites(
    tmp_path_factory: pytest.TempPathFactory, masks: tuple[Mask, ...]
) -> None:
    """The masks decode black even when the quantizer goes high.

    Fine detail everywhere, moving: far more than the bitrate cap carries.
    """
    clip = tmp_path_factory.getbasetemp() / "dense.mp4"
    if not clip.exists():
        make_bright_video(clip, detail=7)
    stop = threading.Event()
    sink = Sink(stop, 25)
    MaskPipeline(lambda: str(clip), masks, sink).run(stop)
    for frame in _decode(sink.packets):
        assert brightest_masked(luma(frame), masks) <= 20


def test_output_timestamps_go_on_across_a_reconnect(tmp_path: Path) -> None:
    """The output's clock goes on when the camera drops and comes back.

    Here the camera is a clip that ends; the frames after it are masked too.
    """
    clip = make_bright_video(tmp_path / "short.mp4", seconds=1)
    pipeline, sink = _run(str(clip), 25)
    assert pipeline.stats.reconnects >= 2
    pts = [packet.pts for packet in sink.packets]
    step = OUTPUT_TIME_BASE.denominator // MAX_FPS
    assert all(b - a >= step for a, b in itertools.pairwise(pts))
    for frame in _decode(sink.packets):
        assert brightest_masked(luma(frame), MASKS) <= 20


def test_at_most_1280_wide(tmp_path: Path) -> None:
    """A 1080p camera is masked at 720p."""
    clip = make_bright_video(tmp_path / "big.mp4", width=1920, height=1080, seconds=1)
    _, sink = _run(str(clip), 3)
    frames = _decode(sink.packets)
    assert {(frame.width, frame.height) for frame in frames} == {(1280, 720)}
    assert all(brightest_masked(luma(frame), MASKS) <= 20 for frame in frames)


def test_at_most_15_frames_a_second(tmp_path: Path) -> None:
    """A 30 fps camera gives 15 masked frames a second."""
    clip = make_bright_video(tmp_path / "fast.mp4", seconds=2, fps=30)
    _, sink = _run(str(clip), 20)
    seconds = float((sink.packets[-1].pts - sink.packets[0].pts) * OUTPUT_TIME_BASE)
    assert (len(sink.packets) - 1) / seconds == pytest.approx(MAX_FPS)


def test_keyframes_every_second_and_on_request(bright: Path) -> None:
    """An IDR a second, and one for the frame after a reader asked."""
    _, sink = _run(str(bright), 35, keyframe_at=13)
    keyframes = [i for i, packet in enumerate(sink.packets) if packet.is_keyframe]
    assert keyframes == [0, 10, 13, 20, 30]


def test_newest_masked_frame(bright: Path) -> None:
    """The snapshot frame is the newest masked one."""
    pipeline, _ = _run(str(bright), 5)
    assert pipeline.latest is not None
    assert brightest_masked(luma(pipeline.latest), MASKS) == 16


def test_audio_is_never_read(tmp_path: Path) -> None:
    """A camera with audio gives video packets only."""
    clip = make_video(tmp_path / "audio.mp4", seconds=2, audio=True)
    _, sink = _run(str(clip), 12)
    assert {
        packet.stream.type if packet.stream else "video" for packet in sink.packets
    } == {"video"}
    assert len(_decode(sink.packets)) == 12


@pytest.mark.parametrize("where", ["paint", "encode", "send"])
def test_a_masking_error_stops_the_output(
    bright: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Fail closed: an error in painting, encoding or handing on ends the run.

    MaskFailedError; nothing is output after it, and nothing before it was
    unmasked.
    """
    stop = threading.Event()
    sink = Sink(stop, 1000, fail_at=7 if where == "send" else None)
    calls = 0
    if where == "paint":
        apply = FrameMasker.apply

        def failing_apply(self: FrameMasker, frame: av.VideoFrame) -> av.VideoFrame:
            nonlocal calls
            calls += 1
            if calls == 8:
                raise MemoryError
            return apply(self, frame)

        monkeypatch.setattr(FrameMasker, "apply", failing_apply)
    if where == "encode":
        encode = MaskEncoder.encode

        def failing_encode(
            self: MaskEncoder, frame: av.VideoFrame, pts: int, keyframe: bool
        ) -> list[av.Packet[Stream]]:
            nonlocal calls
            calls += 1
            if calls == 8:
                raise av.ExternalError(-1, "x264")
            return encode(self, frame, pts, keyframe)

        monkeypatch.setattr(MaskEncoder, "encode", failing_encode)
    pipeline = MaskPipeline(lambda: str(bright), MASKS, sink)
    with pytest.raises(MaskFailedError):
        pipeline.run(stop)
    assert len(sink.packets) == 7
    for frame in _decode(sink.packets):
        assert brightest_masked(luma(frame), MASKS) <= 20


def test_a_camera_that_cannot_be_read_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera that cannot be read is retried with a back-off.

    Not reachable, no video, or no stream source: nothing is output, and
    the pipeline does not fail.
    """
    monkeypatch.setattr(mask_pipeline, "RETRY_DELAYS_S", (0.01, 0.02))
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 4096)
    audio_only = tmp_path / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    sources = iter(
        [str(tmp_path / "missing.mp4"), str(tmp_path / "garbage.mp4"), str(audio_only)]
    )

    def source() -> str:
        if (url := next(sources, None)) is None:
            raise SourceError("no stream source")
        return url

    stop = threading.Event()
    sink = Sink(stop, 1)
    pipeline = MaskPipeline(source, MASKS, sink)
    thread = threading.Thread(target=pipeline.run, args=(stop,))
    thread.start()
    try:
        while pipeline.stats.reconnects < 5:
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert sink.packets == []


def test_undecodable_data_is_the_cameras_problem(
    bright: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packet the decoder refuses reconnects to the camera."""
    monkeypatch.setattr(mask_pipeline, "RETRY_DELAYS_S", (0.01,))
    decode = av.video.stream.VideoStream.decode
    calls = 0

    def flaky_decode(self: Any, packet: Any = None) -> list[av.VideoFrame]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise av.InvalidDataError(1094995529, "Invalid data")
        return decode(self, packet)

    monkeypatch.setattr(av.video.stream.VideoStream, "decode", flaky_decode)
    pipeline, sink = _run(str(bright), 6)
    assert pipeline.stats.reconnects == 1
    assert all(brightest_masked(luma(f), MASKS) <= 20 for f in _decode(sink.packets))


def test_grab_one_masked_frame(bright: Path, tmp_path: Path) -> None:
    """The snapshot without a running pipeline is masked like the stream."""
    frame = grab_masked_frame(str(bright), MASKS)
    assert brightest_masked(luma(frame), MASKS) == 16
    with pytest.raises(SourceError):
        grab_masked_frame(str(tmp_path / "missing.mp4"), MASKS)


def test_rtsp_cameras_send_video_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """An RTSP camera is asked for its video track only.

    The camera's own options are kept, and the error names no URL.
    """
    opened: list[dict[str, str]] = []

    def fake_open(url: str, options: dict[str, str], timeout: Any) -> Any:
        opened.append(options)
        raise av.ConnectionRefusedError(111, "refused", url)

    monkeypatch.setattr(av, "open", fake_open)
    for url in ("rtsp://cam/1", "rtsps://cam/1", "http://cam/1.ts"):
        with pytest.raises(SourceError) as err:
            mask_pipeline.open_source(url, {"rtsp_transport": "tcp"})
        assert "cam" not in str(err.value)
    assert opened == [
        {"rtsp_transport": "tcp", "allowed_media_types": "video"},
        {"rtsp_transport": "tcp", "allowed_media_types": "video"},
        {"rtsp_transport": "tcp"},
    ]


def test_a_camera_that_breaks_off_is_reconnected(
    bright: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read error mid-stream (the connection dropping) reconnects."""
    monkeypatch.setattr(mask_pipeline, "RETRY_DELAYS_S", (0.01,))
    demux = InputContainer.demux
    connections = 0

    def breaking(self: InputContainer, *args: Any) -> Any:
        nonlocal connections
        connections += 1
        packets = demux(self, *args)
        for _ in range(3):
            yield next(packets)
        if connections == 1:
            raise av.ExitError(-1, "Immediate exit requested")
        yield from packets

    monkeypatch.setattr(InputContainer, "demux", breaking)
    pipeline, sink = _run(str(bright), 8)
    assert pipeline.stats.reconnects == 1
    assert all(brightest_masked(luma(f), MASKS) <= 20 for f in _decode(sink.packets))


def test_grab_from_a_camera_without_pictures(
    bright: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera whose stream ends before a picture: SourceError."""
    monkeypatch.setattr(mask_pipeline, "_decoded", lambda *args: iter(()))
    with pytest.raises(SourceError):
        grab_masked_frame(str(bright), MASKS)


def test_grab_gives_up(bright: Path) -> None:
    """A camera that gives no picture in time is an error, not a wait."""
    with pytest.raises(SourceError):
        grab_masked_frame(str(bright), MASKS, timeout_s=-1)


def test_grab_fails_closed(bright: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot that cannot be masked is an error, never the camera's picture."""

    def failing_apply(self: FrameMasker, frame: av.VideoFrame) -> av.VideoFrame:
        raise ValueError

    monkeypatch.setattr(FrameMasker, "apply", failing_apply)
    with pytest.raises(MaskFailedError):
        grab_masked_frame(str(bright), MASKS)


def test_timeline_drops_to_15_fps() -> None:
    """30 fps keeps every other frame; 15 and 10 fps keep all; 20 fps averages 15."""
    for fps, kept in ((30, 15), (15, 15), (10, 10), (20, 15), (60, 15)):
        timeline = Timeline()
        placed = [timeline.place(index / fps) for index in range(fps * 4)]
        assert sum(p is not None for p in placed) == pytest.approx(kept * 4, abs=1)


def test_timeline_keyframe_every_second() -> None:
    """An IDR is due once a second of output, whatever the frame rate."""
    for fps in (5, 10, 15, 30):
        timeline = Timeline()
        due = [
            pts
            for index in range(fps * 3)
            if (placed := timeline.place(index / fps)) and placed[1]
            for pts in [placed[0]]
        ]
        assert due == [0, 90_000, 180_000]


def test_timeline_continues_after_jumps() -> None:
    """The output goes on a frame after the last one after any jump.

    A reconnect, a camera clock going back, or a long gap.
    """
    timeline = Timeline()
    step = OUTPUT_TIME_BASE.denominator // MAX_FPS
    assert timeline.place(100.0) == (0, True)
    assert timeline.place(100 + 1 / 15) == (step, False)
    timeline.reconnected()
    assert timeline.place(3.0) == (2 * step, False)
    assert timeline.place(2.0) == (3 * step, False)  # back in time
    assert timeline.place(60.0) == (4 * step, False)  # far ahead
    assert timeline.place(60 + 1 / 15) == (5 * step, False)


def test_bitrate_cap() -> None:
    """2 Mbit/s at 720p, scaled by the pixels, never below a floor."""
    assert bitrate_cap(1280, 720) == 2_000_000
    assert bitrate_cap(640, 360) == 500_000
    assert bitrate_cap(160, 96) == 250_000


def test_bitrate_at_most_the_cap(bright: Path) -> None:
    """Even a picture with detail everywhere stays near the cap."""
    _, sink = _run(str(bright), 40)
    seconds = len(sink.packets) / FPS
    rate = sum(packet.size for packet in sink.packets) * 8 / seconds
    assert rate <= 1.1 * bitrate_cap(352, 288)
