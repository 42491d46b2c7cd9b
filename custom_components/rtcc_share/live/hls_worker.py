"""The HLS share's stream worker: one connection to the camera, for a live camera.

Home Assistant's worker (`stream.worker.stream_worker`) gives up on a camera
joined mid-GOP whose frames before the first keyframe carry no timestamps
(as an RTSP camera's do), never notices a camera that stops sending while
its packets still flow, and numbers segments so that a reconnect can leave
a gap. The share's worker, run by `hls_stream.LiveHlsStream` for every
connection, is Home Assistant's with these differences:

- it drops everything before the first keyframe, however long the camera
  takes to send one (up to `KEYFRAME_WAIT_S`);
- a camera that sends nothing, or no usable video, for `STALL_S` ends the
  connection, so the share reconnects within seconds;
- the first segment of a connection ends at the camera's next keyframe or
  after 1.5 s, whichever comes first, so a player that reads whole segments
  (ffmpeg, VLC) has a picture 1.5 s after the camera's first keyframe even
  if the camera sends one every 4 s; the segment after it ends at the next
  keyframe, so the ones after that start on keyframes again;
- segments and discontinuities are numbered as RFC 8216 requires: the next
  connection's first segment follows the last one made, and only a
  connection that made a segment counts as a discontinuity.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
import threading
import time
from typing import Final, cast, override

import av
import av.audio
from av.container import InputContainer
import av.stream
from homeassistant.components.stream.const import AUDIO_CODECS, SOURCE_TIMEOUT
from homeassistant.components.stream.core import (
    STREAM_SETTINGS_NON_LL_HLS,
    KeyFrameConverter,
    StreamOutput,
    StreamSettings,
)
from homeassistant.components.stream.diagnostics import Diagnostics
from homeassistant.components.stream.exceptions import (
    StreamEndedError,
    StreamWorkerError,
)
from homeassistant.components.stream.hls import HlsStreamOutput
from homeassistant.components.stream.worker import (
    PeekIterator,
    StreamMuxer,
    StreamState,
    TimestampValidator,
    closing_stream_worker,
    get_audio_bitstream_filter,
    repair_initial_missing_dts,
)
from homeassistant.core import HomeAssistant

from .prebuffer import Burst

# How long to open the camera (connect, and read until its codec is known).
OPEN_TIMEOUT_S: Final = 10.0
# A live camera sends several packets a second: this long without one, or
# without a usable video packet, and the connection counts as dropped.
STALL_S: Final = 2.0
# How long to wait for the first keyframe of a connection: cameras send one
# every 1-4 s, some every 10 s.
KEYFRAME_WAIT_S: Final = float(SOURCE_TIMEOUT)
# The first segment of a connection ends at the camera's next keyframe or
# this long after it started, whichever comes first. ffmpeg (ffprobe, VLC)
# reads 20 frames to estimate the frame rate before showing anything: at
# 15 fps and up, 1.5 s is enough for it to start from the first segment.
FIRST_SEGMENT_S: Final = 1.5
# Reconnecting: the first retry after a drop this soon, then at most this
# far apart (a camera that is back is reconnected within half a second).
FIRST_RETRY_S: Final = 0.25
MAX_RETRY_S: Final = 0.5
# A connection that lasted this long was a working one: the next drop starts
# the back-off again from the first retry.
HEALTHY_S: Final = 10.0


class ShareStreamState(StreamState):
    """HA's stream state, numbering segments and discontinuities without gaps.

    HA's muxer takes the next sequence number when a segment starts and
    makes the segment only when its first bytes are written: a connection
    that ends in between leaves a number no segment has, and HA counts a
    discontinuity for every connection, even one that made no segment.
    Players then find a playlist whose media sequence numbers do not match
    its segments (hls.js stops with a fatal error).
    """

    def __init__(
        self,
        hass: HomeAssistant,
        outputs_callback: Callable[[], Mapping[str, StreamOutput]],
        diagnostics: Diagnostics,
    ) -> None:
        """Start before the first segment (numbered 0), discontinuity 0."""
        super().__init__(hass, outputs_callback, diagnostics)
        self._current = -1
        self._made = -1
        self._discontinuities = 0
        self._connection_made_segment = False

    @property
    @override
    def sequence(self) -> int:
        """Return the sequence number of the segment being made."""
        return self._current

    @override
    def next_sequence(self) -> int:
        """Take the next sequence number (a segment is starting)."""
        self._current += 1
        return self._current

    @property
    @override
    def stream_id(self) -> int:
        """Return the discontinuity sequence number of this connection's segments."""
        return self._discontinuities

    @property
    def connection_made_segment(self) -> bool:
        """Return True if the current connection has made a segment."""
        return self._connection_made_segment

    def segment_made(self) -> None:
        """Record that the segment being made now exists (in the worker thread)."""
        self._made = self._current
        self._connection_made_segment = True

    @override
    def discontinuity(self) -> None:
        """End a connection: the next one continues the numbering."""
        self._current = self._made
        if self._connection_made_segment:
            self._discontinuities += 1
            self._connection_made_segment = False
        for output in self.outputs:
            if isinstance(output, HlsStreamOutput):
                # Closes the segment the connection left unfinished.
                output.discontinuity()


