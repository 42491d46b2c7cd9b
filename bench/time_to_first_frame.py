"""Benchmark: how soon after a grant the city can see the first frame.

Claim checked: from the 201 of a signed activation to a decoded video frame
takes at most the source's keyframe interval plus one LL-HLS part duration
(1 s + 1 s = 2 s with the demo doorbell).

How: starts a real Home Assistant (`bench/harness.py`, port 18133 by
default) with the demo doorbell, whose feed is a real-time looped H.264
MPEG-TS on loopback (15 fps, keyframe every second), adds rtcc_share in lab
mode, consent on, and then for each of 5 runs grants a fresh activation and,
from the moment the 201 arrives, runs two clients at once:

- the stream URL as a player uses it: master playlist (Home Assistant
  answers it only once two segments exist), media playlist, init.mp4, the
  first complete segment, decode one frame with PyAV;
- the LL-HLS fast path: a blocking media playlist request for the first
  part (`_HLS_msn=0&_HLS_part=0`), init.mp4, that part, decode one frame.

Each run's share is then ended and the history emptied through the
bench-only `rtcc_bench` integration (resets the daily budget; measurement
only). The source's keyframe interval (the baseline) is measured in the same
run by reading the feed with PyAV, as is the time PyAV takes to open the
feed the way Home Assistant's stream worker does (format probing reads
frames at the feed's real-time pace).

Note: the demo feed starts every new connection at the start of its clip,
i.e. with a keyframe; a real camera is joined mid-GOP, which adds up to one
keyframe interval (the target allows for that).

Run from the repository root (about 1.5 min on a 2-core machine):

    .venv/bin/python bench/time_to_first_frame.py [--runs 5] [--port 18133]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
from dataclasses import dataclass, field
from fractions import Fraction
import itertools
import json
import re
import statistics
import time

import aiohttp
from harness import (
    DEMO_CAMERA,
    HOST,
    LIVE_PATH,
    Bench,
    Playlist,
    activate,
    bench_main,
    decode_first_frame,
    end,
)
from report import median, note, out, verdict

PART_INF = re.compile(r"#EXT-X-PART-INF:PART-TARGET=([\d.]+)")
KEYFRAME_READ_S = 4.5


def _keyframe_interval(url: str) -> float:
    """Read the feed for a few seconds; return the median keyframe spacing."""
    import av  # noqa: PLC0415

    times: list[float] = []
    with av.open(url, timeout=10) as container:
        video = container.streams.video[0]
        base = video.time_base or Fraction(1, 90000)
        began = time.monotonic()
        for packet in container.demux(video):
            if packet.is_keyframe and packet.pts is not None:
                times.append(float(packet.pts * base))
            if time.monotonic() - began > KEYFRAME_READ_S:
                break
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        raise RuntimeError("fewer than two keyframes in the feed")
    return statistics.median(gaps)


def _worker_style_open(url: str) -> float:
    """Time PyAV opening the feed with default probing, as the stream worker."""
    import av  # noqa: PLC0415

    began = time.perf_counter()
    with av.open(url, timeout=10):
        return time.perf_counter() - began


@dataclass
class Run:
    """Moments of one run, in seconds after the 201 arrived."""

    grant_s: float = 0.0
    player: dict[str, float] = field(default_factory=dict)
    fast: dict[str, float] = field(default_factory=dict)
    segment_s: float = 0.0
    part_s: float = 0.0


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"{response.status} for {url.rsplit('/', 1)[-1]}")
        return await response.read()


async def _player(
    session: aiohttp.ClientSession, url: str, t0: float, run: Run
) -> None:
    base = url.rsplit("/", 1)[0]
    loop = asyncio.get_running_loop()
    master = (await _get(session, url)).decode()
    run.player["master playlist"] = time.monotonic() - t0
    media = next(line for line in master.splitlines() if line.endswith(".m3u8"))
    playlist_text = (await _get(session, f"{base}/{media}")).decode()
    run.player["media playlist"] = time.monotonic() - t0
    playlist = Playlist.parse(playlist_text)
    init = await _get(session, f"{base}/init.mp4")
    run.player["init.mp4"] = time.monotonic() - t0
    first = min(playlist.complete)
    run.segment_s = playlist.complete[first]
    segment = await _get(session, f"{base}/segment/{first}.m4s")
    run.player["first segment"] = time.monotonic() - t0
    await loop.run_in_executor(None, decode_first_frame, init, segment)
    run.player["frame decoded"] = time.monotonic() - t0


async def _fast(session: aiohttp.ClientSession, url: str, t0: float, run: Run) -> None:
    base = url.rsplit("/", 1)[0]
    loop = asyncio.get_running_loop()
    text = (
        await _get(session, f"{base}/playlist.m3u8?_HLS_msn=0&_HLS_part=0")
    ).decode()
    run.fast["playlist with part 0"] = time.monotonic() - t0
    if (match := PART_INF.search(text)) is None:
        raise RuntimeError("no EXT-X-PART-INF: LL-HLS is off")
    run.part_s = float(match[1])
    if (0, 0) not in Playlist.parse(text).parts:
        raise RuntimeError("the first part is not segment 0 part 0")
    init = await _get(session, f"{base}/init.mp4")
    run.fast["init.mp4"] = time.monotonic() - t0
    part = await _get(session, f"{base}/segment/0.0.m4s")
    run.fast["part 0"] = time.monotonic() - t0
    await loop.run_in_executor(None, decode_first_frame, init, part)
    run.fast["frame decoded"] = time.monotonic() - t0


async def measure(bench: Bench, runs: int) -> None:
    """Grant, watch, end; print the summary lines."""
    api, session = bench.api, bench.session
    share = await api.add_share(DEMO_CAMERA, max_activations_per_day=24)
    await api.set_consent(share, True)
    loop = asyncio.get_running_loop()
    feed = f"http://{HOST}:{bench.hass.port}{LIVE_PATH}"
    interval = await loop.run_in_executor(None, _keyframe_interval, feed)
    worker_open = await loop.run_in_executor(None, _worker_style_open, feed)
    results: list[Run] = []
    for index in range(runs):
        run = Run()
        activation = f"TTFF-{index:02d}"
        status, reply, run.grant_s = await activate(session, share, activation)
        t0 = time.monotonic()
        if status != 201:
            raise RuntimeError(f"activation answered {status} {reply}")
        url = reply["stream_url"]
        async with asyncio.timeout(60):
            await asyncio.gather(
                _player(session, url, t0, run), _fast(session, url, t0, run)
            )
        status, reply, _ = await end(session, share, activation)
        if status != 200:
            raise RuntimeError(f"activation.ended answered {status} {reply}")
        await api.reset_history(share)
        results.append(run)
        note(
            f"run {index + 1}: frame via master playlist "
            f"{run.player['frame decoded']:.2f} s, via first part "
            f"{run.fast['frame decoded']:.2f} s"
        )

    part = median([r.part_s for r in results])
    target = interval + part
    for label, steps in (
        ("via the stream URL (master playlist -> first segment)", "player"),
        (
            "via LL-HLS first part (blocking playlist _HLS_msn=0&_HLS_part=0)",
            "fast",
        ),
    ):
        value = median([getattr(r, steps)["frame decoded"] for r in results])
        out(
            f"time to first frame {label}, median of {len(results)}: "
            f"{value:.2f} s vs source keyframe interval {interval:.2f} s = ratio "
            f"{value / interval:.1f} (target <= {target:.2f} s = keyframe interval "
            f"+ one part) {verdict(value <= target)}"
        )
    for label, steps in (("stream URL", "player"), ("LL-HLS first part", "fast")):
        marks = ", ".join(
            f"{step} {median([getattr(r, steps)[step] for r in results]):.2f} s"
            for step in getattr(results[0], steps)
        )
        out(f"  where the time goes, {label} (medians after the 201): {marks}")
    out(
        f"  context: 201 itself took {median([r.grant_s for r in results]) * 1000:.0f}"
        f" ms; PyAV opening the feed with default probing (as the stream worker "
        f"does) {worker_open:.2f} s; segment duration "
        f"{median([r.segment_s for r in results]):.2f} s, part target {part:.2f} s."
        f" HA answers the master playlist only once a 2nd segment exists, i.e. "
        f"after one full segment plus the 2nd segment's first part; the first "
        f"part is ready as soon as the worker has opened the feed"
    )
    raw = [
        {
            path: {step: round(moment, 3) for step, moment in steps.items()}
            for path, steps in (("player", r.player), ("fast", r.fast))
        }
        for r in results
    ]
    out(f"  details: {json.dumps(raw)}")


if __name__ == "__main__":
    bench_main(
        __doc__,
        18133,
        lambda bench, args: measure(bench, args.runs),
        options={"--runs": {"type": int, "default": 5}},
    )
