"""Stream sources for readers inside the home, over loopback HTTP.

A `LoopbackServer` listens on 127.0.0.1 on an ephemeral port. Its URLs are
stream sources like any camera's (Home Assistant's `stream`, go2rtc and
ffmpeg open them), with a fresh secret as their HTTP Basic credentials:
Home Assistant's `stream` redacts URL credentials in everything it logs,
and the secret is never logged here. Nothing about the readers reaches a
log either (no access log).

Each reader (one HTTP connection) gets a `LoopbackReader`: its own muxer
(MPEG-TS, or another container), fed from a producer thread and started at
a video keyframe, whose bytes queue in the event loop for the connection,
bounded (a reader far behind is cut off; it reconnects and starts afresh).
"""

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
import contextlib
from fractions import Fraction
from http import HTTPStatus
import io
import secrets
import socket
from typing import Final

from aiohttp import web
import av
from av.container import OutputContainer
from av.stream import Stream

HOST: Final = "127.0.0.1"
USER: Final = "rtcc_share"
# A reader this far behind is cut off.
READER_BUFFER_BYTES: Final = 4 * 2**20
# MPEG-TS: every packet is written out at once, and with its PES length
# (also for video, which MPEG-TS may leave open), so that a reader's demuxer
# can hand each packet on as soon as it has it, not only once the next one
# begins; one audio frame per PES.
MPEGTS: Final = ("mpegts", "video/mp2t")
MPEGTS_OPTIONS: Final = {
    "flush_packets": "1",
    "omit_video_pes_length": "0",
    "pes_payload_size": "0",
}

type StreamFactory = Callable[[OutputContainer], Sequence[Stream]]
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _awaited[T](awaitable: Awaitable[T]) -> T:
    return await awaitable


def from_loop[T](
    loop: asyncio.AbstractEventLoop,
    provider: Callable[[], Awaitable[T]],
    timeout: float,
) -> T:
    """Return what provider() gives in the event loop (from a producer thread).

    Raise TimeoutError if it takes longer than timeout, or what it raises.
    """
    future = asyncio.run_coroutine_threadsafe(_awaited(provider()), loop)
    try:
        return future.result(timeout)
    except FutureTimeoutError:
        future.cancel()
        raise


class _Collector(io.RawIOBase):
    """The muxer's output file: collects what one packet's mux writes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.parts.append(bytes(data))
        return len(data)


class LoopbackReader:
    """One reader: its muxer (producer thread) and its queue (event loop).

    `streams` adds the muxer's streams when the first keyframe comes; stream
    0 is the video. `shift` is added to every timestamp (in the packets'
    own time base).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        streams: StreamFactory,
        *,
        container: tuple[str, str] = MPEGTS,
        options: dict[str, str] | None = None,
        shift: int = 0,
        buffer_bytes: int = READER_BUFFER_BYTES,
    ) -> None:
        """Queue for this event loop; mux into the streams `streams` adds.

        container: the muxer's format and the HTTP media type; options: its
        options (MPEGTS_OPTIONS for MPEG-TS unless given).
        """
        self._loop = loop
        self._streams = streams
        self.format, self.media_type = container
        self._options = (
            options if options is not None or container != MPEGTS else MPEGTS_OPTIONS
        )
        self.shift = shift
        self._buffer_bytes = buffer_bytes
        self.queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()
        self._queued = 0
        self.ended = False
        self._file = _Collector()
        self._muxer: tuple[OutputContainer, Sequence[Stream]] | None = None

    @property
    def started(self) -> bool:
        """Return True once the reader has had its first keyframe."""
        return self._muxer is not None

    # Producer thread.

    def mux(self, packet: av.Packet[Stream], read_at: float, index: int = 0) -> None:
        """Mux a copy of one packet into stream `index`; start at a video keyframe.

        read_at: when its source packet was read (for latency figures).
        """
        if self._muxer is None:
            if index != 0 or not packet.is_keyframe:
                return
            container = av.open(
                self._file, "w", format=self.format, options=self._options
            )
            self._muxer = (container, self._streams(container))
        container, streams = self._muxer
        copy = av.Packet(bytes(packet))
        copy.time_base = packet.time_base or Fraction(1, 90_000)
        copy.pts = None if packet.pts is None else packet.pts + self.shift
        copy.dts = None if packet.dts is None else packet.dts + self.shift
        copy.is_keyframe = packet.is_keyframe
        copy.stream = streams[index]
        container.mux(copy)
        data = b"".join(self._file.parts)
        self._file.parts.clear()
        if data:
            self._loop.call_soon_threadsafe(self._put, data, read_at)

    def close_muxer(self) -> None:
        """Drop the muxer (what it still writes goes nowhere)."""
        if self._muxer is not None:
            with contextlib.suppress(Exception):
                self._muxer[0].close()
            self._muxer = None

    # Event loop.

    def _put(self, data: bytes, read_at: float) -> None:
        if self.ended:
            return
        if self._queued + len(data) > self._buffer_bytes:
            self.end()
            return
        self._queued += len(data)
        self.queue.put_nowait((data, read_at))

    def taken(self, size: int) -> None:
        """Count bytes the HTTP side took off the queue."""
        self._queued -= size

    def end(self) -> None:
        """End the connection now, dropping what is still queued."""
        self.ended = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


