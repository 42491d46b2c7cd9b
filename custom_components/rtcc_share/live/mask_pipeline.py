"""One camera's masked video: read, decode, paint, encode, in a worker thread.

`MaskPipeline.run` reads the camera's video (never its audio: a masked view
carries video only), decodes it, keeps at most `MAX_FPS` frames a second,
paints the masks (`mask_frames`), and encodes H.264 with libx264 for live
viewing (ultrafast, zero latency, an IDR every second and whenever a new
reader asks, a bitrate cap). Every packet it hands on is the encoder's
output of a painted frame: nothing of the camera's is ever passed through.

- The camera dropping, or sending data that cannot be decoded, is the
  camera's problem: the pipeline reconnects with a bounded back-off, and
  outputs nothing meanwhile.
- Anything that goes wrong in the masking itself (scaling, painting,
  encoding, handing a packet on, or anything unexpected) raises
  `MaskFailedError`, and the run is over: fail closed.

Blocking: runs in its own thread. No Home Assistant import, no asyncio.
"""

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
import math
import threading
import time
from typing import Final, Protocol, cast

import av
from av.container import InputContainer
import av.filter
from av.stream import Stream
from av.video.frame import PictureType
from av.video.stream import VideoStream

from .mask_frames import MACROBLOCK, PIXEL_FORMAT, FrameMasker, output_size
from .masks import Box, Mask

MAX_FPS: Final = 15
KEYFRAME_INTERVAL_S: Final = 1.0
OUTPUT_TIME_BASE: Final = Fraction(1, 90_000)
# Constant quality, capped: a picture that needs less (the black boxes cost
# almost nothing) takes less. The cap scales with the picture's pixels: at
# 1280x720 (and at most 15 fps) it is 2 Mbit/s, over a one-second buffer.
CRF: Final = 26
BITRATE_CAP_720P: Final = 2_000_000
MIN_BITRATE_CAP: Final = 250_000
# Never the top of H.264's range (51); see MaskEncoder.
QP_MAX: Final = 45
# 3/4 of the quantizer's range (38 steps) finer on the boxes' edges: at half of
# it an edge macroblock in an extra keyframe still decoded up to luma 22; at
# all of it the rest of the picture lost contrast to pay for the edges.
EDGE_QOFFSET: Final = -0.75
OPEN_TIMEOUT_S: Final = 10.0
READ_TIMEOUT_S: Final = 10.0
# Waits between attempts to reach the camera; the last one repeats.
RETRY_DELAYS_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0)
# A jump in the camera's timestamps bigger than this (a reconnect, a clock
# reset) starts a new anchor, so the output's stay continuous.
MAX_TIMESTAMP_GAP_S: Final = 5.0
LATENCIES_KEPT: Final = 1000


class MaskFailedError(Exception):
    """The masked picture cannot be made; nothing more is output."""


class SourceError(Exception):
    """The camera could not be read (not reachable, dropped, undecodable)."""


class PacketSink(Protocol):
    """Where the masked packets go (the readers), called from the pipeline thread."""

    def keyframe_wanted(self) -> bool:
        """Return True once after a reader joined: the next frame is an IDR."""

    def send(self, packet: av.Packet[Stream], read_at: float) -> None:
        """Hand on an encoded packet; read_at: when its source packet was read."""


@dataclass(slots=True)
class PipelineStats:
    """What the masking costs, for diagnostics and the benchmark."""

    frames_decoded: int = 0
    frames_encoded: int = 0
    bytes_encoded: int = 0
    decode_s: float = 0.0
    paint_s: float = 0.0
    encode_s: float = 0.0
    reconnects: int = 0
    # Seconds from a source packet read to its masked packet served.
    latencies: deque[float] = field(
        default_factory=lambda: deque(maxlen=LATENCIES_KEPT)
    )


