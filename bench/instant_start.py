"""Benchmark: instant start's first frame after the grant, and what it costs while idle.

Claims checked (issue: instant start):

- with instant start on, from the 201 of a signed activation to the first
  decoded frame takes at most 0.5 s for ffprobe and ffmpeg on the
  stream_url and for hls.js in headless Chromium, with a camera sending a
  keyframe every second and one every 4 s; each against the same share of
  the same camera without instant start, measured in the same run;
- idle (consent on, no share), the prebuffer costs at most 1.1x the CPU of
  Home Assistant's own "preload stream" of the same camera (the camera
  preference `preload_stream`, set with `camera/update_prefs`), measured in
  the same run, and at most the memory of that preload stream plus one
  buffered keyframe interval.

How: a real Home Assistant (`bench/harness.py`, port 18273 by default) and
Debian's RTSP server (`rtsp-server-perl`) with ffmpeg publishing a live
640x360 15 fps test pattern and tone, encoded as a camera does, at 1 s and
4 s keyframe intervals (`time_to_first_frame.RtspCameras`), each read by
three of Home Assistant's `generic` cameras: one shared with instant start
on, one shared without it, one for Home Assistant's preload stream. A grant
comes at a random moment of the camera's keyframe interval (a seeded
random wait before each), so the buffered interval is anything from one
frame to a whole interval. The first-frame clients are those of
`time_to_first_frame.py` (`ffprobe -read_intervals %+#1`, `ffmpeg -frames:v
1`, the city viewer page with hls.js 1.7.4 in Debian's `chromium`), in turn,
with and without instant start alternating.

Idle cost, one camera at a time (every share's consent off but the one
measured): windows of `--window` seconds, the prebuffer (consent on for the
instant-start share) twice and Home Assistant's preload stream (consent
off; preload on, its stream started once with `camera/stream`, then left
alone) twice, each after a window with nothing streaming. A phase's cost
is the hass process's CPU (every thread's schedstat) and RSS at the
window's end, minus those of the idle window before it; the medians are
compared. Every window asks the integration's diagnostics what the
prebuffer holds every 5 s. The prebuffer's own thread and Home Assistant's
`stream_worker` thread are given as context.

Run from the repository root (about 30 min on a 2-core machine):

    .venv/bin/python bench/instant_start.py [--runs 5] [--window 30] [--port 18273]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import itertools
from pathlib import Path
import random
import shutil
import sys
import time
from typing import Any

import aiohttp
from harness import Bench, Share, promote_http_config, run_bench
from report import median, note, out, verdict
from time_to_first_frame import (
    Clients,
    _end_share,
    _generic_camera,
    _rtsp_cameras,
    _share_url,
    keyframe_interval,
)

from tools.city.browser import chromium

TARGET_S = 0.5
CPU_TARGET = 1.1
INTERVALS = (1, 4)
CLIENTS = ("ffprobe", "ffmpeg", "hlsjs")
LABELS = {
    "ffprobe": "ffprobe on stream_url",
    "ffmpeg": "ffmpeg on stream_url",
    "hlsjs": "hls.js in Chromium on stream_url",
}
PREBUFFER_THREAD = "rtcc_share preb"
HA_WORKER_THREAD = "stream_worker"


@dataclass
class Camera:
    """One RTSP camera and the shares and cameras reading it."""

    interval: int
    url: str
    instant: Share
    plain: Share
    preload: str
    # Client -> seconds to the first frame, with and without instant start.
    with_instant: dict[str, list[float]] = field(default_factory=dict)
    without: dict[str, list[float]] = field(default_factory=dict)
    buffered_at_grant: list[float] = field(default_factory=list)


async def _diagnostics(bench: Bench, share: Share) -> dict[str, Any]:
    """The instant start part of the entry's diagnostics."""
    result = await bench.api.call(
        "GET", f"/api/diagnostics/config_entry/{share.entry_id}"
    )
    data: dict[str, Any] = result["data"]["instant_start"]
    return data


async def _until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _buffering(bench: Bench, share: Share) -> None:
    async def check() -> bool:
        diagnostics = await _diagnostics(bench, share)
        return bool(diagnostics.get("camera_connected")) and (
            diagnostics["buffered_bytes"] > 0
        )

    await _until(check, 30, "the prebuffer")