class _ShareMuxer(StreamMuxer):
    """HA's muxer, telling the state when a segment exists; short first segment.

    HA cuts a segment at the first keyframe past the minimum duration. The
    first segment of a connection also ends FIRST_SEGMENT_S in without one,
    and, if the connection began with a burst of buffered video (instant
    start), where that ends, so the buffered video is a complete segment at
    once, stamped with the time its keyframe came (not the connection's), and
    then, if the burst was shorter, FIRST_SEGMENT_S after that keyframe even
    if another came between; a segment left by such a cut, which starts
    without a keyframe, ends at the next keyframe whatever its length.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        video: av.VideoStream,
        audio: av.audio.AudioStream | None,
        audio_bsf: str | None,
        state: ShareStreamState,
        settings: StreamSettings,
        burst: Burst | None = None,
    ) -> None:
        super().__init__(hass, video, audio, audio_bsf, state, settings)
        self._video = video
        self._state = state
        self._segments = 0
        self._start_dts = 0
        # Where the first keyframe interval is cut without a keyframe: the
        # first video packet at or past each of these DTS starts a segment.
        self._cuts: list[int] = [] if burst is None else [burst.end + 1]
        self._keyframes = 0
        # After a burst, the FIRST_SEGMENT_S cut holds past a keyframe too:
        # players that read whole segments need about 20 frames to start.
        self._burst = burst is not None
        if burst is not None:
            self._start_time = burst.started_at
        # Whether the segment being made started with a keyframe; None until
        # its first video packet.
        self._on_keyframe: bool | None = None

    @override
    def reset(self, video_dts: int) -> None:
        self._segments += 1
        if self._segments == 1:
            cut = video_dts + round(FIRST_SEGMENT_S / self._video.time_base)
            # A burst longer than that is one segment: players that start a
            # little behind live (hls.js) then start in it, at its keyframe,
            # not in a segment that has none.
            if not self._cuts or cut > self._cuts[0]:
                self._cuts.append(cut)
        self._start_dts = video_dts
        self._on_keyframe = None
        super().reset(video_dts)

    @override
    def create_segment(self) -> None:
        super().create_segment()
        self._state.segment_made()

    @override
    def mux_packet(self, packet: av.Packet[av.stream.Stream]) -> None:
        dts = packet.dts
        if packet.stream != self._video or dts is None:
            super().mux_packet(packet)
            return
        self._keyframes += packet.is_keyframe
        if self._on_keyframe is not None and (
            (packet.is_keyframe and not self._on_keyframe)
            or (
                (self._keyframes == 1 or self._burst)
                and not packet.is_keyframe
                and any(self._start_dts < cut <= dts for cut in self._cuts)
            )
        ):
            self.flush(packet, last_part=True)
        # HA's muxer cuts at keyframes; the packet may start a segment.
        super().mux_packet(packet)
        if self._on_keyframe is None:
            self._on_keyframe = packet.is_keyframe


@dataclass(slots=True)
class Backoff:
    """The wait before each reconnect: prompt after a drop, bounded after."""

    failures: int = 0

    def next_delay(self, connection_s: float) -> float:
        """Return the wait after a connection that lasted connection_s."""
        if connection_s >= HEALTHY_S:
            self.failures = 0
        delay = min(FIRST_RETRY_S * 2.0**self.failures, MAX_RETRY_S)
        self.failures += 1
        return delay


class _Watchdog:
    """Raises once the camera has sent no usable video for STALL_S."""

    def __init__(self) -> None:
        self._fed: float | None = None

    def fed(self) -> None:
        self._fed = time.monotonic()

    def check(self) -> None:
        if self._fed is not None and time.monotonic() - self._fed > STALL_S:
            raise StreamWorkerError(f"No usable video for {STALL_S:.0f} s")


def _open(source: str, pyav_options: dict[str, str]) -> InputContainer:
    try:
        return av.open(source, options=pyav_options, timeout=(OPEN_TIMEOUT_S, STALL_S))
    except av.FFmpegError as err:
        # Only the reason: the error's file name is the camera's URL.
        raise StreamWorkerError(f"Error opening stream ({err.strerror})") from err


def _from_first_keyframe(
    packets: Iterator[av.Packet[av.stream.Stream]],
    video: av.VideoStream,
    quit_event: threading.Event,
) -> Iterator[av.Packet[av.stream.Stream]]:
    """Drop every packet before the first video keyframe."""
    deadline = time.monotonic() + KEYFRAME_WAIT_S
    for packet in packets:
        if packet.stream == video and packet.is_keyframe:
            yield packet
            break
        if quit_event.is_set():
            return
        if time.monotonic() > deadline:
            raise StreamWorkerError(f"No keyframe in {KEYFRAME_WAIT_S:.0f} s")
    yield from packets


def _video_and_audio(
    container: InputContainer,
) -> tuple[av.VideoStream, av.audio.AudioStream | None]:
    """Return the streams HA's worker remuxes: the video, and audio it can."""
    if not container.streams.video:
        raise StreamWorkerError("Stream has no video")
    audio = container.streams.audio[0] if container.streams.audio else None
    if audio is not None and (audio.name not in AUDIO_CODECS or audio.profile is None):
        audio = None
    return container.streams.video[0], audio