def bitrate_cap(width: int, height: int) -> int:
    """Return the VBV maximum rate for a masked picture of this size."""
    return max(MIN_BITRATE_CAP, BITRATE_CAP_720P * width * height // (1280 * 720))


def open_source(url: str, pyav_options: Mapping[str, str]) -> InputContainer:
    """Open the camera for reading its video only; SourceError if it cannot be."""
    options = dict(pyav_options)
    if url.startswith(("rtsp://", "rtsps://")):
        # Only SETUP the video track: audio never leaves the camera.
        options["allowed_media_types"] = "video"
    try:
        return av.open(url, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
    except (av.FFmpegError, OSError) as err:
        # Never the message: PyAV's carries the URL.
        raise SourceError(type(err).__name__) from err


def _video(container: InputContainer) -> VideoStream:
    if not container.streams.video:
        raise SourceError("no video")
    video = container.streams.video[0]
    # Frame threading would hold frames back; slices do not.
    video.thread_type = "SLICE"
    return video


def _decoded(
    container: InputContainer,
    video: VideoStream,
    stats: PipelineStats,
    deadline: float = math.inf,
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Yield the video's frames from its first keyframe on, with read times."""
    started = False
    packets = container.demux(video)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as err:
            raise SourceError(type(err).__name__) from err
        read_at = time.monotonic()
        if read_at > deadline:
            raise SourceError("timeout")
        started = started or packet.is_keyframe
        if not started or packet.size == 0:
            continue
        began = time.perf_counter()
        try:
            frames = video.decode(packet)
        except av.InvalidDataError as err:
            raise SourceError(type(err).__name__) from err
        stats.decode_s += time.perf_counter() - began
        for frame in frames:
            stats.frames_decoded += 1
            yield frame, read_at


class Timeline:
    """Place source frames on the output's clock: continuous, at most MAX_FPS.

    Output timestamps follow the camera's, shifted so that they go on where
    the last frame left off after a reconnect or a jump in the camera's
    clock. A frame is kept when it is the first at or after the next slot
    (1 / MAX_FPS apart); an IDR is asked for every KEYFRAME_INTERVAL_S.
    """

    def __init__(self) -> None:
        """Start with nothing placed."""
        self._interval = 1 / MAX_FPS
        self._offset: float | None = None
        self._last: float | None = None
        self._next_slot = 0.0
        self._last_keyframe: float | None = None

    def reconnected(self) -> None:
        """The camera's timestamps start over: anchor at the next frame."""
        self._offset = None

    def place(self, source_time: float) -> tuple[int, bool] | None:
        """Return (output pts, keyframe due) for a frame, or None to drop it."""
        interval = self._interval
        out = None if self._offset is None else source_time + self._offset
        if out is None or (
            self._last is not None
            and not self._last < out <= self._last + MAX_TIMESTAMP_GAP_S
        ):
            start = 0.0 if self._last is None else self._last + interval
            self._offset = start - source_time
            out = self._next_slot = start
        if out < self._next_slot - interval / 10:
            return None
        self._next_slot = max(self._next_slot + interval, out + interval / 2)
        self._last = out
        keyframe = (
            self._last_keyframe is None
            or out - self._last_keyframe >= KEYFRAME_INTERVAL_S - interval / 2
        )
        if keyframe:
            self._last_keyframe = out
        return round(out / OUTPUT_TIME_BASE), keyframe


def _edges(boxes: Sequence[Box]) -> Iterator[Box]:
    """Yield the ring of macroblocks just inside each box."""
    for x0, y0, x1, y1 in boxes:
        yield (x0, y0, x1, min(y1, y0 + MACROBLOCK))
        yield (x0, max(y0, y1 - MACROBLOCK), x1, y1)
        yield (x0, y0, min(x1, x0 + MACROBLOCK), y1)
        yield (max(x0, x1 - MACROBLOCK), y0, x1, y1)


class MaskEncoder:
    """libx264 for the masked picture, keeping its black boxes black.

    A masked macroblock next to the camera's picture is predicted from it
    (intra from its left and top, inter along its neighbours' motion), and
    at a high quantizer the residual cannot cancel that: the box would
    decode dark grey, or with faint stripes of its neighbour (never what it
    hides, which the encoder never sees). So the macroblocks along each
    box's edges are coded with a much finer quantizer (a region of
    interest; libx264 applies those only with adaptive quantization on,
    here at a negligible strength), and the quantizer never reaches the
    top of its range, where rate control would override them. The
    boxes' inside is then predicted from black, exactly.
    """

    def __init__(self, masker: FrameMasker) -> None:
        """Open the encoder for this masker's output."""
        width, height = masker.width, masker.height
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, PIXEL_FORMAT
        codec.time_base = OUTPUT_TIME_BASE
        codec.framerate = Fraction(MAX_FPS)
        codec.gop_size = round(MAX_FPS * KEYFRAME_INTERVAL_S)
        codec.max_bit_rate = codec.rc_buffer_size = bitrate_cap(width, height)
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "crf": str(CRF),
            "qmax": str(QP_MAX),
            "aq-mode": "1",
            "aq-strength": "0.01",
            # A forced keyframe is an IDR, where a new reader can start.
            "forced-idr": "1",
            # Keyframes only on schedule and on request.
            "sc_threshold": "0",
        }
        codec.open()
        self._codec = codec
        graph = av.filter.Graph()
        last: av.filter.FilterContext = graph.add_buffer(
            width=width, height=height, format=PIXEL_FORMAT, time_base=OUTPUT_TIME_BASE
        )
        for x0, y0, x1, y1 in _edges(masker.boxes[0]):
            region = graph.add(
                "addroi",
                f"x={x0}:y={y0}:w={x1 - x0}:h={y1 - y0}:qoffset={EDGE_QOFFSET}",
            )
            last.link_to(region)
            last = region
        last.link_to(graph.add("buffersink"))
        graph.configure()
        self._regions = graph

    def encode(
        self, frame: av.VideoFrame, pts: int, keyframe: bool
    ) -> list[av.Packet[Stream]]:
        """Encode a masked frame at this output timestamp."""
        frame.pts, frame.time_base = pts, OUTPUT_TIME_BASE
        self._regions.push(frame)
        marked = cast(av.VideoFrame, self._regions.pull())
        marked.pict_type = PictureType.I if keyframe else PictureType.NONE
        return self._codec.encode(marked)


class MaskPipeline:
    """Decode, paint and encode one camera's video for a set of readers."""

    def __init__(
        self,
        source: Callable[[], str],
        masks: Sequence[Mask],
        sink: PacketSink,
        *,
        pyav_options: Mapping[str, str] | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        """Read from the URL `source()` returns (asked again at every reconnect)."""
        self._source = source
        self._masks = tuple(masks)
        self._sink = sink
        self._pyav_options = dict(pyav_options or {})
        self.stats = stats or PipelineStats()
        self._timeline = Timeline()
        self.masker: FrameMasker | None = None
        self._encoder: MaskEncoder | None = None
        # The newest masked frame (the snapshot); its pixels are never written
        # after it is set.
        self.latest: av.VideoFrame | None = None

    def run(self, stop: threading.Event) -> None:
        """Serve until stop is set; raise MaskFailedError if masking fails."""
        delays = iter(RETRY_DELAYS_S)
        delay = 0.0
        while not stop.wait(delay):
            try:
                if self._read(stop):
                    delays = iter(RETRY_DELAYS_S)
            except SourceError:
                pass
            if not stop.is_set():
                self.stats.reconnects += 1
                delay = next(delays, RETRY_DELAYS_S[-1])

    def _read(self, stop: threading.Event) -> bool:
        """Mask one connection's video until it ends; True if it gave a frame."""
        with open_source(self._source(), self._pyav_options) as container:
            self._timeline.reconnected()
            produced = False
            for frame, read_at in _decoded(container, _video(container), self.stats):
                if stop.is_set():
                    break
                self._mask(frame, read_at)
                produced = True
            return produced

    def _mask(self, frame: av.VideoFrame, read_at: float) -> None:
        placed = self._timeline.place(
            time.monotonic() if frame.time is None else frame.time
        )
        if placed is None:
            return
        pts, keyframe = placed
        try:
            self._encode(frame, read_at, pts, keyframe)
        except Exception as err:
            raise MaskFailedError(type(err).__name__) from err

    def _encode(
        self, frame: av.VideoFrame, read_at: float, pts: int, keyframe: bool
    ) -> None:
        stats = self.stats
        began = time.perf_counter()
        if self.masker is None:
            # The first frame sets the output size for the whole run: readers
            # keep one continuous stream, even if the camera's size changes.
            self.masker = FrameMasker(
                self._masks, *output_size(frame.width, frame.height)
            )
        masked = self.masker.apply(frame)
        self.latest = masked
        painted = time.perf_counter()
        stats.paint_s += painted - began
        if self._encoder is None:
            self._encoder = MaskEncoder(self.masker)
        wanted = self._sink.keyframe_wanted()
        packets = self._encoder.encode(masked, pts, keyframe or wanted)
        stats.encode_s += time.perf_counter() - painted
        stats.frames_encoded += 1
        for packet in packets:
            stats.bytes_encoded += packet.size
            self._sink.send(packet, read_at)


def grab_masked_frame(
    url: str,
    masks: Sequence[Mask],
    pyav_options: Mapping[str, str] | None = None,
    timeout_s: float = OPEN_TIMEOUT_S,
) -> av.VideoFrame:
    """Return the camera's next picture, masked as the stream is (blocking).

    SourceError if the camera gives no picture within timeout_s;
    MaskFailedError if it cannot be masked.
    """
    deadline = time.monotonic() + timeout_s
    with open_source(url, pyav_options or {}) as container:
        video = _video(container)
        for frame, _ in _decoded(container, video, PipelineStats(), deadline):
            try:
                return FrameMasker(
                    masks, *output_size(frame.width, frame.height)
                ).apply(frame)
            except Exception as err:
                raise MaskFailedError(type(err).__name__) from err
    raise SourceError("no picture")
