"""A WHEP (WebRTC-HTTP Egress Protocol) viewer for a home's `webrtc_url`, on aiortc.

The viewer makes a receive-only offer, POSTs it, applies the answer and
decodes the video it receives. It works against any aiohttp-style client
(`aiohttp.ClientSession`, or aiohttp's test client for relative paths):

    viewer = Viewer(session, webrtc_url)
    await viewer.start()
    await viewer.first_frame.wait()
    await viewer.close()

By default the offer carries all of its candidates (like ffmpeg or OBS);
`trickle=True` sends them afterwards in a `PATCH`, like a browser.
"""

import asyncio
from dataclasses import dataclass, field
import time
from typing import Any, Final
from urllib.parse import urljoin

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

SDP_TYPE: Final = "application/sdp"
SDPFRAG_TYPE: Final = "application/trickle-ice-sdpfrag"


class WhepRefusedError(Exception):
    """The home answered the offer with an error status."""

    def __init__(self, status: int, body: str) -> None:
        """Keep the status and the JSON error body."""
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def split_candidates(sdp: str) -> tuple[str, str]:
    """Return the offer without its candidates, and them as an sdpfrag (RFC 8840)."""
    offer: list[str] = []
    frag: list[str] = []
    section: list[str] = []
    for line in sdp.splitlines():
        if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")) and line not in frag:
            frag.append(line)
        if line.startswith("m="):
            section = [line]
        elif line.startswith("a=mid:"):
            section.append(line)
        if line.startswith("a=candidate:") or line == "a=end-of-candidates":
            frag.extend(x for x in section if x not in frag)
            frag.append(line)
        else:
            offer.append(line)
    return "\r\n".join(offer) + "\r\n", "\r\n".join(frag) + "\r\n"


@dataclass
class Viewer:
    """One city viewer of a WHEP endpoint."""

    http: Any
    url: str
    # aiortc cannot apply an answer that rejects an m-line (port 0), which is
    # what a home that does not share audio answers to an audio offer.
    audio: bool = False
    trickle: bool = False
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    location: str | None = None
    answer: str | None = None
    answered_at: float | None = None
    first_frame_at: float | None = None
    frames: int = 0
    size: tuple[int, int] | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Offer, receive the answer and start decoding (WhepRefusedError if not 201)."""
        if self.audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        frag = ""
        if self.trickle:
            offer, frag = split_candidates(offer)
        response = await self.http.post(
            self.url, data=offer.encode(), headers={"Content-Type": SDP_TYPE}
        )
        body = await response.text()
        if response.status != 201:
            raise WhepRefusedError(response.status, body)
        self.answered_at = time.monotonic()
        self.answer = body
        self.location = urljoin(self.url, response.headers["Location"])
        if self.trickle:
            await self.patch(frag)
        await self.pc.setRemoteDescription(RTCSessionDescription(body, "answer"))

    async def patch(self, frag: str) -> int:
        """Send trickled candidates; return the status."""
        assert self.location is not None
        response = await self.http.patch(
            self.location, data=frag.encode(), headers={"Content-Type": SDPFRAG_TYPE}
        )
        return int(response.status)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                    self.size = (frame.width, frame.height)  # type: ignore[union-attr]
                    self.first_frame.set()
        except MediaStreamError:
            self.ended.set()

    @property
    def time_to_first_frame(self) -> float | None:
        """Return the seconds from the 201 to the first decoded frame."""
        if self.first_frame_at is None or self.answered_at is None:
            return None
        return self.first_frame_at - self.answered_at

    async def close(self, *, delete: bool = True) -> int | None:
        """End the session (DELETE unless told not to); return the status."""
        status = None
        if delete and self.location is not None:
            status = int((await self.http.delete(self.location)).status)
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
        return status


async def probe(http: Any, url: str, seconds: float) -> Viewer:
    """Receive the video for `seconds`, then end the session."""
    viewer = Viewer(http, url)
    await viewer.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await viewer.close()
    return viewer
