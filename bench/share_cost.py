"""Benchmark: a live share costs what Home Assistant's own camera stream costs.

Claims checked:

- CPU: Home Assistant's process uses at most 1.1x the CPU during a live share
  with one viewer as during its own camera stream of the same source with
  one viewer;
- upstream: 10 concurrent viewers of one share make one connection to the
  camera, like one viewer does (the share's single stream fans out).

How: starts a real Home Assistant (`bench/harness.py`, port 18163 by
default) whose source camera (an `rtcc_bench` camera) reads the demo
doorbell's clip as a real-time MPEG-TS feed (15 fps, 1 s keyframes) served by
this script (`harness.LiveFeed`, port + 1, loopback): the feed's own cost
stays out of Home Assistant's process, and the feed records every
connection to the camera. rtcc_share is added for that camera in lab mode,
consent on. CPU is the hass process's CPU time (every thread's
/proc/<pid>/task/<tid>/schedstat, ns resolution) over 30 s windows, each
started once its viewer has received its first part. The viewer is the
LL-HLS client of `harness.Viewer` (master playlist, blocking
playlist requests, every part). Phases, interleaved to cancel drift:

    idle (no stream)  share A1  own stream B1  10 viewers  share A2  own stream B2

- share: a signed activation, the viewer on its stream URL; ended after
  (the share history is emptied through `rtcc_bench` before each grant:
  resets the daily budget, measurement only);
- own stream: the websocket `camera/stream` command (what the frontend
  does), the viewer on the HLS URL it returns; Home Assistant stops that
  stream 30 s after its last request, so the next share phase waits (at
  most 60 s) until the feed has no connection;
- 10 viewers: one share, 10 viewers at once; the figure is the largest
  number of simultaneously open camera connections made since the grant,
  sampled every 0.2 s while all 10 watch. (The grant's audio probe opens and
  closes one connection before the stream starts; it is counted in the
  details, not in the figure.)

Both streams only remux (no decoding), so Home Assistant's CPU is well under
1 % of a core either way and the ratio is of small numbers: the output also
shows how much windows of the same kind differ from each other (the noise).

Run from the repository root (about 3.5 min on a 2-core machine):

    .venv/bin/python bench/share_cost.py [--window 30] [--port 18163]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
from dataclasses import dataclass
import json
import time

import aiohttp
from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    Bench,
    LiveFeed,
    Share,
    Viewer,
    activate,
    bench_main,
    end,
    serve_feed,
)
from report import note, out, verdict

CPU_TARGET = 1.1
VIEWERS = 10


@dataclass
class Window:
    """CPU use of one phase."""

    phase: str
    cpu_s: float
    wall_s: float
    viewer_bytes: int

    @property
    def percent(self) -> float:
        """Return CPU use in percent of one core."""
        return 100 * self.cpu_s / self.wall_s


async def _wait_live(viewers: list[Viewer], tasks: list[asyncio.Task[None]]) -> None:
    async with asyncio.timeout(45):
        while not all(v.live_at for v in viewers):
            if failed := [v.error for v in viewers if v.error]:
                raise RuntimeError(f"viewer failed: {failed[0]}")
            if any(t.done() for t in tasks):
                raise RuntimeError("a viewer stopped early")
            await asyncio.sleep(0.1)


async def _cpu_window(
    bench: Bench, session: aiohttp.ClientSession, url: str, phase: str, seconds: float
) -> Window:
    """One viewer on url; CPU of hass over `seconds` once it is live."""
    stop = asyncio.Event()
    viewer = Viewer(session=session, master_url=url)
    task = asyncio.create_task(viewer.run(stop, time.monotonic() + seconds + 60))
    await _wait_live([viewer], [task])
    cpu0, wall0, bytes0 = bench.hass.thread_cpu(), time.monotonic(), viewer.bytes
    await asyncio.sleep(seconds)
    cpu1, wall1 = bench.hass.thread_cpu(), time.monotonic()
    window = Window(
        phase, bench.hass.cpu_between(cpu0, cpu1), wall1 - wall0, viewer.bytes - bytes0
    )
    stop.set()
    await task
    if viewer.error:
        raise RuntimeError(f"{phase}: viewer failed: {viewer.error}")
    note(f"{phase}: {window.percent:.2f} % of a core")
    return window


async def _own_stream_url(bench: Bench) -> str:
    result = await bench.api.ws({"type": "camera/stream", "entity_id": FEED_CAMERA})
    return f"{bench.hass.base}{result['url']}"


async def _wait_camera_idle(feed: LiveFeed) -> float:
    """Wait until no camera connection is open; return the seconds waited."""
    began = time.monotonic()
    async with asyncio.timeout(60):
        while feed.active:
            await asyncio.sleep(0.2)
    return time.monotonic() - began


async def measure(bench: Bench, window_s: float) -> None:
    """Serve the feed, run the phases, print the summary lines."""
    async with serve_feed(bench) as feed:
        await _measure(bench, feed, window_s)


async def _measure(bench: Bench, feed: LiveFeed, window_s: float) -> None:
    api = bench.api
    share: Share = await api.add_share(FEED_CAMERA, max_activations_per_day=24)
    await api.set_consent(share, True)
    windows: list[Window] = []
    grants = 0

    async def share_phase(name: str, session: aiohttp.ClientSession) -> None:
        nonlocal grants
        waited = await _wait_camera_idle(feed)
        if waited > 0.5:
            note(f"waited {waited:.0f} s for Home Assistant's own stream to stop")
        grants += 1
        await api.reset_history(share)
        activation = f"COST-{grants:02d}"
        status, reply, _ = await activate(bench.session, share, activation)
        if status != 201:
            raise RuntimeError(f"activation answered {status} {reply}")
        windows.append(
            await _cpu_window(bench, session, reply["stream_url"], name, window_s)
        )
        await end(bench.session, share, activation)

    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        cpu0, wall0 = bench.hass.thread_cpu(), time.monotonic()
        await asyncio.sleep(window_s / 2)
        idle = Window(
            "idle",
            bench.hass.cpu_between(cpu0, bench.hass.thread_cpu()),
            time.monotonic() - wall0,
            0,
        )

        await share_phase("share A1", session)
        windows.append(
            await _cpu_window(
                bench, session, await _own_stream_url(bench), "own B1", window_s
            )
        )

        # 10 viewers of one share.
        grants += 1
        await api.reset_history(share)
        activation = f"COST-{grants:02d}"
        granted_at = time.monotonic()
        status, reply, _ = await activate(bench.session, share, activation)
        if status != 201:
            raise RuntimeError(f"activation answered {status} {reply}")
        stop = asyncio.Event()
        viewers = [
            Viewer(session=session, master_url=reply["stream_url"])
            for _ in range(VIEWERS)
        ]
        tasks = [
            asyncio.create_task(v.run(stop, time.monotonic() + 90)) for v in viewers
        ]
        await _wait_live(viewers, tasks)
        concurrent: list[int] = []
        for _ in range(int(window_s / 2 / 0.2)):
            concurrent.append(feed.active_since(granted_at))
            await asyncio.sleep(0.2)
        opened_10 = feed.opened_since(granted_at)
        stop.set()
        await asyncio.gather(*tasks)
        if failed := [v.error for v in viewers if v.error]:
            raise RuntimeError(f"a viewer failed: {failed[0]}")
        await end(bench.session, share, activation)
        note(f"10 viewers: at most {max(concurrent)} camera connection(s) open")

        await share_phase("share A2", session)
        windows.append(
            await _cpu_window(
                bench, session, await _own_stream_url(bench), "own B2", window_s
            )
        )

    share_windows = [w for w in windows if w.phase.startswith("share")]
    own_windows = [w for w in windows if w.phase.startswith("own")]
    share_pct = sum(w.cpu_s for w in share_windows) / sum(
        w.wall_s for w in share_windows
    )
    own_pct = sum(w.cpu_s for w in own_windows) / sum(w.wall_s for w in own_windows)
    ratio = share_pct / own_pct
    out(
        f"share cost: Home Assistant CPU during a live share with 1 viewer: "
        f"{100 * share_pct:.2f} % of a core vs its own camera stream of the same "
        f"source with 1 viewer {100 * own_pct:.2f} % = ratio {ratio:.2f} "
        f"(target <= {CPU_TARGET}) {verdict(ratio <= CPU_TARGET)}"
    )
    # With one viewer, the share phases opened probe + stream per grant.
    most = max(concurrent)
    out(
        f"share cost: camera connections open at once with {VIEWERS} viewers of "
        f"one share: {most} vs 1 with one viewer = ratio {most:.1f} (target 1) "
        f"{verdict(most == 1)}"
    )
    spread = max(
        abs(a.percent - b.percent) / min(a.percent, b.percent)
        for a, b in (share_windows, own_windows)
    )
    out(
        f"  context: idle Home Assistant (no stream) {idle.percent:.2f} % of a "
        f"core; windows of {window_s:.0f} s; share minus own stream "
        f"{100 * (share_pct - own_pct):+.2f} % of a core "
        f"({1000 * (share_pct - own_pct):+.2f} ms CPU per second); two windows "
        f"of the same kind differ by up to {100 * spread:.0f} % (noise); the "
        f"{VIEWERS}-viewer grant opened {opened_10} camera connections in all "
        f"(the audio probe, closed before the stream starts, and the stream)"
    )
    details = [
        {
            "phase": w.phase,
            "cpu_percent": round(w.percent, 2),
            "wall_s": round(w.wall_s, 1),
            "viewer_bytes": w.viewer_bytes,
        }
        for w in (idle, *windows)
    ]
    out(f"  details: {json.dumps(details)}")


if __name__ == "__main__":
    bench_main(
        __doc__,
        18163,
        lambda bench, args: measure(bench, args.window),
        options={"--window": {"type": float, "default": 30.0, "help": "seconds"}},
        feed_cameras=(FEED_CAMERA_NAME,),
        serves_feed=True,
    )
