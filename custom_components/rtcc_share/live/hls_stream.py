"""The HLS share's `Stream`, tuned for live viewing.

A share's `Stream` has HLS settings of its own (a segment at every keyframe,
short parts) and its own worker loop (`hls_worker`: the first keyframe
awaited, a dropped camera reconnected within a second, segments numbered
without gaps); Home Assistant's `stream:` settings and the camera's own
stream are left as they are. Its HLS outputs can be held to video only.
"""

from collections.abc import Callable, Mapping
import logging
import time
from typing import Final, cast, override

from homeassistant.components.camera.prefs import DynamicStreamSettings
from homeassistant.components.stream import (
    CONF_EXTRA_PART_WAIT_TIME,
    Stream,
    create_stream,
)
from homeassistant.components.stream.const import (
    ATTR_STREAMS,
    SEGMENT_DURATION_ADJUSTER,
)
from homeassistant.components.stream.core import Segment, StreamOutput, StreamSettings
from homeassistant.components.stream.exceptions import StreamWorkerError
from homeassistant.components.stream.hls import HlsStreamOutput
from homeassistant.core import HomeAssistant, callback

from .hls_worker import Backoff, ShareStreamState, run_connection
from .prebuffer import Burst

_LOGGER = logging.getLogger(__name__)

STREAM_DOMAIN: Final = "stream"

# The worker opens the source without estimating its frame rate, which reads
# about 20 frames first (1.3 s at 15 fps, before anything is muxed); it
# still waits for the codec parameters. Nothing downstream uses the rate.
FAST_OPEN: Final = {"fpsprobesize": "0"}
# HA cuts a segment at the first keyframe past the minimum duration, so this
# gives a segment per keyframe, at most one a second: the first picture is
# playable one keyframe interval after the source opens.
SEGMENT_MIN_S: Final = 1.0
# HA's worker cuts a part once 0.9 x this has passed, and reports no part as
# longer than this. At 0.55 s a 1 s keyframe interval splits into two even
# parts at 10, 12, 15, 20, 25 and 30 fps, none longer than the target; at
# 0.5 s most of those rates leave a one-frame third part, a request of its own.
PART_TARGET_S: Final = 0.55


def share_stream_settings(options: Mapping[str, str | bool | float]) -> StreamSettings:
    """Return a share's LL-HLS settings, the rest derived as HA derives its own."""
    return StreamSettings(
        ll_hls=True,
        min_segment_duration=SEGMENT_MIN_S - SEGMENT_DURATION_ADJUSTER,
        part_target_duration=PART_TARGET_S,
        hls_advance_part_limit=max(int(3 / PART_TARGET_S), 3),
        hls_part_timeout=2 * PART_TARGET_S
        + float(options.get(CONF_EXTRA_PART_WAIT_TIME, 0)),
    )