async def async_send(
    request: web.Request,
    reader: LoopbackReader,
    on_sent: Callable[[float], None] | None = None,
) -> web.StreamResponse:
    """Stream what the reader's muxer makes until it ends or the client leaves.

    on_sent gets each chunk's read_at once it is written.
    """
    response = web.StreamResponse(
        headers={"Content-Type": reader.media_type, "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        while (item := await reader.queue.get()) is not None:
            data, read_at = item
            reader.taken(len(data))
            await response.write(data)
            if on_sent is not None:
                on_sent(read_at)
    except ConnectionError:
        pass
    return response


class LoopbackServer:
    """Serves some paths on 127.0.0.1 to holders of a fresh secret."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        """Serve each route (an aiohttp path, variables allowed) with its handler."""
        self._routes = routes
        self._secret = secrets.token_urlsafe(32)
        self._authorization = (
            "Basic " + base64.b64encode(f"{USER}:{self._secret}".encode()).decode()
        ).encode()
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._port = 0

    @property
    def is_open(self) -> bool:
        """Return True while listening."""
        return self._runner is not None

    def url(self, path: str) -> str:
        """Return the URL of a path, credentials included (a secret: never log it)."""
        if self._runner is None:
            raise RuntimeError("not open")
        return f"http://{USER}:{self._secret}@{HOST}:{self._port}{path}"

    async def async_open(self) -> None:
        """Listen on an ephemeral loopback port."""
        app = web.Application()
        for path, handler in self._routes.items():
            app.router.add_get(path, self._guarded(handler))
        # No access log: nothing about the readers reaches the log.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, 0))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner, self._socket = runner, sock

    async def async_close(self) -> None:
        """Stop listening; open connections are closed."""
        if self._runner is not None and self._socket is not None:
            runner, self._runner = self._runner, None
            # asyncio makes an accepted connection's transport a loop turn
            # later, and fails ("Error on transport creation") if its server
            # closed meanwhile: stop accepting, let those attach, then close.
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            await asyncio.sleep(0)
            await runner.cleanup()

    def authorized(self, request: web.Request) -> bool:
        """Return True if the request carries the secret."""
        given = request.headers.get("Authorization", "").encode()
        return secrets.compare_digest(given, self._authorization)

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.authorized(request):
                return web.Response(
                    status=HTTPStatus.UNAUTHORIZED,
                    headers={"WWW-Authenticate": f'Basic realm="{USER}"'},
                )
            return await handler(request)

        return guarded
