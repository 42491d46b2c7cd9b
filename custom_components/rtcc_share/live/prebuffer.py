"""The camera's newest keyframe interval, kept inside the home for an instant start.

While it runs (see `instant_start`: consent and the resident's option on), a
`Prebuffer` keeps one connection to the camera open in its own thread, as
Home Assistant's "preload stream" does for dashboards, and keeps the
packets from the camera's newest keyframe on: one keyframe interval (GOP),
never decoded. It serves them over loopback (`loopback`, a secret URL, as
NUT) to readers inside the home, each under a name (the share's stream worker,
the privacy-mask pipeline):

- a name's first connection gets the buffered GOP at once (its burst), then
  the live packets; `burst(name)` tells the reader's own process where the
  burst ends (so the share can cut its first segment there) and when its
  keyframe came (so the share stamps it with its true time);
- a name never gets the same video twice: a later connection gets a burst
  only of a GOP it has not had, else it starts at the next keyframe;
- every connection's timestamps start at `BASE_TICKS` (90 kHz) at its first
  keyframe, so they stay small however long the prebuffer runs.

Bounds: a GOP longer than `MAX_GOP_S` or bigger than `MAX_GOP_BYTES` (a
camera that sends no keyframes) is dropped until the next keyframe, so no
reader ever gets more than one keyframe interval, and at most that, from
before it connected. Audio: for RTSP only the video track is asked for
unless audio is shared; otherwise the camera's audio is never read into the
buffer nor sent. The camera dropping is the camera's problem: readers'
connections end, the prebuffer reconnects with a bounded back-off.
`async_close` stops it at once: readers' connections end, the buffer is
dropped, new connections are refused.

Blocking work runs in its own thread and the executor; no Home Assistant
import.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from http import HTTPStatus
import logging
import re
import threading
import time
from typing import Final, NamedTuple

from aiohttp import web
import av
from av.container import InputContainer, OutputContainer
from av.rational import AVRational
from av.stream import Stream

from .loopback import LoopbackReader, LoopbackServer, async_send, from_loop

_LOGGER = logging.getLogger(__name__)

# Readers' timestamps: 90 kHz, the first keyframe at one second (never zero,
# never negative, whatever comes with it).
TIME_BASE: Final = Fraction(1, 90_000)
BASE_TICKS: Final = 90_000
# What readers get: NUT. Its packets carry their sizes and keyframe flags,
# so a reader's demuxer hands each on as soon as it has it (MPEG-TS needs a
# parser, which holds a frame until the next one begins); its header carries
# the codec parameters of the video, so a reader opened with READER_OPTIONS
# starts at once. Not those of AAC audio (its profile, which Home Assistant's
# stream checks, is known only once a frame is decoded): with audio, a
# reader probes as usual, which decodes about seven frames of video first.
CONTAINER: Final = ("nut", "application/octet-stream")
MUX_OPTIONS: Final = {"flush_packets": "1"}
READER_OPTIONS: Final = {"probesize": "32", "fpsprobesize": "0"}
READER_OPTIONS_AUDIO: Final = {"fpsprobesize": "0"}
# Bounds of one buffered keyframe interval.
MAX_GOP_S: Final = 10.0
MAX_GOP_BYTES: Final = 16 * 2**20
# The camera's video codecs a share can take (Home Assistant's HLS), and its
# audio codecs (those Home Assistant's stream remuxes).
VIDEO_CODECS: Final = frozenset({"h264", "hevc"})
AUDIO_CODECS: Final = frozenset({"aac", "mp3"})
OPEN_TIMEOUT_S: Final = 10.0
READ_TIMEOUT_S: Final = 5.0
SOURCE_TIMEOUT_S: Final = 10.0
# Waits between attempts to reach the camera; the last one repeats.
RETRY_DELAYS_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0)
# A connection that lasted this long starts the back-off again.
HEALTHY_S: Final = 30.0
# A jump in the camera's timestamps bigger than this ends the connection.
MAX_TIMESTAMP_GAP_S: Final = 10.0
JOIN_TIMEOUT_S: Final = OPEN_TIMEOUT_S + READ_TIMEOUT_S
# Names a reader may use (in its URL), and how many are remembered.
NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAMES_KEPT: Final = 64
PATH: Final = "/prebuffer/{name}.nut"
# The camera opened without estimating its frame rate, which reads about 20
# frames first; only the video track of an RTSP camera unless audio is read.
FAST_OPEN: Final = {"fpsprobesize": "0"}
RTSP_VIDEO_ONLY: Final = {"allowed_media_types": "video"}


class Burst(NamedTuple):
    """The buffered video a reader's connection began with."""

    # The DTS of its last video packet, in the reader's timestamps (90 kHz).
    end: int
    # When the home received its keyframe (UTC).
    started_at: datetime