def create_live_stream(
    hass: HomeAssistant,
    source: str,
    options: Mapping[str, str | bool | float],
    dynamic_settings: DynamicStreamSettings,
    label: str,
) -> LiveHlsStream:
    """Return a registered Stream with the share's own settings, not started."""
    # HA's create_stream validates the camera's options and turns them into
    # PyAV options; the share's Stream takes its place with its own settings.
    template = create_stream(
        hass,
        source,
        options=options,
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    stream = LiveHlsStream(
        hass,
        source,
        # The camera's own options win.
        pyav_options={**FAST_OPEN, **template.pyav_options},
        stream_settings=share_stream_settings(options),
        dynamic_stream_settings=dynamic_settings,
        stream_label=label,
    )
    streams: list[Stream] = hass.data[STREAM_DOMAIN][ATTR_STREAMS]
    streams[streams.index(template)] = stream
    return stream


def _boxes(data: bytes, kind: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Return (start, end) of each box of this kind directly in data[start:end]."""
    found = []
    while start + 8 <= end:
        size = int.from_bytes(data[start : start + 4]) or end - start
        if size < 8:
            break
        if data[start + 4 : start + 8] == kind:
            found.append((start, min(start + size, end)))
        start += size
    return found


def has_non_video_track(init: bytes) -> bool:
    """Return True if an MP4 init section declares any track but video."""
    for moov in _boxes(init, b"moov", 0, len(init)):
        for trak in _boxes(init, b"trak", moov[0] + 8, moov[1]):
            handlers = [
                init[hdlr[0] + 16 : hdlr[0] + 20]
                for mdia in _boxes(init, b"mdia", trak[0] + 8, trak[1])
                for hdlr in _boxes(init, b"hdlr", mdia[0] + 8, mdia[1])
            ]
            # A track whose kind cannot be read counts as not video.
            if handlers != [b"vide"]:
                return True
    return False


class _VideoOnlyHlsOutput(HlsStreamOutput):
    """HA's HLS output that never keeps a segment carrying anything but video.

    HA's worker reopens the source on every reconnect and remuxes whatever
    audio it finds then; every segment's init section says what it carries,
    and it is known before any of the segment's data can be served.
    """

    on_non_video: Callable[[], None]

    @callback
    @override
    def _async_put(self, segment: Segment) -> None:
        if has_non_video_track(segment.init):
            # Dropped: no viewer can ask for it, nor for its parts.
            self.on_non_video()
            return
        super()._async_put(segment)


class LiveHlsStream(Stream):
    """A share's Stream: its own worker loop; its HLS outputs can be video only."""

    # Set when the share carries no audio.
    on_non_video: Callable[[], None] | None = None
    # Set when the share reads the prebuffer (instant start): the buffered
    # video a connection began with, to cut and stamp its first segment.
    burst: Callable[[], Burst | None] | None = None

    @override
    def _run_worker(self) -> None:
        """Connect to the camera again and again until the stream stops.

        HA's loop waits 10 s before the first reconnect, 20 s before the
        second, and so on: a doorbell that drops for 5 s comes back 10 s
        later. This one reconnects within half a second (`Backoff`).
        """
        state = ShareStreamState(self.hass, self.outputs, self._diagnostics)
        backoff = Backoff()
        reported = False
        while not self._thread_quit.is_set():
            self._set_state(True)
            self._diagnostics.increment("start_worker")
            started = time.monotonic()
            try:
                run_connection(
                    self.source,
                    self.pyav_options,
                    self._stream_settings,
                    state,
                    self._keyframe_converter,
                    self._thread_quit,
                    self.burst,
                )
            except StreamWorkerError as err:
                self._diagnostics.increment("worker_error")
                if not self._thread_quit.is_set():  # not stopped meanwhile
                    # A working connection's end, or the first failed
                    # attempt; the attempts after it only at debug level.
                    # The error's text names no URL.
                    _LOGGER.log(
                        logging.WARNING
                        if state.connection_made_segment or not reported
                        else logging.DEBUG,
                        "Live share %s: camera dropped (%s); reconnecting",
                        self._stream_label,
                        err,
                    )
                    reported = True
            state.discontinuity()
            if self._thread_quit.is_set():
                break
            self._set_state(False)
            delay = backoff.next_delay(time.monotonic() - started)
            self._diagnostics.set_value("retry_timeout", delay)
            self._thread_quit.wait(delay)
        self.hass.create_task(self._async_worker_finished())

    async def _async_worker_finished(self) -> None:
        """As HA's loop ends: available again, outputs removed."""
        if not self.available:
            self._async_update_state(True)
        for provider in self.outputs().values():
            await self.remove_provider(provider)

    @override
    def add_provider(self, fmt: str, timeout: int | None = None) -> StreamOutput:
        provider = super().add_provider(fmt, timeout)
        # Also outputs made again after HA dropped an idle one.
        if self.on_non_video is not None and type(provider) is HlsStreamOutput:
            # The output HA made, with the gate (same state, one method more).
            provider.__class__ = _VideoOnlyHlsOutput
            cast(_VideoOnlyHlsOutput, provider).on_non_video = self.on_non_video
        return provider
