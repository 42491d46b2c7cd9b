"""One camera's masked picture for every local reader, as MPEG-TS over HTTP.

A `MaskedSource` serves its `url` on loopback (`loopback`: a stream source
like any camera's, with a fresh secret as its HTTP Basic credentials, never
logged).

- One pipeline (`mask_pipeline`) per source, in its own thread, started by
  the first reader (or `async_start`) and stopped `linger_s` after the last
  one leaves. Its packets fan out to every reader, each through its own
  MPEG-TS muxer that starts at a keyframe; a reader joining asks for an IDR,
  so it need not wait for the next scheduled one.
- Video only: the camera's audio is never read, so never carried.
- Fail closed: when masking fails, every reader's connection ends at once,
  without the packets still queued for it, and the failure listeners are
  told (a share then ends). A later reader starts a new pipeline, which
  again outputs only masked frames or nothing.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
import contextlib
from http import HTTPStatus
import logging
import threading
import time
from typing import Final

from aiohttp import web
import av
from av.container import OutputContainer
from av.stream import Stream

from .loopback import LoopbackReader, LoopbackServer, async_send, from_loop
from .mask_frames import jpeg
from .mask_pipeline import (
    MAX_FPS,
    OUTPUT_TIME_BASE,
    READ_TIMEOUT_S,
    MaskFailedError,
    MaskPipeline,
    PipelineStats,
    SourceError,
    grab_masked_frame,
)
from .masks import Mask

_LOGGER = logging.getLogger(__name__)

PATH: Final = "/masked.ts"
LINGER_S: Final = 5.0
START_TIMEOUT_S: Final = 15.0
SNAPSHOT_TIMEOUT_S: Final = 10.0
SOURCE_URL_TIMEOUT_S: Final = 10.0
JOIN_TIMEOUT_S: Final = READ_TIMEOUT_S + 5

type SourceProvider = Callable[[], Awaitable[str | None]]
type FailureListener = Callable[[], None]


class MaskUnavailableError(Exception):
    """No masked picture could be made (the camera, or the masking, failed)."""


def _masked_streams(container: OutputContainer) -> list[Stream]:
    """The one H.264 stream of a reader's muxer."""
    stream = container.add_mux_stream("h264", rate=MAX_FPS)
    stream.time_base = OUTPUT_TIME_BASE
    return [stream]


class _Run:
    """One pipeline thread and its readers (a `PacketSink`)."""

    def __init__(
        self,
        owner: MaskedSource,
        source: Callable[[], str],
        masks: Sequence[Mask],
        pyav_options: Mapping[str, str],
    ) -> None:
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._readers: list[LoopbackReader] = []
        self._keyframe = False
        self._sent = False
        self.first_packet: asyncio.Future[None] = self._loop.create_future()
        self.pipeline = MaskPipeline(
            source, masks, self, pyav_options=pyav_options, stats=owner.stats
        )
        self._thread = threading.Thread(
            target=self._work, name="rtcc_share privacy mask", daemon=True
        )
        self._thread.start()

    @property
    def readers(self) -> int:
        """Return the number of readers."""
        return len(self._readers)

    def add(self, reader: LoopbackReader) -> None:
        """Add a reader; the next frame is encoded as an IDR for it."""
        with self._lock:
            self._readers.append(reader)
            self._keyframe = True

    def remove(self, reader: LoopbackReader) -> None:
        """Remove a reader (its muxer is closed here, outside the pipeline)."""
        with self._lock:
            if reader in self._readers:
                self._readers.remove(reader)
            reader.close_muxer()

    def end_readers(self) -> None:
        """End every reader's connection now."""
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.end()

    def join(self, timeout: float) -> None:
        """Wait for the thread (blocking: executor only)."""
        self._thread.join(timeout)

    # PacketSink, from the pipeline thread.

    def keyframe_wanted(self) -> bool:
        """Return True once after a reader joined."""
        with self._lock:
            wanted, self._keyframe = self._keyframe, False
        return wanted

    def send(self, packet: av.Packet[Stream], read_at: float) -> None:
        """Mux the packet for every reader."""
        if not self._sent:
            self._sent = True
            self._loop.call_soon_threadsafe(self._first_packet)
        with self._lock:
            for reader in self._readers:
                reader.mux(packet, read_at)

    def _first_packet(self) -> None:
        if not self.first_packet.done():
            self.first_packet.set_result(None)

    def _work(self) -> None:
        error: Exception | None = None
        try:
            self.pipeline.run(self.stop)
        except Exception as err:  # noqa: BLE001 - any failure ends the run
            error = err
        with self._lock:
            for reader in self._readers:
                reader.close_muxer()
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self._owner.run_ended, self, error)


