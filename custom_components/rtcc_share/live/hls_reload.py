"""Blocking playlist reload (LL-HLS) for the share's media playlist.

A player asks for the playlist once it holds a part it names
(`_HLS_msn`, `_HLS_part`). Home Assistant's view answers 404 when the part
is more than a part timeout away (about a second), which players take as
the end of the stream, and 500 for a malformed number. Here a malformed
request is refused at once, and the wait is bounded by three target
durations (RFC 8216bis 6.2.5.2), after which the player gets the playlist
as it is: the share is live, the camera is only late or reconnecting.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
import re
from typing import Final

from homeassistant.components.stream import HLS_PROVIDER, Stream
from homeassistant.components.stream.hls import HlsStreamOutput

# RFC 8216's decimal-integer; twelve digits are more parts than a share has.
_DECIMAL: Final = re.compile(r"[0-9]{1,12}")
# RFC 8216bis: a server that blocks longer than this many target durations
# answers anyway.
TARGET_DURATIONS: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Directives:
    """What a blocking request waits for: a segment, or one of its parts."""

    msn: int
    part: int | None

    def met_by(self, track: HlsStreamOutput) -> bool:
        """Return True once the playlist has the segment or part, or a later one.

        A part index past a complete segment's last part means the next
        segment's first part (RFC 8216bis 6.2.5.2).
        """
        for segment in track.get_segments():
            if self.part is None:
                if segment.sequence >= self.msn and segment.complete:
                    return True
            elif segment.parts and (
                segment.sequence > self.msn
                or (segment.sequence == self.msn and len(segment.parts) > self.part)
            ):
                return True
        return False

    def too_far_ahead(self, track: HlsStreamOutput) -> bool:
        """Return True for a request the server should refuse at once (RFC)."""
        if self.msn > track.last_sequence + 2:
            return True
        last = track.last_segment
        return (
            last is not None
            and self.part is not None
            and self.msn == last.sequence
            and self.part
            >= len(last.parts) - 1 + track.stream_settings.hls_advance_part_limit
        )


def parse(query: Mapping[str, str]) -> Directives | None:
    """Return a request's directives, None for a plain request.

    Raises ValueError for a malformed one: a value that is not a decimal
    integer, or `_HLS_part` without `_HLS_msn` (RFC 8216bis 6.2.5.2).
    """
    msn, part = query.get("_HLS_msn"), query.get("_HLS_part")
    if msn is None and part is None:
        return None
    if msn is None or not _DECIMAL.fullmatch(msn):
        raise ValueError("_HLS_msn")
    if part is not None and not _DECIMAL.fullmatch(part):
        raise ValueError("_HLS_part")
    return Directives(msn=int(msn), part=None if part is None else int(part))


async def async_wait(
    stream: Stream, track: HlsStreamOutput, wanted: Directives, start_limit_s: float
) -> bool:
    """Wait until wanted is met, or three target durations have passed.

    Before the share has made any segment, wait up to start_limit_s instead.
    Return False if the share's output went meanwhile (the share ended).
    """
    loop = asyncio.get_running_loop()
    began = loop.time()
    while stream.outputs().get(HLS_PROVIDER) is track and not wanted.met_by(track):
        bound = (
            TARGET_DURATIONS * track.target_duration
            if track.last_segment is not None
            else start_limit_s
        )
        if (remaining := began + bound - loop.time()) <= 0:
            return True
        # Every part wakes this, the first one of a reconnection included.
        await track.part_recv(timeout=remaining)
    return stream.outputs().get(HLS_PROVIDER) is track