async def _first_frames(
    bench: Bench, camera: Camera, runs: int, clients: Clients, rng: random.Random
) -> None:
    """Each client, each run: a grant with instant start, then one without."""
    for index, client in itertools.product(range(runs), CLIENTS):
        watch: Callable[[str, float], Awaitable[float]] = getattr(clients, client)
        for share, results in (
            (camera.instant, camera.with_instant),
            (camera.plain, camera.without),
        ):
            if share is camera.instant:
                await _buffering(bench, share)
            # A random moment of the camera's keyframe interval.
            await asyncio.sleep(rng.uniform(0, camera.interval))
            if share is camera.instant:
                buffered = (await _diagnostics(bench, share))["buffered_s"]
                camera.buffered_at_grant.append(float(buffered))
            activation = f"IS-{camera.interval}-{index:02d}-{client}-{len(results)}"
            url, t0 = await _share_url(bench, share, activation)
            results.setdefault(client, []).append(await watch(url, t0))
            await _end_share(bench, share, activation)
        note(
            f"{camera.interval} s keyframes, run {index + 1} {client}: instant "
            f"{camera.with_instant[client][-1]:.2f} s, without "
            f"{camera.without[client][-1]:.2f} s"
        )


def _first_frame_lines(camera: Camera, runs: int) -> None:
    for client in CLIENTS:
        value = median(camera.with_instant[client])
        anchor = median(camera.without[client])
        out(
            f"instant start, {camera.interval} s keyframes: time to first frame "
            f"after the 201, {LABELS[client]}, median of {runs}: {value:.2f} s vs "
            f"the same share without instant start {anchor:.2f} s = ratio "
            f"{value / anchor:.2f} (target <= {TARGET_S:.2f} s) "
            f"{verdict(value <= TARGET_S)}"
        )
    details = {
        "instant": {
            k: [round(v, 2) for v in vs] for k, vs in camera.with_instant.items()
        },
        "without": {k: [round(v, 2) for v in vs] for k, vs in camera.without.items()},
    }
    out(
        f"  buffered interval at the grant (s), median "
        f"{median(camera.buffered_at_grant):.2f}, all "
        f"{[round(b, 2) for b in camera.buffered_at_grant]}; details {details}"
    )


# Idle cost