class MaskedSource:
    """A camera's masked picture, as a local stream source and snapshots."""

    def __init__(
        self,
        source: SourceProvider,
        masks: Sequence[Mask],
        *,
        pyav_options: Mapping[str, str] | None = None,
        linger_s: float = LINGER_S,
    ) -> None:
        """Mask the camera whose stream source `source()` returns.

        It is asked anew at every connection to the camera.
        """
        self._source = source
        self.masks = tuple(masks)
        self._pyav_options = dict(pyav_options or {})
        self._linger_s = linger_s
        self._server = LoopbackServer({PATH: self._handle})
        self._run: _Run | None = None
        # Every run whose thread has not ended, the current one included.
        self._runs: set[_Run] = set()
        self._linger: asyncio.TimerHandle | None = None
        self._starting = 0
        self._listeners: list[FailureListener] = []
        self._closed = False
        self.stats = PipelineStats()

    @property
    def url(self) -> str:
        """Return the stream source URL (a secret: never log it)."""
        return self._server.url(PATH)

    @property
    def running(self) -> bool:
        """Return True while a pipeline runs."""
        return self._run is not None

    async def async_open(self) -> None:
        """Listen on loopback (no pipeline runs until someone reads)."""
        await self._server.async_open()

    async def async_close(self) -> None:
        """Stop serving and the pipeline; readers' connections end."""
        self._closed = True
        self._cancel_linger()
        self._run = None
        runs = list(self._runs)
        for run in runs:
            run.stop.set()
            run.end_readers()
        await self._server.async_close()
        loop = asyncio.get_running_loop()
        for run in runs:
            # A camera that stalls holds a read for up to READ_TIMEOUT_S.
            await loop.run_in_executor(None, run.join, JOIN_TIMEOUT_S)

    def async_add_failure_listener(
        self, listener: FailureListener
    ) -> Callable[[], None]:
        """Call listener (in the event loop) whenever masking fails while live."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def async_start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Run the pipeline until its first masked packet exists.

        Raise MaskUnavailableError if none comes within timeout (the camera
        gives no picture, or the masking fails). The pipeline then lingers
        like after a reader left, so a reader that comes soon finds it warm.
        """
        if self._closed:
            raise MaskUnavailableError
        run = self._ensure_run()
        self._starting += 1
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(run.first_packet)
        except (TimeoutError, MaskFailedError) as err:
            raise MaskUnavailableError from err
        finally:
            self._starting -= 1
            self._schedule_linger()

    async def async_snapshot(self, timeout: float = SNAPSHOT_TIMEOUT_S) -> bytes:
        """Return the masked picture as a JPEG, masked exactly as the stream.

        The running pipeline's newest frame, else one frame read from the
        camera now. Raise MaskUnavailableError if there is none.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                run = self._run
                if run is not None and (frame := run.pipeline.latest) is not None:
                    return await loop.run_in_executor(None, jpeg, frame)
                if (url := await self._source()) is None:
                    raise MaskUnavailableError
                return await loop.run_in_executor(None, self._grab_jpeg, url, timeout)
        except (TimeoutError, SourceError, MaskFailedError) as err:
            raise MaskUnavailableError from err

    def _grab_jpeg(self, url: str, timeout: float) -> bytes:
        return jpeg(grab_masked_frame(url, self.masks, self._pyav_options, timeout))

    # Runs and readers.

    def _source_url(self, loop: asyncio.AbstractEventLoop) -> str:
        """Ask the camera for its stream source (from the pipeline thread)."""
        try:
            url = from_loop(loop, self._source, SOURCE_URL_TIMEOUT_S)
        except TimeoutError as err:
            raise SourceError("timeout") from err
        except Exception as err:
            raise SourceError(type(err).__name__) from err
        if url is None:
            raise SourceError("no stream source")
        return url

    def _ensure_run(self) -> _Run:
        self._cancel_linger()
        if self._run is None:
            loop = asyncio.get_running_loop()
            self._run = _Run(
                self, lambda: self._source_url(loop), self.masks, self._pyav_options
            )
            self._runs.add(self._run)
        return self._run

    def run_ended(self, run: _Run, error: Exception | None) -> None:
        """The pipeline thread ended (event loop); a failure ends every reader."""
        self._runs.discard(run)
        if run is self._run:
            self._run = None
            self._cancel_linger()
        run.end_readers()
        if not run.first_packet.done():
            run.first_packet.set_exception(MaskFailedError())
            # Retrieved by async_start, if anyone waits.
            run.first_packet.exception()
        if run.stop.is_set():
            return
        # The cause's type only: PyAV's messages can carry the camera's URL.
        cause = error.__cause__ if isinstance(error, MaskFailedError) else error
        _LOGGER.warning(
            "The privacy-masked view failed (%s); it was stopped",
            type(cause).__name__,
        )
        for listener in list(self._listeners):
            listener()

    def _cancel_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _schedule_linger(self) -> None:
        run = self._run
        if run is None or run.readers or self._starting or self._linger is not None:
            return
        self._linger = asyncio.get_running_loop().call_later(
            self._linger_s, self._stop_if_idle
        )

    def _stop_if_idle(self) -> None:
        self._linger = None
        run = self._run
        if run is not None and not run.readers and not self._starting:
            self._run = None
            run.stop.set()

    # HTTP.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._closed:
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        run = self._ensure_run()
        reader = LoopbackReader(asyncio.get_running_loop(), _masked_streams)
        run.add(reader)
        try:
            return await async_send(request, reader, self._sent)
        finally:
            run.remove(reader)
            self._schedule_linger()

    def _sent(self, read_at: float) -> None:
        self.stats.latencies.append(time.monotonic() - read_at)
