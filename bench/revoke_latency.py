"""Benchmark: the stream URL stops working within a second after a share ends.

Claim checked (docs/city-api.md): the stream URL "returns 404 within one
second after the share ends". Figures: the p99 time from the end to the
first 404 an independent viewer sees, for the resident turning consent off
and for the city's `activation.ended` (50 samples each, target <= 1 s), and
for expiry (3 samples, each waits out a 30 s share).

How: starts a real Home Assistant (`bench/harness.py`, port 18143 by
default) with two cameras reading the demo doorbell's clip as a live,
real-time MPEG-TS feed served by a separate process (`harness.FeedProcess`,
port + 1; the demo doorbell's own feed keeps a thread running for up to 30 s
after each client leaves, which would pile up over 100 grants), and an
rtcc_share entry in lab mode for each, consent on:

- on `camera.bench_feed`, the fast paths, alternating: grant a fresh
  activation; a viewer with its own HTTP client opens the stream (blocking
  LL-HLS request for the first part, which returns once the share's stream
  is live) and then polls the media playlist every 10 ms, each poll
  answered at once while the share is live; it also holds a request for the
  master playlist (the stream URL itself, which the share holds until its
  first segment is complete). Then, 50-150 ms later (random, so triggers do not
  line up with polls), the end is triggered from a separate client:
  `switch.turn_off` on the consent switch through the REST API, or a signed
  `activation.ended`. Latency = first 404 seen by the poller minus the
  moment the trigger was sent. The held master playlist request's release
  (404) is reported too;
- on `camera.bench_expiry`, with `max_duration_s` 60 and
  `requested_duration_s` 30, the expiry path runs at the same time: its
  viewer polls every 0.5 s, then every 10 ms from 1 s before `expires` (the
  live-share sensor's attribute, full precision). Latency = first 404 minus
  `expires`.

Between samples the share history is emptied through the bench-only
`rtcc_bench` integration, which resets the daily budget (measurement only).
Measurement resolution: the 10 ms poll interval plus one request's round
trip (its median is printed).

Run from the repository root (about 3 min on a 2-core machine):

    .venv/bin/python bench/revoke_latency.py [--samples 50] [--expiry 3] [--port 18143]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
from datetime import datetime
import json
import random
import time

import aiohttp
from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    Bench,
    Share,
    activate,
    bench_main,
    end,
)
from report import median, note, out, percentile, verdict

LIMIT_S = 1.0
POLL_S = 0.010
EXPIRY_CAMERA_NAME = "Bench expiry"
EXPIRY_CAMERA = "camera.bench_expiry"
EXPIRY_REQUESTED_S = 30
EXPIRY_MAX_DURATION_S = 60
WAIT_404_S = 5.0


def _part0(stream_url: str) -> str:
    """The blocking playlist request that returns once part 0 exists."""
    return stream_url.rsplit("/", 1)[0] + "/playlist.m3u8?_HLS_msn=0&_HLS_part=0"


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


async def _poll_until_404(
    session: aiohttp.ClientSession, url: str, deadline: float
) -> tuple[float, list[float]]:
    """GET url every POLL_S until 404; return when the 404 arrived, and RTTs."""
    rtts: list[float] = []
    while time.monotonic() < deadline:
        began = time.monotonic()
        status = await _status(session, url)
        arrived = time.monotonic()
        if status == 404:
            return arrived, rtts
        if status != 200:
            raise RuntimeError(f"poll answered {status}")
        rtts.append(arrived - began)
        await asyncio.sleep(POLL_S)
    raise TimeoutError("the stream URL did not answer 404 in time")


async def _held(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    status = await _status(session, url)
    return status, time.monotonic()


async def _fast_sample(
    bench: Bench,
    viewer: aiohttp.ClientSession,
    share: Share,
    path: str,
    index: int,
) -> tuple[float, float | None, list[float]]:
    """One fast-path sample: grant, view, end by `path`; return latencies."""
    api, city_client = bench.api, bench.session
    await api.reset_history(share)
    await api.set_consent(share, True)  # no-op unless the last sample withdrew it
    activation = f"REV-{index:03d}"
    status, reply, _ = await activate(city_client, share, activation)
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    url = reply["stream_url"]
    async with asyncio.timeout(20):
        if (status := await _status(viewer, _part0(url))) != 200:
            raise RuntimeError(f"the share's stream answered {status}")
    held = asyncio.create_task(_held(viewer, url))
    poller = asyncio.create_task(
        _poll_until_404(viewer, _part0(url), time.monotonic() + 20)
    )
    await asyncio.sleep(random.uniform(0.05, 0.15))
    if held.done():
        raise RuntimeError(f"the master playlist answered early: {held.result()}")
    t0 = time.monotonic()
    if path == "consent_off":
        trigger = asyncio.create_task(api.set_consent(share, False))
    else:
        trigger = asyncio.create_task(end(city_client, share, activation))
    async with asyncio.timeout(WAIT_404_S):
        arrived, rtts = await poller
        held_status, held_at = await held
    await trigger
    if held_status != 404:
        raise RuntimeError(f"held master playlist answered {held_status}")
    return arrived - t0, held_at - t0, rtts


async def _expiry_samples(
    bench: Bench, viewer: aiohttp.ClientSession, share: Share, count: int
) -> list[float]:
    """Let `count` 30 s shares expire; return first-404 minus expiry."""
    api, city_client = bench.api, bench.session
    latencies: list[float] = []
    for index in range(count):
        await api.reset_history(share)
        activation = f"EXP-{index:03d}"
        status, reply, _ = await activate(
            city_client, share, activation, requested_duration_s=EXPIRY_REQUESTED_S
        )
        if status != 201:
            raise RuntimeError(f"expiry activation answered {status} {reply}")
        attributes = (await api.state(share.live_sensor))["attributes"]
        expires = datetime.fromisoformat(attributes["expires"]).timestamp()
        url = _part0(reply["stream_url"])
        # View at a relaxed pace until a second before expiry, then tightly.
        while time.time() < expires - 1.0:
            if (code := await _status(viewer, url)) != 200:
                raise RuntimeError(f"expiring share answered {code} early")
            await asyncio.sleep(min(0.5, max(0.0, expires - 1.0 - time.time())))
        offset = time.time() - time.monotonic()
        arrived, _ = await _poll_until_404(viewer, url, time.monotonic() + 10)
        latencies.append(arrived + offset - expires)
        note(f"expiry {index + 1}: 404 {latencies[-1] * 1000:.0f} ms after expires")
    return latencies


async def measure(bench: Bench, samples: int, expiries: int) -> None:
    """Take the samples, print the summary lines."""
    api = bench.api
    fast = await api.add_share(FEED_CAMERA, max_activations_per_day=24)
    expiring = await api.add_share(
        EXPIRY_CAMERA,
        max_activations_per_day=24,
        max_duration_s=EXPIRY_MAX_DURATION_S,
    )
    await api.set_consent(fast, True)
    await api.set_consent(expiring, True)
    latency: dict[str, list[float]] = {"consent_off": [], "activation_ended": []}
    held: list[float] = []
    rtts: list[float] = []
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as viewer,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as watcher,
    ):
        expiry_task = asyncio.create_task(
            _expiry_samples(bench, watcher, expiring, expiries)
        )
        paths = list(latency)
        for index in range(2 * samples):
            path = paths[index % 2]
            value, held_value, sample_rtts = await _fast_sample(
                bench, viewer, fast, path, index
            )
            latency[path].append(value)
            if held_value is not None:
                held.append(held_value)
            rtts += sample_rtts
            if (index + 1) % 20 == 0:
                note(f"{index + 1} fast samples")
        async with asyncio.timeout(EXPIRY_REQUESTED_S * (expiries + 1) + 30):
            expiry = await expiry_task

    for path, label in (
        ("consent_off", "consent turned off (switch.turn_off)"),
        ("activation_ended", "signed activation.ended"),
    ):
        values = latency[path]
        p99 = percentile(values, 99)
        out(
            f"revoke latency p99, {label}, n={len(values)}: {p99 * 1000:.0f} ms vs "
            f"contract limit {LIMIT_S * 1000:.0f} ms = ratio {p99 / LIMIT_S:.2f} "
            f"(target <= 1 s) {verdict(p99 <= LIMIT_S)}"
        )
    if expiry:
        p99 = percentile(expiry, 99)
        out(
            f"revoke latency p99, expiry (30 s share), n={len(expiry)}: "
            f"{p99 * 1000:.0f} ms vs contract limit {LIMIT_S * 1000:.0f} ms = ratio "
            f"{p99 / LIMIT_S:.2f} (target <= 1 s) {verdict(p99 <= LIMIT_S)}"
        )
    out(
        f"  held master-playlist request (the stream URL itself) released with "
        f"404: median {median(held) * 1000:.0f} ms, p99 "
        f"{percentile(held, 99) * 1000:.0f} ms after the trigger; poll interval "
        f"{POLL_S * 1000:.0f} ms, poll round trip median {median(rtts) * 1000:.1f} ms"
    )
    details = {
        name: {
            "n": len(values),
            "median_ms": round(median(values) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }
        for name, values in (*latency.items(), ("expiry", expiry), ("held", held))
        if values
    }
    out(f"  details: {json.dumps(details)}")


if __name__ == "__main__":
    bench_main(
        __doc__,
        18143,
        lambda bench, args: measure(bench, args.samples, args.expiry),
        options={
            "--samples": {"type": int, "default": 50, "help": "per fast path"},
            "--expiry": {"type": int, "default": 3, "help": "expiry samples"},
        },
        feed_cameras=(FEED_CAMERA_NAME, EXPIRY_CAMERA_NAME),
    )