def run_connection(
    source: str,
    pyav_options: dict[str, str],
    settings: StreamSettings,
    state: ShareStreamState,
    keyframe_converter: KeyFrameConverter,
    quit_event: threading.Event,
    burst: Callable[[], Burst | None] | None = None,
) -> None:
    """Remux one connection to the camera into the outputs until it ends.

    Raises StreamWorkerError (StreamEndedError when the camera closed the
    connection) unless quit_event ends it. burst, asked once the source is
    open: the buffered video it began with (instant start), if any.
    """
    options = dict(pyav_options)
    if "stimeout" in options:  # renamed in FFmpeg 5, as HA's worker does
        options["timeout"] = options.pop("stimeout")
    container = _open(source, options)
    try:
        video, audio = _video_and_audio(container)
    except StreamWorkerError:
        container.close()
        raise
    keyframe_converter.create_codec_context(codec_context=video.codec_context)
    if container.format.name == "hls":  # HA turns LL-HLS off for HLS sources
        for setting in fields(StreamSettings):
            value = getattr(STREAM_SETTINGS_NON_LL_HLS, setting.name)
            setattr(settings, setting.name, value)
    diagnostics = state.diagnostics
    diagnostics.set_value("container_format", container.format.name)
    diagnostics.set_value("video_codec", video.name)
    if audio is not None:
        diagnostics.set_value("audio_codec", audio.name)

    validator = TimestampValidator(
        int(1 / video.time_base), int(1 / audio.time_base) if audio else 1
    )
    watchdog = _Watchdog()

    def usable(packet: av.Packet[av.stream.Stream]) -> bool:
        valid = validator.is_valid(packet)
        if valid and packet.stream == video:
            watchdog.fed()
        else:
            watchdog.check()
        return valid

    unvalidated = PeekIterator(
        _from_first_keyframe(container.demux((video, audio)), video, quit_event)
    )
    packets = PeekIterator(filter(usable, unvalidated))
    try:
        # As HA's worker: timestamps for a first keyframe without them,
        # AAC's bitstream filter, and the first keyframe's timestamps from
        # the next video packet (RTSP's first packet has bad ones).
        repair_initial_missing_dts(unvalidated)
        audio_bsf = get_audio_bitstream_filter(packets.peek(), audio)
        first_keyframe = next(p for p in packets if p.is_keyframe and p.stream == video)
        next_video = next(p for p in packets.peek() if p.stream == video)
        # Validated packets have a DTS.
        start_dts = cast(int, next_video.dts) - (next_video.duration or 1)
        first_keyframe.dts = first_keyframe.pts = start_dts
    except StreamWorkerError:
        container.close()
        raise
    except StopIteration as err:
        container.close()
        raise StreamEndedError("Stream ended; no additional packets") from err
    except av.FFmpegError as err:
        container.close()
        raise StreamWorkerError(f"Error demuxing stream ({err.strerror})") from err

    muxer = _ShareMuxer(
        state.hass,
        video,
        audio,
        audio_bsf,
        state,
        settings,
        None if burst is None else burst(),
    )
    muxer.reset(start_dts)
    with closing_stream_worker(container, muxer):
        packet = first_keyframe
        while not quit_event.is_set():
            try:
                muxer.mux_packet(packet)
            except av.FFmpegError as err:
                raise StreamWorkerError(
                    f"Error muxing stream ({err.strerror})"
                ) from err
            if packet.is_keyframe and packet.stream == video:
                keyframe_converter.stash_keyframe_packet(packet)
            try:
                packet = next(packets)
            except StopIteration as err:
                raise StreamEndedError("Stream ended; no additional packets") from err
            except av.FFmpegError as err:
                raise StreamWorkerError(
                    f"Error demuxing stream ({err.strerror})"
                ) from err
