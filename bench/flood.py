"""Benchmark: a flood of forged requests neither slows the webhook nor the viewer.

Claims checked while one viewer pulls a live share:

- Home Assistant rejects wrongly signed activation requests (401) at least
  0.8x as fast as a bare webhook answers the same requests;
- the viewer sees no stall: the longest gap between two complete segments
  during the flood stays within one segment duration (plus one part: the
  player holds back two parts, so one part's delay is never visible).

How: starts a real Home Assistant (`bench/harness.py`, port 18153 by
default) with a camera reading the demo doorbell's clip as a live, real-time
MPEG-TS feed (15 fps, 1 s keyframes, so the share's segments last 1 s, in
0.55 s parts) served by a
separate process (`harness.FeedProcess`, port + 1): like a real camera's,
the feed is served neither by Home Assistant's event loop (the demo
doorbell's is) nor by the flooding client's. It adds rtcc_share in lab
mode, consent on, grants a 600 s activation and starts an LL-HLS viewer on
the stream URL, also in its own process (master playlist, then blocking
playlist requests `_HLS_msn`/`_HLS_part` and every part; see
`harness.Viewer` and `harness.ViewerProcess`). Once the viewer has two
complete segments (its pre-flood gaps are the reference):

1. burst: 2 000 requests signed with a wrong `whsec_` key are sent, 20 at a
   time over loopback, to the activation webhook (-> 401), and the same
   2 000 to the bench-only bare webhook (`rtcc_bench`: reads the body,
   answers `{}`), in 16 alternating chunks of 250 so drift hits both alike.
   For where the time goes, the same requests with a wrong media type
   (-> 415, refused before the signature check, not counted) are
   interleaved too;
2. sustained: the same forged requests again, 20 at a time, at the
   activation webhook only, until the flood has lasted 12 s (at most 20
   passes), so the viewer's gaps cover a dozen segments.

The viewer keeps watching for one more segment after the flood. The
figures: rejections/s vs bare responses/s in the burst; the viewer's longest
gap between complete segments over the whole flood.

Run from the repository root (about 1 min on a 2-core machine):

    .venv/bin/python bench/flood.py [--requests 2000] [--port 18153]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
import base64
import json
import time

import aiohttp
from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    Bench,
    City,
    Share,
    ViewerProcess,
    activate,
    bench_main,
    requested,
)
from report import median, note, out, verdict

from custom_components.rtcc_share.live.hls_stream import PART_TARGET_S

RATE_TARGET = 0.8
CONCURRENCY = 20
CHUNKS = 16
FLOOD_MIN_S = 12.0
MAX_SUSTAINED_PASSES = 20
WRONG_KEY = "whsec_" + base64.b64encode(b"not the resident's key, 32 bytes").decode()


def _as_text(
    requests: list[tuple[bytes, dict[str, str]]],
) -> list[tuple[bytes, dict[str, str]]]:
    """The same requests, declared as text/plain."""
    return [
        (body, {**headers, "Content-Type": "text/plain"}) for body, headers in requests
    ]


async def _send_all(
    session: aiohttp.ClientSession,
    url: str,
    requests: list[tuple[bytes, dict[str, str]]],
) -> tuple[float, dict[int, int]]:
    """POST every request, CONCURRENCY at a time; return seconds and statuses."""
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def worker() -> None:
        for body, headers in queue:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - began, statuses


async def measure(bench: Bench, count: int) -> None:
    """Watch, flood, watch; print the summary lines."""
    api = bench.api
    share = await api.add_share(FEED_CAMERA, max_activations_per_day=24)
    await api.set_consent(share, True)
    status, reply, _ = await activate(bench.session, share, "FLOOD-0001")
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    bare_url = bench.bench_webhook_url
    assert bare_url is not None

    forger = City(WRONG_KEY)
    requests = [forger.sign(requested(f"FORGED-{i:05d}")) for i in range(count)]
    viewer = ViewerProcess(reply["stream_url"], limit_s=150)
    await viewer.start()
    try:
        await _flood(bench, share, bare_url, requests, viewer)
    finally:
        await viewer.stop()


async def _flood(
    bench: Bench,
    share: Share,
    bare_url: str,
    requests: list[tuple[bytes, dict[str, str]]],
    viewer: ViewerProcess,
) -> None:
    count = len(requests)
    # Two complete segments before the flood, as the reference.
    async with asyncio.timeout(40):
        while len(viewer.segments) < 2 and viewer.running:
            await asyncio.sleep(0.1)
    if viewer.error or len(viewer.segments) < 2:
        raise RuntimeError(f"viewer failed before the flood: {viewer.error}")
    note("viewer is live; flooding")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as flooding:
        flood_began = time.monotonic()
        targets = {
            "subject": share.webhook_url,
            "bare": bare_url,
            "media_type": share.webhook_url,
        }
        elapsed = dict.fromkeys(targets, 0.0)
        statuses: dict[str, dict[int, int]] = {target: {} for target in targets}
        size = -(-count // CHUNKS)
        for index in range(CHUNKS):
            chunk = requests[index * size : (index + 1) * size]
            shift = index % len(targets)
            order = [*targets][shift:] + [*targets][:shift]
            for target in order:
                sent = chunk if target != "media_type" else _as_text(chunk)
                seconds, got = await _send_all(flooding, targets[target], sent)
                elapsed[target] += seconds
                for code, number in got.items():
                    statuses[target][code] = statuses[target].get(code, 0) + number
        burst_ended = time.monotonic()
        sustained = 0
        while (
            time.monotonic() - flood_began < FLOOD_MIN_S
            and sustained < MAX_SUSTAINED_PASSES
        ):
            _, got = await _send_all(flooding, share.webhook_url, requests)
            if set(got) != {401}:
                raise RuntimeError(f"sustained flood answered {got}")
            sustained += 1
        flood_ended = time.monotonic()
        note(
            f"flood done in {flood_ended - flood_began:.1f} s "
            f"({sustained} sustained passes); watching on"
        )

    # One more complete segment after the flood.
    last = max(viewer.segments)
    async with asyncio.timeout(20):
        while max(viewer.segments) < last + 1 and viewer.running:
            await asyncio.sleep(0.1)
    await viewer.stop()

    if statuses != {
        "subject": {401: count},
        "bare": {200: count},
        "media_type": {415: count},
    }:
        raise RuntimeError(f"unexpected answers: {statuses}")
    rejections = count / elapsed["subject"]
    bare_rate = count / elapsed["bare"]
    ratio = rejections / bare_rate
    out(
        f"flood: rejections/s of {count} wrongly signed requests (concurrency "
        f"{CONCURRENCY}, one live viewer): {rejections:.0f}/s vs bare webhook "
        f"{bare_rate:.0f}/s = ratio {ratio:.2f} (target >= {RATE_TARGET}) "
        f"{verdict(ratio >= RATE_TARGET)}"
    )
    out(
        f"  where the time goes: the same requests with a wrong media type "
        f"(415, refused before the signature check and the rejection counter) "
        f"{count / elapsed['media_type']:.0f}/s; every 401 also updates the "
        f"'Rejected requests' sensor's state"
    )
    segment_s = median(list(viewer.durations.values()))
    part_s = PART_TARGET_S
    flood_gaps = viewer.segment_gaps(flood_began, flood_ended)
    before = viewer.segment_gaps(until=flood_began)
    longest = max(flood_gaps)
    allowed = segment_s + part_s
    out(
        f"flood: viewer's longest gap between segments during the flood: "
        f"{longest:.2f} s vs segment duration {segment_s:.2f} s = ratio "
        f"{longest / segment_s:.2f} (target <= {allowed:.2f} s = one segment + "
        f"one part, i.e. no stall) {verdict(longest <= allowed and not viewer.error)}"
    )
    parts_during = viewer.part_gaps(flood_began, flood_ended)
    parts_before = viewer.part_gaps(until=flood_began)
    out(
        f"  flood lasted {flood_ended - flood_began:.1f} s (burst "
        f"{burst_ended - flood_began:.1f} s, then {sustained} sustained passes of "
        f"{count} forged requests); longest gap "
        f"between parts during it {max(parts_during):.2f} s (before "
        f"{max(parts_before):.2f} s); segment gaps before the flood "
        f"{[round(g, 2) for g in before]}, touching it "
        f"{[round(g, 2) for g in flood_gaps]}; viewer error: {viewer.error}"
    )
    out(f"  details: {json.dumps({'statuses': statuses, 'bytes': viewer.bytes})}")


if __name__ == "__main__":
    bench_main(
        __doc__,
        18153,
        lambda bench, args: measure(bench, args.requests),
        options={"--requests": {"type": int, "default": 2000}},
        feed_cameras=(FEED_CAMERA_NAME,),
    )