def _threads(pid: int) -> dict[str, tuple[str, int]]:
    """Each live thread's name and CPU time (ns)."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            threads[task.name] = (
                name,
                int((task / "schedstat").read_text().split()[0]),
            )
        except FileNotFoundError, ProcessLookupError:
            continue
    return threads


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Window:
    """One idle-cost window."""

    phase: str
    cpu_pct: float
    thread_pct: float
    rss_mb: float
    held: list[tuple[float, int]] = field(default_factory=list)


async def _window(
    bench: Bench, phase: str, seconds: float, share: Share, thread: str
) -> Window:
    """Measure the hass process for seconds.

    What the prebuffer holds is sampled every 5 s in every window (the same
    diagnostics request whatever runs, so it costs every phase alike).
    """
    pid = bench.hass.pid
    before, began = _threads(pid), time.monotonic()
    held: list[tuple[float, int]] = []
    while time.monotonic() - began < seconds:
        await asyncio.sleep(min(5, seconds - (time.monotonic() - began)))
        diagnostics = await _diagnostics(bench, share)
        held.append(
            (diagnostics.get("buffered_s", 0.0), diagnostics.get("buffered_bytes", 0))
        )
    after, wall = _threads(pid), time.monotonic() - began
    total = sum(ns - before.get(tid, ("", 0))[1] for tid, (_, ns) in after.items())
    named = sum(
        ns - before.get(tid, ("", 0))[1]
        for tid, (name, ns) in after.items()
        if name == thread
    )
    window = Window(
        phase, total / 1e9 / wall * 100, named / 1e9 / wall * 100, _rss_mb(pid), held
    )
    note(
        f"window {phase}: {window.cpu_pct:.2f} % of a core (thread "
        f"{window.thread_pct:.2f} %), RSS {window.rss_mb:.1f} MB"
    )
    return window


async def _preload(bench: Bench, camera: str, on: bool) -> None:
    await bench.api.ws(
        {"type": "camera/update_prefs", "entity_id": camera, "preload_stream": on}
    )
    if on:
        # Started once, as a dashboard would; with preload on it never idles out.
        await bench.api.ws({"type": "camera/stream", "entity_id": camera})


async def _no_ha_worker(bench: Bench) -> None:
    async def check() -> bool:
        names = {name for name, _ in _threads(bench.hass.pid).values()}
        return HA_WORKER_THREAD not in names

    # Home Assistant stops a stream whose output has been idle for 30 s.
    await _until(check, 90, "Home Assistant's preload stream to stop")


PHASES = (
    *("idle", "prebuffer", "idle", "preload"),
    *("idle", "preload", "idle", "prebuffer"),
)


async def _idle_cost(bench: Bench, camera: Camera, seconds: float) -> None:
    """Prebuffer and preload windows, each after an idle one; print the lines."""
    api = bench.api
    share = camera.instant
    windows: list[Window] = []
    for phase in PHASES:
        await api.set_consent(share, phase == "prebuffer")
        if phase == "prebuffer":
            await _buffering(bench, share)
        if phase == "preload":
            await _preload(bench, camera.preload, True)
        await asyncio.sleep(3)  # settled: connected, first segments made
        thread = PREBUFFER_THREAD if phase == "prebuffer" else HA_WORKER_THREAD
        windows.append(await _window(bench, phase, seconds, share, thread))
        if phase == "preload":
            await _preload(bench, camera.preload, False)
            await _no_ha_worker(bench)

    def of(phase: str) -> list[Window]:
        return [w for w in windows if w.phase == phase]

    def added(phase: str) -> tuple[float, float]:
        """Median CPU (% of a core) and RSS (MB) over the idle window before."""
        pairs = [
            (w, windows[index - 1])
            for index, w in enumerate(windows)
            if w.phase == phase
        ]
        return (
            median([w.cpu_pct - idle.cpu_pct for w, idle in pairs]),
            median([w.rss_mb - idle.rss_mb for w, idle in pairs]),
        )

    pre_cpu, pre_rss = added("prebuffer")
    ha_cpu, ha_rss = added("preload")
    out(
        f"instant start, {camera.interval} s keyframes: idle cost, Home Assistant "
        f"CPU with the prebuffer running: {pre_cpu:.2f} % of a core vs its own "
        f"preload stream of the same camera {ha_cpu:.2f} % = ratio "
        f"{pre_cpu / ha_cpu:.2f} (target <= {CPU_TARGET}) "
        f"{verdict(pre_cpu <= CPU_TARGET * ha_cpu)}"
    )
    held = [h for w in of("prebuffer") for h in w.held]
    held_s = max(s for s, _ in held)
    held_mb = max(b for _, b in held) / 2**20
    out(
        f"instant start, {camera.interval} s keyframes: idle cost, memory Home "
        f"Assistant adds with the prebuffer running (RSS): {pre_rss:.1f} MB vs its "
        f"own preload stream {ha_rss:.1f} MB (target <= the preload stream's + "
        f"one buffered interval, {held_mb:.2f} MB) "
        f"{verdict(pre_rss <= ha_rss + held_mb)}"
    )
    idle = of("idle")
    out(
        f"  context: idle Home Assistant {median([w.cpu_pct for w in idle]):.2f} % "
        f"of a core, RSS {median([w.rss_mb for w in idle]):.1f} MB; the "
        f"prebuffer's thread {median([w.thread_pct for w in of('prebuffer')]):.2f} "
        f"%, Home Assistant's stream_worker thread "
        f"{median([w.thread_pct for w in of('preload')]):.2f} %; the prebuffer "
        f"held at most {held_s:.2f} s ({held_mb:.2f} MB) of a {camera.interval} s "
        f"keyframe interval; windows (phase, % of a core, RSS MB) "
        f"{[(w.phase, round(w.cpu_pct, 2), round(w.rss_mb, 1)) for w in windows]}"
    )


async def measure(bench: Bench, args: argparse.Namespace) -> None:
    """Both cameras: first frames, then the idle cost."""
    await promote_http_config(bench.api)
    api = bench.api
    rng = random.Random(20261206)
    with _rtsp_cameras(args.rtsp_port) as rtsp:
        urls = {i: rtsp.start(f"kfi{i}", i) for i in INTERVALS}
        await asyncio.sleep(3)
        cameras = []
        for interval, url in urls.items():
            note(f"adding 3 generic cameras for the {interval} s RTSP feed")
            instant, plain, preload = [
                await _generic_camera(bench, url) for _ in range(3)
            ]
            measured = await asyncio.get_running_loop().run_in_executor(
                None, keyframe_interval, url
            )
            note(f"{interval} s feed: measured keyframe interval {measured:.2f} s")
            cameras.append(
                Camera(
                    interval,
                    url,
                    await api.add_share(
                        instant, max_activations_per_day=24, instant_start=True
                    ),
                    await api.add_share(plain, max_activations_per_day=24),
                    preload,
                )
            )
        async with chromium() as page:
            clients = Clients(bench.session, page)
            with clients.viewer:
                for camera in cameras:
                    for share in (camera.instant, camera.plain):
                        await api.set_consent(share, True)
                    await _first_frames(bench, camera, args.runs, clients, rng)
                    _first_frame_lines(camera, args.runs)
        # Nothing else streams while one camera's idle cost is measured.
        for camera in cameras:
            for share in (camera.instant, camera.plain):
                await api.set_consent(share, False)
        for camera in cameras:
            await _idle_cost(bench, camera, args.window)


async def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=float, default=30, help="seconds")
    parser.add_argument("--port", type=int, default=18273)
    parser.add_argument(
        "--rtsp-port", type=int, default=18284, help="RTSP server (uses +1, +10..)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    for tool in ("ffprobe", "ffmpeg", "chromium", "rtsp-server-perl"):
        if shutil.which(tool) is None:
            sys.exit(f"instant_start: {tool} is not installed (scripts/setup)")
    await run_bench(args.port, lambda bench: measure(bench, args), keep=args.keep)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except aiohttp.ClientError as err:
        sys.exit(f"instant_start: {type(err).__name__}: {err}")
