"""Benchmark: what one privacy-masked share of a 720p camera costs.

Claims checked (privacy masks, contract 1.2):

- CPU: one masked share of a 1280x720 15 fps camera (the masking: decode,
  paint, encode; plus Home Assistant remuxing the masked stream, as it
  remuxes any camera) uses at most 0.25 of one core;
- bitrate: the masked stream is no bigger than the camera's own stream of
  the same picture, and at most 2 Mbit/s;
- latency: the mask adds at most 150 ms per frame, from a camera packet
  read to its masked packet served to the reader (p99);
- memory: one masked share adds at most 60 MB RSS;
- through a real grant (the integration masking in Home Assistant, privacy
  masks set in its options): the city's first frame comes at most one
  masked keyframe interval + 1.5 s (2.5 s) after the 201, for ffprobe and
  for hls.js in headless Chromium on the stream_url; after 30 s hls.js
  shows a picture at most 2 s behind live; and the whole masked share
  (masking, serving it, Home Assistant's remux, one LL-HLS viewer) uses at
  most 0.25 of one core.

Every figure is printed against Home Assistant's own remux of the same
camera (its camera stream, `camera/stream`), measured in the same run.

How: the camera is a 20 s 1280x720 15 fps H.264 clip made here with PyAV
(a street scene: textured houses, three things moving across it, sensor
noise), encoded the way a camera encodes: libx264 `veryfast`, 2 Mbit/s
(VBV 2 Mbit/s over 1 s), a keyframe every second, no B-frames. It is
served as a real-time looped MPEG-TS on loopback (`harness.LiveFeed`, port
+ 1), which counts the camera connections. A child process of this script
(`--serve-masked`) runs the masking (`MaskedSource`, the integration's own
code) on that camera with two masks covering 37 % of the picture (the left
30 %, a window at the top right): its CPU (/proc/<pid>/stat, every thread,
ended ones included) and RSS are the masking's own. A real Home Assistant
(`bench/harness.py`, port 18183 by default) has two `rtcc_bench` cameras:
the camera itself and the masked source's URL. Each phase plays one of
them with one LL-HLS viewer (`harness.Viewer`) through Home Assistant's
own stream (what a share's stream does with its source), and measures for
`--window` seconds once the viewer has its first part; phases interleave:

    own camera A1, masked B1, own camera A2, masked B2

and each waits until the previous stream (Home Assistant stops it 30 s
after its last request, the masking 5 s after its last reader) has left
the camera. The masked share's CPU is the child's plus Home Assistant's in
the masked windows; the masking's own figures (ms per frame, latency,
bitrate of what it encodes) come from its `PipelineStats`.

Then the same camera is shared through a real grant: an rtcc_share entry for
it with the same masks set in its options flow, consent on, lab mode. A
window (C) of one LL-HLS viewer on the stream_url of a granted share
measures Home Assistant's CPU, which now holds the masking too, against the
own-camera windows. For the first frames, each of `--grant-runs` runs per
client gets a fresh grant (t0: its 201) and, as the anchor, a fresh
`rtcc_bench` camera of the same feed whose own stream is cold (t0: the
`camera/stream` answer), with time_to_first_frame.py's clients (ffprobe,
the city viewer page's hls.js 1.7.4 in Debian's `chromium`). Behind live:
hls.js plays a granted share, and a fresh camera's own stream, for 30 s;
the figure is the wall clock minus the shown frame's EXT-X-PROGRAM-DATE-TIME
(which Home Assistant stamps as it muxes, after the masking), plus the
masking's own p99 latency measured above.

Run from the repository root (about 9 min on a 2-core machine):

    .venv/bin/python bench/mask_cost.py [--window 30] [--grant-runs 3]
        [--port 18183]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import argparse
import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
import itertools
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

import aiohttp
from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    Bench,
    LiveFeed,
    Share,
    Viewer,
    _die_with_parent,
    activate,
    end,
    feed_url,
    machine,
    promote_http_config,
    run_bench,
)
from report import median, note, out, percentile, verdict
from time_to_first_frame import Clients

from custom_components.rtcc_share.live.mask_pipeline import KEYFRAME_INTERVAL_S
from custom_components.rtcc_share.live.masked_source import MaskedSource
from custom_components.rtcc_share.live.masks import format_masks
from tools.city.browser import Page, chromium

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 15, 20
CAMERA_BITRATE = 2_000_000
MASKS = ((0.0, 0.0, 0.3, 1.0), (0.7, 0.0, 1.0, 0.25))
MASKED_NAME = "Bench masked"
MASKED_CAMERA = "camera.bench_masked"
CPU_TARGET = 0.25
BITRATE_TARGET = 2_000_000
LATENCY_TARGET_S = 0.150
MEMORY_TARGET_MB = 60
FIRST_FRAME_TARGET_S = KEYFRAME_INTERVAL_S + 1.5
BEHIND_TARGET_S = 2.0
GRANT_CLIENTS = ("ffprobe", "hlsjs")
GRANT_LABELS = {"ffprobe": "ffprobe", "hlsjs": "hls.js in Chromium"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The camera


def camera_clip(path: Path) -> Path:
    """Encode the camera's clip (about 10 s of work); see the docstring."""
    import av  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(7)
    y = np.mgrid[0:HEIGHT, 0:WIDTH][0]
    texture = np.kron(
        rng.normal(0, 18, (HEIGHT // 4, WIDTH // 4)), np.ones((4, 4))
    ).astype(np.float32)
    scene = (60 + 120 * (1 - y / HEIGHT)).astype(np.float32)
    for x0, y0, x1, y1, level in (
        (0, 200, 380, 720, 110),
        (420, 260, 860, 640, 150),
        (900, 180, 1280, 720, 90),
    ):
        scene[y0:y1, x0:x1] = level + texture[y0:y1, x0:x1]
    for left in range(40, WIDTH, 110):
        scene[300:360, left : left + 50] = 200  # windows
    scene[640:] = 80 + rng.normal(0, 10, (HEIGHT - 640, WIDTH))  # the street
    chroma = np.concatenate(
        [
            np.full((HEIGHT // 4, WIDTH), 120, np.uint8),
            np.full((HEIGHT // 4, WIDTH), 136, np.uint8),
        ]
    )
    movers = (
        (90, 430, 220, 80, 230),
        (-140, 520, 120, 300, 40),
        (60, 250, 90, 60, 250),
    )
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        codec = stream.codec_context
        codec.gop_size = FPS
        codec.bit_rate = codec.max_bit_rate = codec.rc_buffer_size = CAMERA_BITRATE
        codec.options = {"preset": "veryfast", "bf": "0", "sc_threshold": "0"}
        for index in range(SECONDS * FPS):
            picture = scene.copy()
            for number, (speed, top, height, width, level) in enumerate(movers):
                left = (
                    int((number * 400 + speed * index / FPS) % (WIDTH + width)) - width
                )
                x0, x1 = max(0, left), min(WIDTH, left + width)
                if x1 > x0:
                    picture[top : top + height, x0:x1] = (
                        level + 1.5 * texture[top : top + height, x0:x1]
                    )
            picture += rng.normal(0, 2, (HEIGHT, WIDTH)).astype(np.float32)
            luma = np.clip(picture, 16, 235).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(
                np.concatenate([luma, chroma]), format="yuv420p"
            )
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def clip_bitrate(path: Path) -> float:
    """Return the clip's H.264 bits per second."""
    import av  # noqa: PLC0415

    with av.open(str(path)) as container:
        size = sum(packet.size for packet in container.demux(video=0))
    return size * 8 / SECONDS


# The masking, in its own process


async def _serve_masked(camera: str) -> None:
    """Child: mask the camera; print the URL, then stats on every stdin line."""

    async def source() -> str:
        return camera

    masked = MaskedSource(source, MASKS)
    await masked.async_open()
    sys.stdout.write(json.dumps({"url": masked.url}) + "\n")
    sys.stdout.flush()
    # Until the benchmark closes stdin.
    while await asyncio.to_thread(sys.stdin.readline):
        stats = masked.stats
        status = dict(
            line.split(":", 1)
            for line in Path("/proc/self/status").read_text().splitlines()
        )
        sys.stdout.write(
            json.dumps(
                {
                    "running": masked.running,
                    "frames_decoded": stats.frames_decoded,
                    "frames_encoded": stats.frames_encoded,
                    "bytes_encoded": stats.bytes_encoded,
                    "decode_s": stats.decode_s,
                    "paint_s": stats.paint_s,
                    "encode_s": stats.encode_s,
                    "latencies": list(stats.latencies),
                    "rss_kb": int(status["VmRSS"].split()[0]),
                }
            )
            + "\n"
        )
        sys.stdout.flush()
    await masked.async_close()


@dataclass
class MaskProcess:
    """The child process that masks the camera."""

    proc: asyncio.subprocess.Process
    url: str

    def cpu_s(self) -> float:
        """Return the process's CPU seconds so far (every thread)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / CLOCK_TICKS

    async def stats(self) -> dict[str, Any]:
        """Ask the child for its figures."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        result: dict[str, Any] = json.loads(await self.proc.stdout.readline())
        return result


@contextlib.asynccontextmanager
async def mask_process(camera: str) -> AsyncIterator[MaskProcess]:
    """Run the masking child while the block runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve-masked",
        camera,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            url = json.loads(await proc.stdout.readline())["url"]
        yield MaskProcess(proc, url)
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


# The phases


@dataclass
class Window:
    """One phase's measurements."""

    phase: str
    wall_s: float
    hass_cpu_s: float
    mask_cpu_s: float = 0.0
    mask: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)

    @property
    def cores(self) -> float:
        """Return the share's CPU in cores: Home Assistant's plus the masking's."""
        return (self.hass_cpu_s + self.mask_cpu_s) / self.wall_s


async def _stream_url(bench: Bench, camera: str) -> str:
    result = await bench.api.ws({"type": "camera/stream", "entity_id": camera})
    return f"{bench.hass.base}{result['url']}"


async def _wait_camera_idle(feed: LiveFeed) -> None:
    async with asyncio.timeout(90):
        while feed.active:
            await asyncio.sleep(0.2)


async def _window(
    bench: Bench,
    session: aiohttp.ClientSession,
    url: str,
    phase: str,
    seconds: float,
    masking: MaskProcess | None,
) -> Window:
    """One viewer on a master playlist URL; figures over `seconds` once live."""
    stop = asyncio.Event()
    viewer = Viewer(session=session, master_url=url)
    task = asyncio.create_task(viewer.run(stop, time.monotonic() + seconds + 90))
    async with asyncio.timeout(60):
        while viewer.live_at is None:
            if viewer.error or task.done():
                raise RuntimeError(f"{phase}: viewer failed: {viewer.error}")
            await asyncio.sleep(0.1)
    began, hass0 = time.monotonic(), bench.hass.thread_cpu()
    mask0 = masking.cpu_s() if masking else 0.0
    stats0 = await masking.stats() if masking else {}
    rss: list[int] = []
    while time.monotonic() - began < seconds:
        await asyncio.sleep(1)
        if masking:
            rss.append((await masking.stats())["rss_kb"])
    wall = time.monotonic() - began
    window = Window(phase, wall, bench.hass.cpu_between(hass0, bench.hass.thread_cpu()))
    if masking:
        window.mask_cpu_s = masking.cpu_s() - mask0
        stats1 = await masking.stats()
        window.mask = {
            key: stats1[key] - stats0[key]
            for key in (
                "frames_decoded",
                "frames_encoded",
                "bytes_encoded",
                "decode_s",
                "paint_s",
                "encode_s",
            )
        }
        window.latencies = stats1["latencies"][-int(wall * FPS) :]
        window.rss_kb = rss
    stop.set()
    await task
    note(f"{phase}: {100 * window.cores:.1f} % of a core")
    return window


def own_cameras(runs: int) -> list[str]:
    """Names of the fresh cameras for HA's own cold streams (and one to play)."""
    return [f"Bench own {n}" for n in range(runs * len(GRANT_CLIENTS) + 1)]


@dataclass
class Granted:
    """The masked share through real grants: first frames, behind live, CPU."""

    share_s: dict[str, list[float]] = field(default_factory=dict)
    own_s: dict[str, list[float]] = field(default_factory=dict)
    share_play: dict[str, Any] = field(default_factory=dict)
    own_play: dict[str, Any] = field(default_factory=dict)
    window: Window | None = None


async def _grant(bench: Bench, share: Share, activation: str) -> tuple[str, float]:
    status, reply, _ = await activate(bench.session, share, activation)
    t0 = time.monotonic()
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    return str(reply["stream_url"]), t0


async def _end(bench: Bench, share: Share, activation: str) -> None:
    status, reply, _ = await end(bench.session, share, activation)
    if status != 200:
        raise RuntimeError(f"activation.ended answered {status} {reply}")
    await bench.api.reset_history(share)


async def _behind_live(page: Page, clients: Clients, url: str) -> dict[str, Any]:
    """hls.js's stats after playing url for 30 s."""
    await page.goto(clients.viewer.page_url(url))
    await asyncio.sleep(30)
    stats: dict[str, Any] = await page.js("window.viewerStats")
    await page.goto("about:blank")
    return stats


async def measure_grants(
    bench: Bench,
    session: aiohttp.ClientSession,
    feed: LiveFeed,
    window_s: float,
    runs: int,
) -> Granted:
    """The masked share through real grants."""
    share = await bench.api.add_share(
        FEED_CAMERA,
        privacy_masks=format_masks(MASKS),
        max_activations_per_day=24,
        max_share_minutes_per_day=1440,
    )
    await bench.api.set_consent(share, True)
    result = Granted()
    await _wait_camera_idle(feed)
    url, _ = await _grant(bench, share, "MASK-CPU")
    result.window = await _window(
        bench, session, url, "masked share C (granted)", window_s, None
    )
    await _end(bench, share, "MASK-CPU")
    own = iter(own_cameras(runs))
    async with chromium() as page:
        clients = Clients(session, page)
        with clients.viewer:
            for index, client in itertools.product(range(runs), GRANT_CLIENTS):
                watch = getattr(clients, client)
                activation = f"MASK-TTFF-{index:02d}-{client}"
                url, t0 = await _grant(bench, share, activation)
                result.share_s.setdefault(client, []).append(await watch(url, t0))
                await _end(bench, share, activation)
                camera = f"camera.{next(own).lower().replace(' ', '_')}"
                url, t0 = await _stream_url(bench, camera), time.monotonic()
                result.own_s.setdefault(client, []).append(await watch(url, t0))
                note(
                    f"run {index + 1} {client}: masked share "
                    f"{result.share_s[client][-1]:.2f} s, HA's own stream "
                    f"{result.own_s[client][-1]:.2f} s"
                )
            url, _ = await _grant(bench, share, "MASK-BEHIND")
            result.share_play = await _behind_live(page, clients, url)
            await _end(bench, share, "MASK-BEHIND")
            camera = f"camera.{next(own).lower().replace(' ', '_')}"
            result.own_play = await _behind_live(
                page, clients, await _stream_url(bench, camera)
            )
    return result


async def measure(
    bench: Bench, feed: LiveFeed, masking: MaskProcess, window_s: float, runs: int
) -> None:
    """Run the phases, print the summary lines."""
    # A longer run than the 5 min Home Assistant's HTTP settings last untold.
    await promote_http_config(bench.api)
    load_before = os.getloadavg()
    idle_rss_kb = (await masking.stats())["rss_kb"]
    windows: list[Window] = []
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        for run in (1, 2):
            for name, camera, child in (
                (f"own camera A{run}", FEED_CAMERA, None),
                (f"masked B{run}", MASKED_CAMERA, masking),
            ):
                await _wait_camera_idle(feed)
                url = await _stream_url(bench, camera)
                windows.append(
                    await _window(bench, session, url, name, window_s, child)
                )
        granted = await measure_grants(bench, session, feed, window_s, runs)
    load_after = os.getloadavg()
    report(windows, idle_rss_kb, clip_bitrate(feed.clip), load_before, load_after)
    report_grants(granted, windows, runs)


def report(
    windows: list[Window],
    idle_rss_kb: int,
    camera_bps: float,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    """Print the figures."""
    own = [w for w in windows if w.phase.startswith("own")]
    masked = [w for w in windows if w.phase.startswith("masked")]
    wall = sum(w.wall_s for w in masked)
    own_cores = sum(w.hass_cpu_s for w in own) / sum(w.wall_s for w in own)
    share_cores = sum(w.hass_cpu_s + w.mask_cpu_s for w in masked) / wall
    mask_cores = sum(w.mask_cpu_s for w in masked) / wall
    remux_cores = sum(w.hass_cpu_s for w in masked) / wall
    decoded = sum(w.mask["frames_decoded"] for w in masked)
    encoded = sum(w.mask["frames_encoded"] for w in masked)
    per_frame = {
        stage: 1000 * sum(w.mask[f"{stage}_s"] for w in masked) / count
        for stage, count in (
            ("decode", decoded),
            ("paint", encoded),
            ("encode", encoded),
        )
    }
    out(
        f"mask cost: CPU of one masked share of a {WIDTH}x{HEIGHT} {FPS} fps camera "
        f"(masking + Home Assistant's remux of it): {100 * share_cores:.1f} % of a "
        f"core vs Home Assistant's own remux of the camera {100 * own_cores:.2f} % "
        f"= ratio {share_cores / own_cores:.1f} (target <= {100 * CPU_TARGET:.0f} % "
        f"of a core) {verdict(share_cores <= CPU_TARGET)}"
    )
    out(
        f"  where the time goes: decode {per_frame['decode']:.2f} ms, paint "
        f"{per_frame['paint']:.2f} ms, encode {per_frame['encode']:.2f} ms per frame "
        f"({decoded:.0f} frames decoded, {encoded:.0f} encoded); the masking process "
        f"{100 * mask_cores:.1f} % of a core, Home Assistant remuxing the masked "
        f"stream {100 * remux_cores:.2f} %"
    )
    masked_bps = sum(w.mask["bytes_encoded"] for w in masked) * 8 / wall
    bitrate_ok = masked_bps <= camera_bps and masked_bps <= BITRATE_TARGET
    out(
        f"mask cost: bitrate of the masked stream: {masked_bps / 1000:.0f} kbit/s vs "
        f"the camera's own stream of the same picture {camera_bps / 1000:.0f} kbit/s "
        f"= ratio {masked_bps / camera_bps:.2f} (target <= 1 and <= "
        f"{BITRATE_TARGET / 1000:.0f} kbit/s) {verdict(bitrate_ok)}"
    )
    latencies = [s for w in masked for s in w.latencies]
    p99 = percentile(latencies, 99)
    out(
        f"mask cost: latency the mask adds, p99 (camera packet read -> masked packet "
        f"served), n={len(latencies)}: {1000 * p99:.0f} ms vs one frame "
        f"{1000 / FPS:.1f} ms = ratio {p99 * FPS:.1f} (target <= "
        f"{1000 * LATENCY_TARGET_S:.0f} ms) {verdict(p99 <= LATENCY_TARGET_S)}"
    )
    out(
        f"  latency: median {1000 * percentile(latencies, 50):.0f} ms, p95 "
        f"{1000 * percentile(latencies, 95):.0f} ms, max {1000 * max(latencies):.0f} ms"
    )
    added_mb = (max(r for w in masked for r in w.rss_kb) - idle_rss_kb) / 1024
    out(
        f"mask cost: memory one masked share adds (the masking process's RSS while "
        f"masking minus idle, {idle_rss_kb / 1024:.0f} MB): {added_mb:.0f} MB vs "
        f"target {MEMORY_TARGET_MB} MB = ratio {added_mb / MEMORY_TARGET_MB:.2f} "
        f"(target <= {MEMORY_TARGET_MB} MB) {verdict(added_mb <= MEMORY_TARGET_MB)}"
    )
    out(
        f"  context: {machine()}; load average (1, 5, 15 min) before "
        f"{', '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{', '.join(f'{v:.2f}' for v in load_after)}; windows of "
        f"{windows[0].wall_s:.0f} s; masks {list(MASKS)}"
    )
    details = [
        {
            "phase": w.phase,
            "hass_cpu_percent": round(100 * w.hass_cpu_s / w.wall_s, 2),
            "mask_cpu_percent": round(100 * w.mask_cpu_s / w.wall_s, 2),
            "rss_mb_max": round(max(w.rss_kb) / 1024) if w.rss_kb else None,
        }
        for w in windows
    ]
    out(f"  details: {json.dumps(details)}")


def report_grants(granted: Granted, windows: list[Window], runs: int) -> None:
    """Print the figures of the masked share through real grants."""
    own = [w for w in windows if w.phase.startswith("own")]
    own_cores = sum(w.hass_cpu_s for w in own) / sum(w.wall_s for w in own)
    assert granted.window is not None
    cores = granted.window.cores
    out(
        f"mask cost: CPU of one masked share through a real grant (Home Assistant "
        f"masking, serving and remuxing it, one LL-HLS viewer), {WIDTH}x{HEIGHT} "
        f"{FPS} fps: {100 * cores:.1f} % of a core vs Home Assistant's own remux of "
        f"the camera {100 * own_cores:.2f} % = ratio {cores / own_cores:.1f} (target "
        f"<= {100 * CPU_TARGET:.0f} % of a core) {verdict(cores <= CPU_TARGET)}"
    )
    for client in GRANT_CLIENTS:
        value, anchor = median(granted.share_s[client]), median(granted.own_s[client])
        out(
            f"mask cost: first frame after the 201 of a masked share, "
            f"{GRANT_LABELS[client]} on stream_url, median of {runs}: {value:.2f} s "
            f"vs HA's own stream of the camera {anchor:.2f} s = ratio "
            f"{value / anchor:.2f} (target <= {FIRST_FRAME_TARGET_S:.2f} s = masked "
            f"keyframe interval {KEYFRAME_INTERVAL_S:.2f} s + 1.5 s) "
            f"{verdict(value <= FIRST_FRAME_TARGET_S)}"
        )
    latencies = [
        s for w in windows if w.phase.startswith("masked") for s in w.latencies
    ]
    mask_p99 = percentile(latencies, 99)
    play, own_play = granted.share_play, granted.own_play
    behind = (play["behindLiveMs"] or float("nan")) / 1000 + mask_p99
    anchor = (own_play["behindLiveMs"] or float("nan")) / 1000
    out(
        f"mask cost: hls.js behind live after 30 s, masked share: {behind:.2f} s "
        f"(the shown frame's EXT-X-PROGRAM-DATE-TIME {behind - mask_p99:.2f} s + the "
        f"masking's p99 {mask_p99:.2f} s; hls.js's own latency estimate "
        f"{(play['latencyMs'] or float('nan')) / 1000:.2f} s) vs HA's own stream "
        f"{anchor:.2f} s ({(own_play['latencyMs'] or float('nan')) / 1000:.2f} s) = "
        f"ratio {behind / anchor:.2f} (target <= {BEHIND_TARGET_S:.0f} s) "
        f"{verdict(behind <= BEHIND_TARGET_S)}"
    )
    details = {
        "share": {k: [round(v, 2) for v in vs] for k, vs in granted.share_s.items()},
        "own": {k: [round(v, 2) for v in vs] for k, vs in granted.own_s.items()},
        "hlsjs_errors": play.get("errors"),
    }
    out(f"  details: {json.dumps(details)}")


async def main() -> int:
    """Make the camera, start the masking and Home Assistant, measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--grant-runs", type=int, default=3, help="first-frame runs per client"
    )
    parser.add_argument("--port", type=int, default=18183)
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtcc-bench-mask-") as folder:
        note(f"encoding the {WIDTH}x{HEIGHT} camera clip")
        clip = camera_clip(Path(folder) / "camera.mp4")
        camera = feed_url(args.port)
        feed = LiveFeed(clip, args.port + 1)
        await feed.start()
        try:
            async with mask_process(camera) as masking:
                await run_bench(
                    args.port,
                    lambda bench: measure(
                        bench, feed, masking, args.window, args.grant_runs
                    ),
                    keep=args.keep,
                    extra_cameras={
                        FEED_CAMERA_NAME: camera,
                        MASKED_NAME: masking.url,
                        **dict.fromkeys(own_cameras(args.grant_runs), camera),
                    },
                )
        finally:
            await feed.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-masked":
        asyncio.run(_serve_masked(sys.argv[2]))
        sys.exit(0)
    try:
        sys.exit(asyncio.run(main()))
    except aiohttp.ClientError as err:
        sys.exit(f"mask_cost: {type(err).__name__}: {err}")