class CameraSource(NamedTuple):
    """Where the camera's stream is, and the PyAV options to open it with."""

    url: str
    pyav_options: Mapping[str, str]


type CameraSourceProvider = Callable[[], Awaitable[CameraSource | None]]


class SourceError(Exception):
    """The camera could not be read (not reachable, dropped, unusable)."""


@dataclass(slots=True)
class _Gop:
    """One keyframe interval: the keyframe, then every packet after it."""

    packets: list[tuple[av.Packet[Stream], int, float]]
    start: int
    read_at: float
    size: int = 0
    last_video: int = 0


@dataclass(slots=True)
class _Name:
    """What one name's connections have had."""

    connection: int = -1
    # The newest video timestamp sent, in this camera connection's ticks.
    last_sent: int | None = None
    # The burst of the newest connection, if it had one.
    burst: Burst | None = None


@dataclass(slots=True)
class _Reader:
    """One reader's connection: its muxer and what its name has had."""

    out: LoopbackReader
    name: _Name


@dataclass(slots=True)
class PrebufferStats:
    """What the prebuffer did (for tests and diagnostics without secrets)."""

    camera_connections: int = 0
    bursts: int = 0
    dropped_gops: int = 0


@dataclass(slots=True)
class _Connection:
    """The camera's streams for one connection, as readers' muxers take them."""

    number: int
    video: Stream
    audio: Stream | None

    def output_streams(self, container: OutputContainer) -> list[Stream]:
        """Add the reader's streams: video, then audio if read (90 kHz both)."""
        streams = [
            container.add_stream_from_template(stream)
            for stream in (self.video, self.audio)
            if stream is not None
        ]
        for stream in streams:
            stream.time_base = TIME_BASE
        return streams


def _ticks(value: int | None, time_base: AVRational) -> int | None:
    """Return a timestamp in 90 kHz ticks, rounded; None without one."""
    if value is None or not time_base:
        return None
    den = time_base.den * TIME_BASE.numerator
    return (2 * value * time_base.num * TIME_BASE.denominator + den) // (2 * den)


class Prebuffer:
    """One camera's newest GOP and its live packets, for readers in the home."""

    def __init__(self, source: CameraSourceProvider, *, audio: bool) -> None:
        """Read the camera `source()` names (asked at every connection).

        audio: read and pass on the camera's audio (only if it is shared).
        """
        self._source = source
        self.audio = audio
        self._server = LoopbackServer({PATH: self._handle})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: _Connection | None = None
        self._gop: _Gop | None = None
        self._readers: list[_Reader] = []
        self._names: OrderedDict[str, _Name] = OrderedDict()
        self.stats = PrebufferStats()

    # Event loop.

    @property
    def running(self) -> bool:
        """Return True between async_open and async_close."""
        return self._thread is not None and not self._stop.is_set()

    @property
    def reader_options(self) -> dict[str, str]:
        """Return the PyAV options a reader opens the prebuffer with."""
        return dict(READER_OPTIONS_AUDIO if self.audio else READER_OPTIONS)

    @property
    def connected(self) -> bool:
        """Return True while the camera's stream is open and usable."""
        return self.running and self._connection is not None

    def url(self, name: str) -> str:
        """Return the URL a reader of this name opens (a secret: never log it)."""
        if not NAME.fullmatch(name):
            raise ValueError("invalid reader name")
        return self._server.url(PATH.format(name=name))

    def burst(self, name: str) -> Burst | None:
        """Return the burst the name's newest connection began with, if any.

        Safe to call from any thread.
        """
        with self._lock:
            state = self._names.get(name)
            return None if state is None else state.burst

    def lookback(self) -> float | None:
        """Return how old the buffered keyframe is, in seconds; None without one.

        A reader connecting now gets at most this much from before now.
        """
        with self._lock:
            gop = self._gop
            return None if gop is None else time.monotonic() - gop.read_at

    def buffered(self) -> tuple[float, int]:
        """Return the buffered interval's length (s) and size (bytes)."""
        with self._lock:
            if (gop := self._gop) is None:
                return 0.0, 0
            return float((gop.last_video - gop.start) * TIME_BASE), gop.size

    async def async_open(self) -> None:
        """Listen on loopback and start reading the camera (once)."""
        if self._loop is not None:
            raise RuntimeError("opened twice")
        self._loop = loop = asyncio.get_running_loop()
        await self._server.async_open()
        if self._stop.is_set():  # halted meanwhile
            await self._server.async_close()
            return
        self._thread = threading.Thread(
            target=self._work, args=(loop,), name="rtcc_share prebuffer", daemon=True
        )
        self._thread.start()

    def halt(self) -> None:
        """Stop at once (event loop): no new reader, every reader's connection ends.

        The camera connection closes at the thread's next packet, or when
        its read times out; async_close waits for that.
        """
        self._stop.set()
        self._gop = None
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.out.end()

    async def async_close(self) -> None:
        """Stop: halt, stop listening, wait for the thread (bounded)."""
        self.halt()
        await self._server.async_close()
        if (thread := self._thread) is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, thread.join, JOIN_TIMEOUT_S
            )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not NAME.fullmatch(name):
            return web.Response(status=HTTPStatus.NOT_FOUND)
        if self._stop.is_set() or (connection := self._connection) is None:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        loop = asyncio.get_running_loop()
        reader = LoopbackReader(
            loop, connection.output_streams, container=CONTAINER, options=MUX_OPTIONS
        )
        # Muxing the burst is the executor's work, not the event loop's.
        added = await loop.run_in_executor(None, self._add, name, reader, connection)
        if added is None:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        try:
            return await async_send(request, reader)
        finally:
            with self._lock:
                if added in self._readers:
                    self._readers.remove(added)
                reader.close_muxer()

    # Executor and reading thread.

    def _add(
        self, name: str, out: LoopbackReader, connection: _Connection
    ) -> _Reader | None:
        """Add a reader; send it the buffered GOP if its name has not had it."""
        with self._lock:
            if self._stop.is_set() or connection is not self._connection:
                return None
            state = self._names.pop(name, None) or _Name()
            self._names[name] = state
            while len(self._names) > NAMES_KEPT:
                self._names.popitem(last=False)
            if state.connection != connection.number:
                state.connection, state.last_sent = connection.number, None
            state.burst = None
            gop = self._gop
            reader = _Reader(out, state)
            if gop is not None and (
                state.last_sent is None or gop.start > state.last_sent
            ):
                for packet, index, read_at in gop.packets:
                    self._mux(reader, packet, index, read_at)
                age = timedelta(seconds=time.monotonic() - gop.read_at)
                state.burst = Burst(gop.last_video + out.shift, datetime.now(UTC) - age)
                self.stats.bursts += 1
            self._readers.append(reader)
            return reader

    def _mux(
        self, reader: _Reader, packet: av.Packet[Stream], index: int, read_at: float
    ) -> None:
        out = reader.out
        if not out.started:
            if index or not packet.is_keyframe:
                return
            out.shift = BASE_TICKS - (packet.dts or 0)
        try:
            out.mux(packet, read_at, index)
        except Exception:  # noqa: BLE001 - one reader's muxer, not the camera
            # This reader's muxer refused the packet: it starts afresh.
            self._end(reader)
            return
        if index == 0:
            reader.name.last_sent = packet.dts

    def _end(self, reader: _Reader) -> None:
        """End one reader's connection (under the lock)."""
        if reader in self._readers:
            self._readers.remove(reader)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(reader.out.end)

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        delays = iter(RETRY_DELAYS_S)
        delay = 0.0
        while not self._stop.wait(delay):
            began = time.monotonic()
            try:
                self._read(loop)
            except SourceError:
                pass
            except Exception as err:  # noqa: BLE001 - the camera is retried
                # The type only: PyAV's messages can carry the camera's URL.
                _LOGGER.warning("Instant start's camera reader: %s", type(err).__name__)
            finally:
                with self._lock:
                    self._connection = self._gop = None
                    for reader in list(self._readers):
                        self._end(reader)
            if time.monotonic() - began > HEALTHY_S:
                delays = iter(RETRY_DELAYS_S)
            delay = next(delays, RETRY_DELAYS_S[-1])

    def _camera(self, loop: asyncio.AbstractEventLoop) -> CameraSource:
        try:
            camera = from_loop(loop, self._source, SOURCE_TIMEOUT_S)
        except Exception as err:
            raise SourceError(type(err).__name__) from err
        if camera is None:
            raise SourceError("no stream source")
        return camera

    def _open(self, loop: asyncio.AbstractEventLoop) -> InputContainer:
        url, pyav_options = self._camera(loop)
        options = {**FAST_OPEN, **pyav_options}
        if "stimeout" in options:  # renamed in FFmpeg 5, as HA's worker does
            options["timeout"] = options.pop("stimeout")
        if url.startswith(("rtsp://", "rtsps://")) and not self.audio:
            options.update(RTSP_VIDEO_ONLY)
        try:
            return av.open(
                url, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)
            )
        except (av.FFmpegError, OSError) as err:
            # Never the message: PyAV's carries the URL.
            raise SourceError(type(err).__name__) from err

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        """Buffer and pass on one camera connection's packets until it ends."""
        with self._open(loop) as container:
            video = next(iter(container.streams.video), None)
            if video is None or video.codec_context.name not in VIDEO_CODECS:
                raise SourceError("no usable video")
            audio = next(
                (
                    stream
                    for stream in container.streams.audio
                    if self.audio and stream.codec_context.name in AUDIO_CODECS
                ),
                None,
            )
            self.stats.camera_connections += 1
            with self._lock:
                self._connection = _Connection(
                    self.stats.camera_connections, video, audio
                )
            for packet, index in self._packets(container, video, audio):
                self._keep(packet, index, time.monotonic())

    def _packets(
        self, container: InputContainer, video: Stream, audio: Stream | None
    ) -> Iterator[tuple[av.Packet[Stream], int]]:
        """Yield the packets, in 90 kHz ticks, from the first keyframe on."""
        streams = [video] if audio is None else [video, audio]
        last: list[int | None] = [None, None]
        demuxed = container.demux(streams)
        while not self._stop.is_set():
            try:
                packet = next(demuxed)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as err:
                raise SourceError(type(err).__name__) from err
            index = 0 if packet.stream is video else 1
            pts = _ticks(packet.pts, packet.time_base)
            dts = _ticks(packet.dts, packet.time_base)
            dts = pts if dts is None else dts
            if dts is None or packet.size == 0:
                continue
            previous = last[index]
            if previous is not None:
                if abs(dts - previous) > MAX_TIMESTAMP_GAP_S / TIME_BASE:
                    raise SourceError("timestamp jump")
                if dts <= previous:
                    continue
            elif (index == 0 and not packet.is_keyframe) or (
                index == 1 and last[0] is None
            ):
                continue
            last[index] = dts
            packet.pts = dts if pts is None else pts
            packet.dts, packet.time_base = dts, TIME_BASE
            yield packet, index

    def _keep(self, packet: av.Packet[Stream], index: int, read_at: float) -> None:
        """Buffer the packet and pass it on to every reader."""
        dts = packet.dts or 0
        with self._lock:
            if self._stop.is_set():
                return
            if index == 0 and packet.is_keyframe:
                self._gop = _Gop([], dts, read_at)
            if (gop := self._gop) is not None:
                gop.packets.append((packet, index, read_at))
                gop.size += packet.size
                if index == 0:
                    gop.last_video = dts
                if (
                    gop.size > MAX_GOP_BYTES
                    or (dts - gop.start) * TIME_BASE > MAX_GOP_S
                ):
                    # Longer than any camera's keyframe interval: none kept.
                    self._gop = None
                    self.stats.dropped_gops += 1
            for reader in list(self._readers):
                self._mux(reader, packet, index, read_at)
