"""Benchmark: how soon after a grant the city sees the first frame, and how well it plays.

Claims checked (issue 13):

- from the 201 of a signed activation to the first decoded frame takes at
  most the source's keyframe interval + 1 s for ffprobe, ffmpeg and hls.js in
  headless Chromium on the stream_url, and at most the keyframe interval +
  one part for a client asking for the first LL-HLS part directly;
- hls.js plays a video-only share smoothly: in 60 s no stall (hls.js's
  bufferStalledError, or a picture frozen for more than about one part),
  at most 3 requests a second, bytes within 1.3x the stream's own bitrate,
  no media file (init section, segment, part) fetched more than twice;
- after 30 s of playing, hls.js shows a picture at most 2 s behind live
  (the wall clock minus the EXT-X-PROGRAM-DATE-TIME of the shown frame);
- a camera that is gone for 5 s and comes back (issue 4): a new part is
  served at most 2 s after its return, hls.js plays again at most 2.5 s
  after it without a fatal error, and ffmpeg decodes again without having
  taken the stream as ended.

Every figure is printed against Home Assistant's own camera stream of the
same source (`camera/stream`, `/api/hls/...`), measured in the same run: a
fresh camera of the same source for each cold start (`rtcc_bench` cameras),
so neither side is measured warm.

How: a real Home Assistant (`bench/harness.py`, port 18133 by default) with
the demo doorbell (a real-time looped H.264 MPEG-TS on loopback, 15 fps,
keyframe every second, no audio), Home Assistant's `generic` camera on
Debian's RTSP server (`rtsp-server-perl`) with ffmpeg publishing a live test
pattern and tone at 1, 2 and 4 s keyframe intervals, and rtcc_share in lab
mode, consent on.
Each client gets a fresh grant (its own cold stream) per run; the moment
the 201 (or HA's `camera/stream` answer) arrives is t0. Clients:
`ffprobe -show_frames -read_intervals %+#1`, `ffmpeg -frames:v 1 -f null`,
the city viewer page (`scripts/city watch`, hls.js 1.7.4) in Debian's
`chromium`, and a PyAV client asking `playlist.m3u8?_HLS_msn=0&_HLS_part=0`.

Note: the demo feed starts every new connection at the start of its clip,
i.e. with a keyframe; the RTSP cameras are joined mid-GOP, which adds up to
one keyframe interval (the target allows for that).

The drop: a fresh share (and a fresh camera of Home Assistant's own) per
run; a part poller (plain playlist requests every 0.1 s, fetching each new
part), ffmpeg (`-vf showinfo -f null`) and hls.js play it for 15 s; the
camera's publisher is stopped for 5 s and started again. A player's return
is the end of its longest stall that ends once new video is served (players
first show what they had buffered).

Run from the repository root (about 40 min on a 2-core machine;
`--clients hlsjs` measures the first frame of hls.js only, and `--drops 0`
leaves the drops out):

    .venv/bin/python bench/time_to_first_frame.py [--runs 3] [--drops 3] [--port 18133]
        [--clients ffprobe ffmpeg hlsjs direct]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass
from fractions import Fraction
import itertools
import math
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp
from harness import (
    DEMO_CAMERA,
    HOST,
    LIVE_PATH,
    Bench,
    Playlist,
    Share,
    activate,
    decode_first_frame,
    end,
    promote_http_config,
    run_bench,
)
from report import median, note, out, verdict

from tools.city.browser import Page, chromium
from tools.city.watch import ViewerServer

PART_INF = re.compile(r"#EXT-X-PART-INF:PART-TARGET=([\d.]+)")
# Read the feed until three keyframes, for at most this long.
KEYFRAME_READ_S = 15


def keyframe_interval(url: str) -> float:
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
            if len(times) >= 3 or time.monotonic() - began > KEYFRAME_READ_S:
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


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"{response.status} for {url.rsplit('/', 1)[-1]}")
        return await response.read()


class Clients:
    """The four clients; each returns seconds from t0 to its first frame."""

    def __init__(self, session: aiohttp.ClientSession, page: Page) -> None:
        """Use this HTTP session and this browser tab."""
        self.session = session
        self.page = page
        self.viewer = ViewerServer(0)
        self.part_s = 0.0

    async def ffprobe(self, url: str, t0: float) -> float:
        """Ffprobe decoding the first frame."""
        return await _first_frame_process(
            [
                "ffprobe", "-v", "error", "-select_streams", "v:0",
                "-read_intervals", "%+#1", "-show_entries", "frame=pts_time",
                "-of", "csv", url,
            ],
            t0,
        )  # fmt: skip

    async def ffmpeg(self, url: str, t0: float) -> float:
        """Ffmpeg decoding the first frame."""
        return await _first_frame_process(
            ["ffmpeg", "-v", "error", "-i", url, "-frames:v", "1", "-f", "null", "-"],
            t0,
        )

    async def hlsjs(self, url: str, t0: float) -> float:
        """hls.js in Chromium, through the city viewer page."""
        wall_t0 = time.time() - (time.monotonic() - t0)
        await self.page.goto(self.viewer.page_url(url))
        async with asyncio.timeout(30):
            while (stats := await self.page.js("window.viewerStats")) is None or (
                stats["firstFrameEpochMs"] is None
            ):
                await asyncio.sleep(0.05)
        await self.page.goto("about:blank")
        return float(stats["firstFrameEpochMs"]) / 1000 - wall_t0

    async def direct(self, url: str, t0: float) -> float:
        """A client asking for the first LL-HLS part directly."""
        run: dict[str, float] = {}
        self.part_s = await first_part(self.session, url, t0, run)
        return run["frame decoded"]


async def _first_frame_process(command: list[str], t0: float) -> float:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"{command[0]} failed: {err.decode()[-200:]}")
    return time.monotonic() - t0


async def first_part(
    session: aiohttp.ClientSession, url: str, t0: float, run: dict[str, float]
) -> float:
    """Fetch and decode the first LL-HLS part; note each step in run.

    Return the playlist's part target.
    """
    base = url.rsplit("/", 1)[0]
    loop = asyncio.get_running_loop()
    # Held until the stream's first part exists.
    text = (
        await _get(session, f"{base}/playlist.m3u8?_HLS_msn=0&_HLS_part=0")
    ).decode()
    run["playlist with part 0"] = time.monotonic() - t0
    if (match := PART_INF.search(text)) is None:
        raise RuntimeError("no EXT-X-PART-INF: LL-HLS is off")
    part_s = float(match[1])
    # Home Assistant numbers its segments from 0, the share from 1.
    if not (parts := Playlist.parse(text).parts) or parts[0] not in {(0, 0), (1, 0)}:
        raise RuntimeError("the first part listed is not the stream's first")
    init = await _get(session, f"{base}/init.mp4")
    run["init.mp4"] = time.monotonic() - t0
    part = await _get(session, f"{base}/segment/{parts[0][0]}.{parts[0][1]}.m4s")
    run["part 0"] = time.monotonic() - t0
    await loop.run_in_executor(None, decode_first_frame, init, part)
    run["frame decoded"] = time.monotonic() - t0
    return part_s


CLIENTS = ("ffprobe", "ffmpeg", "hlsjs", "direct")
LABELS = {
    "ffprobe": "ffprobe on stream_url",
    "ffmpeg": "ffmpeg on stream_url",
    "hlsjs": "hls.js in Chromium on stream_url",
    "direct": "direct LL-HLS first part (_HLS_msn=0&_HLS_part=0)",
}


async def _share_url(bench: Bench, share: Share, activation: str) -> tuple[str, float]:
    status, reply, _ = await activate(bench.session, share, activation)
    t0 = time.monotonic()
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    return str(reply["stream_url"]), t0


async def _ha_url(bench: Bench, camera: str) -> tuple[str, float]:
    result = await bench.api.ws({"type": "camera/stream", "entity_id": camera})
    return bench.hass.base + str(result["url"]), time.monotonic()


async def _end_share(bench: Bench, share: Share, activation: str) -> None:
    status, reply, _ = await end(bench.session, share, activation)
    if status != 200:
        raise RuntimeError(f"activation.ended answered {status} {reply}")
    await bench.api.reset_history(share)


async def _smooth(
    page: Page, viewer: ViewerServer, url: str, seconds: float
) -> dict[str, Any]:
    """Play url in hls.js for `seconds`; the page's stats at 30 s and at the end."""
    began = time.monotonic()
    await page.goto(viewer.page_url(url))
    await asyncio.sleep(30)
    at_30 = await page.js("window.viewerStats")
    await asyncio.sleep(max(seconds - 30, 0))
    stats: dict[str, Any] = await page.js("window.viewerStats")
    stats["played_s"] = time.monotonic() - began
    stats["behind_at_30_s"] = (at_30["behindLiveMs"] or float("nan")) / 1000
    stats["latency_at_30_s"] = (at_30["latencyMs"] or float("nan")) / 1000
    await page.goto("about:blank")
    return stats


async def _bitrate(session: aiohttp.ClientSession, url: str) -> float:
    """The stream's own bitrate (bytes/s) from its complete segments."""
    base = url.rsplit("/", 1)[0]
    master = (await _get(session, url)).decode()
    media = next(line for line in master.splitlines() if line.endswith(".m3u8"))
    playlist = Playlist.parse((await _get(session, f"{base}/{media}")).decode())
    sizes = [
        len(await _get(session, f"{base}/segment/{sequence}.m4s"))
        for sequence in playlist.complete
    ]
    return sum(sizes) / sum(playlist.complete.values())


@dataclass
class Source:
    """One camera source: the share's camera, fresh cameras for HA's own stream."""

    label: str
    feed: str
    share_camera: str
    ha_cameras: list[str]


@dataclass(frozen=True)
class Plan:
    """What to measure: runs of which first-frame clients, seconds of hls.js."""

    runs: int
    play_s: float
    clients: tuple[str, ...] = CLIENTS
    drops: int = 3

    @property
    def ha_cameras(self) -> list[str]:
        """Fresh cameras for HA's own stream: one per cold start, one to play."""
        return [f"ha_own_{n}" for n in range(self.runs * len(self.clients) + 1)]


async def _measure_source(bench: Bench, source: Source, plan: Plan, page: Page) -> None:
    """First frames for each client, then smoothness; print the summary lines."""
    runs, play_s = plan.runs, plan.play_s
    api, session = bench.api, bench.session
    share = await api.add_share(source.share_camera, max_activations_per_day=24)
    await api.set_consent(share, True)
    loop = asyncio.get_running_loop()
    interval = await loop.run_in_executor(None, keyframe_interval, source.feed)
    worker_open = await loop.run_in_executor(None, _worker_style_open, source.feed)
    share_s: dict[str, list[float]] = {c: [] for c in plan.clients}
    ha_s: dict[str, list[float]] = {c: [] for c in plan.clients}
    ha_cameras = iter(source.ha_cameras)
    clients = Clients(session, page)
    with clients.viewer:
        for index, client in itertools.product(range(runs), plan.clients):
            watch: Callable[[str, float], Awaitable[float]] = getattr(clients, client)
            activation = f"TTFF-{index:02d}-{client}"
            url, t0 = await _share_url(bench, share, activation)
            share_s[client].append(await watch(url, t0))
            await _end_share(bench, share, activation)
            url, t0 = await _ha_url(bench, next(ha_cameras))
            ha_s[client].append(await watch(url, t0))
            note(
                f"{source.label} run {index + 1} {client}: share "
                f"{share_s[client][-1]:.2f} s, HA's own stream {ha_s[client][-1]:.2f} s"
            )
        activation = "TTFF-smooth"
        url, _ = await _share_url(bench, share, activation)
        share_play = await _smooth(page, clients.viewer, url, play_s)
        share_rate = await _bitrate(session, url)
        await _end_share(bench, share, activation)
        url, _ = await _ha_url(bench, next(ha_cameras))
        ha_play = await _smooth(page, clients.viewer, url, play_s)
        ha_rate = await _bitrate(session, url)

    part = clients.part_s
    for client in plan.clients:
        extra, extra_label = (part, "one part") if client == "direct" else (1.0, "1 s")
        target = interval + extra
        value, anchor = median(share_s[client]), median(ha_s[client])
        out(
            f"{source.label}: time to first frame, {LABELS[client]}, median of "
            f"{runs}: {value:.2f} s vs HA's own stream {anchor:.2f} s = ratio "
            f"{value / anchor:.2f} (target <= {target:.2f} s = keyframe interval "
            f"{interval:.2f} s + {extra_label}) {verdict(value <= target)}"
        )
    for name, play, rate in (
        ("share", share_play, share_rate),
        ("HA's own stream", ha_play, ha_rate),
    ):
        _smooth_lines(f"{source.label}: {name}", play, rate, play_s)
    behind, anchor = share_play["behind_at_30_s"], ha_play["behind_at_30_s"]
    out(
        f"{source.label}: hls.js behind live after 30 s, share: {behind:.2f} s "
        f"(hls.js's own latency estimate {share_play['latency_at_30_s']:.2f} s) vs "
        f"HA's own stream {anchor:.2f} s ({ha_play['latency_at_30_s']:.2f} s) = "
        f"ratio {behind / anchor:.2f} (target <= 2 s) {verdict(behind <= 2)}"
    )
    part_note = f"share part target {part:.2f} s; " if part else ""
    out(
        f"  context: PyAV opening the feed with default probing (as the stream "
        f"worker does) {worker_open:.2f} s; {part_note}"
        f"behind live = wall clock - EXT-X-PROGRAM-DATE-TIME of the shown frame "
        f"(HA stamps a segment with the time its worker muxed it, i.e. after the "
        f"source was opened)"
    )
    out(f"  details: share {_rounded(share_s)}; HA {_rounded(ha_s)}")


def _rounded(values: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: [round(v, 2) for v in items] for key, items in values.items()}


async def _generic_camera(bench: Bench, url: str) -> str:
    """Add HA's `generic` camera for url through its real config flow."""
    api = bench.api
    flows = "/api/config/config_entries/flow"
    flow = await api.call("POST", flows, json={"handler": "generic"})
    flow = await api.call(
        "POST",
        f"{flows}/{flow['flow_id']}",
        json={
            "stream_source": url,
            # The Debian RTSP server relays over UDP only.
            "advanced": {"framerate": 2, "verify_ssl": False, "rtsp_transport": "udp"},
        },
    )
    if flow.get("step_id") != "user_confirm":
        raise RuntimeError(f"generic camera flow: {flow.get('errors')}")
    flow = await api.call(
        "POST", f"{flows}/{flow['flow_id']}", json={"confirmed_ok": True}
    )
    entry_id = flow["result"]["entry_id"]
    for _ in range(100):
        entities = await api.ws({"type": "config/entity_registry/list"})
        if found := [e for e in entities if e["config_entry_id"] == entry_id]:
            return str(found[0]["entity_id"])
        await asyncio.sleep(0.1)
    raise RuntimeError("the generic camera has no entity")


def _publisher(port: int, mount: str, interval: int) -> list[str]:
    """Return the command that publishes a live test pattern and tone over RTSP."""
    return [
        "ffmpeg", "-v", "error", "-re", "-f", "lavfi",
        "-i", "testsrc2=size=640x360:rate=15", "-re", "-f", "lavfi",
        "-i", "sine=frequency=440:sample_rate=16000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(15 * interval), "-keyint_min", str(15 * interval),
        "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "32k",
        "-f", "rtsp", f"rtsp://{HOST}:{port}/{mount}",
    ]  # fmt: skip


class RtspCameras:
    """Debian's RTSP server with ffmpeg publishing H.264 + AAC in real time.

    One mount per camera: a 640x360 15 fps test pattern with a tone,
    encoded live (as a camera does), so a client joins mid-GOP. A camera
    can be stopped (its publisher ends: the mount is gone) and started again.
    """

    def __init__(self, port: int) -> None:
        """Start the server: clients on port, publishers on port + 1."""
        self.port = port
        self.server = subprocess.Popen(
            [
                "rtsp-server-perl", "-c", str(port), "-s", str(port + 1),
                "--client_listen_address", HOST, "--source_listen_address", HOST,
                "--rtp_start_port", str(port + 10),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.publishers: dict[str, subprocess.Popen[bytes]] = {}
        time.sleep(1)

    def start(self, mount: str, interval: int) -> str:
        """Publish a camera with this keyframe interval; return its URL."""
        self.publishers[mount] = subprocess.Popen(
            _publisher(self.port + 1, mount, interval), stdin=subprocess.DEVNULL
        )
        return f"rtsp://{HOST}:{self.port}/{mount}"

    def stop(self, mount: str) -> None:
        """Stop a camera's publisher: the camera is gone."""
        process = self.publishers.pop(mount)
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)

    def close(self) -> None:
        """Stop every publisher and the server."""
        for mount in list(self.publishers):
            self.stop(mount)
        self.server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.server.wait(10)


@contextlib.contextmanager
def _rtsp_cameras(port: int) -> Iterator[RtspCameras]:
    cameras = RtspCameras(port)
    try:
        yield cameras
    finally:
        cameras.close()


async def measure(bench: Bench, plan: Plan, rtsp_port: int) -> None:
    """Every source: the demo doorbell, the RTSP camera at 1, 2, 4 s; then drops."""
    await promote_http_config(bench.api)
    cameras = len(plan.ha_cameras)
    feed = f"http://{HOST}:{bench.hass.port}{LIVE_PATH}"
    sources = [
        Source(
            "demo doorbell (1 s keyframes, no audio)",
            feed,
            DEMO_CAMERA,
            [f"camera.{name}" for name in plan.ha_cameras],
        )
    ]
    with _rtsp_cameras(rtsp_port) as rtsp:
        urls = {i: rtsp.start(f"kfi{i}", i) for i in (1, 2, 4)}
        drop_url = rtsp.start("drop", DROP_INTERVAL)
        await asyncio.sleep(3)
        for interval, url in urls.items():
            note(f"adding {cameras + 1} generic cameras for the {interval} s RTSP feed")
            entities = [await _generic_camera(bench, url) for _ in range(cameras + 1)]
            sources.append(
                Source(
                    f"RTSP generic camera ({interval} s keyframes, H.264 + AAC)",
                    url,
                    entities[0],
                    entities[1:],
                )
            )
        note(f"adding {plan.drops + 1} generic cameras for the camera that drops")
        dropping = [
            await _generic_camera(bench, drop_url) for _ in range(plan.drops + 1)
        ]
        async with chromium() as page:
            for source in sources:
                await _measure_source(bench, source, plan, page)
            if plan.drops:
                await _measure_drops(bench, rtsp, dropping, plan.drops, page)


# The camera that drops: 1 s keyframes, gone for DROP_S, then back.
DROP_INTERVAL = 1
DROP_S = 5.0
# Playing before the drop, and how long to wait for each player after it.
WARM_S = 15.0
AFTER_S = 35.0
# Players still show (ffmpeg decodes) what they buffered: watch this long after
# new video is served before taking the end of their longest stall.
SETTLE_S = 10.0
SHOWINFO = re.compile(rb"Parsed_showinfo.*\bn: *\d+")


class _PartPoller:
    """Polls the media playlist (plain requests) and fetches each new part."""

    def __init__(self, session: aiohttp.ClientSession, master_url: str) -> None:
        """Watch the share or stream of this master playlist."""
        self.session = session
        self.base = master_url.rsplit("/", 1)[0]
        self.parts: list[tuple[float, tuple[int, int]]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        seen: set[tuple[int, int]] = set()
        while True:
            with contextlib.suppress(aiohttp.ClientError, RuntimeError):
                text = (await _get(self.session, f"{self.base}/playlist.m3u8")).decode()
                for part in Playlist.parse(text).parts:
                    if part not in seen:
                        await _get(
                            self.session, f"{self.base}/segment/{part[0]}.{part[1]}.m4s"
                        )
                        seen.add(part)
                        self.parts.append((time.monotonic(), part))
            await asyncio.sleep(0.1)

    def first_after(self, moment: float) -> float | None:
        """Seconds from moment to the first part served after it."""
        return next((at - moment for at, _ in self.parts if at > moment), None)

    def stop(self) -> None:
        """Stop polling."""
        self._task.cancel()


class _FfmpegWatcher:
    """ffmpeg playing the stream URL; the time of every decoded frame."""

    def __init__(self, url: str) -> None:
        """Start ffmpeg on url (its frames are logged by showinfo)."""
        self.url = url
        self.frames: list[float] = []
        self.process: asyncio.subprocess.Process | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostats", "-v", "info", "-i", self.url, "-an",
            "-vf", "showinfo", "-f", "null", "-",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            if SHOWINFO.search(line):
                self.frames.append(time.monotonic())
        await self.process.wait()

    @property
    def exited(self) -> bool:
        """Return True if ffmpeg has ended (it took the stream as finished)."""
        return self.process is not None and self.process.returncode is not None

    def resumed_after(
        self, dropped: float, served: float | None, returned: float
    ) -> float | None:
        """Seconds from returned to ffmpeg's first frame of new video."""
        return _resumed(self.frames, dropped, served, returned)

    async def stop(self) -> None:
        """Stop ffmpeg."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self._task.cancel()


async def _drop_once(
    bench: Bench,
    rtsp: RtspCameras,
    url: str,
    page: Page,
    viewer: ViewerServer,
) -> dict[str, Any]:
    """Play url in three ways, drop the camera for DROP_S, time each one's return."""
    poller = _PartPoller(bench.session, url)
    ffmpeg = _FfmpegWatcher(url)
    await page.goto(viewer.page_url(url))
    await asyncio.sleep(WARM_S)
    playing = await page.js("window.viewerStats")
    rtsp.stop("drop")
    dropped = time.monotonic()
    # When hls.js shows frames: it plays what it has buffered after the drop.
    shown: list[float] = []
    frames = playing["frames"]
    returned = math.inf
    while time.monotonic() - dropped < DROP_S + AFTER_S:
        if returned == math.inf and time.monotonic() - dropped >= DROP_S:
            rtsp.start("drop", DROP_INTERVAL)
            returned = time.monotonic()
        stats = await page.js("window.viewerStats")
        if stats["frames"] > frames:
            frames = stats["frames"]
            shown.append(time.monotonic())
        served = poller.first_after(returned)
        if served is not None and time.monotonic() > returned + served + SETTLE_S:
            break
        await asyncio.sleep(0.05)
    served_at = None if served is None else returned + served
    result = {
        "served": served,
        "ffmpeg": ffmpeg.resumed_after(dropped, served_at, returned),
        "ffmpeg_exited": ffmpeg.exited,
        "hlsjs": _resumed(shown, dropped, served_at, returned),
        "hlsjs_fatal": stats["fatal"],
        "hlsjs_frames_before": playing["frames"],
    }
    poller.stop()
    await ffmpeg.stop()
    await page.goto("about:blank")
    # Let the camera settle before the next run.
    await asyncio.sleep(2)
    return result


async def _measure_drops(
    bench: Bench, rtsp: RtspCameras, cameras: list[str], drops: int, page: Page
) -> None:
    """The camera drops for DROP_S and returns: the share vs HA's own stream."""
    share = await bench.api.add_share(cameras[0], max_activations_per_day=24)
    await bench.api.set_consent(share, True)
    results: dict[str, list[dict[str, Any]]] = {"share": [], "ha": []}
    with ViewerServer(0) as viewer:
        for index in range(drops):
            activation = f"TTFF-DROP-{index:02d}"
            url, _ = await _share_url(bench, share, activation)
            results["share"].append(await _drop_once(bench, rtsp, url, page, viewer))
            await _end_share(bench, share, activation)
            url, _ = await _ha_url(bench, cameras[1 + index])
            results["ha"].append(await _drop_once(bench, rtsp, url, page, viewer))
            note(
                f"drop {index + 1}: share {results['share'][-1]}, "
                f"HA's own stream {results['ha'][-1]}"
            )
    label = (
        f"RTSP generic camera ({DROP_INTERVAL} s keyframes) gone for {DROP_S:.0f} s, "
        f"from its return to"
    )
    for key, what, target in (
        ("served", "a new part served", 2.0),
        ("hlsjs", "hls.js playing again", 2.5),
        ("ffmpeg", "ffmpeg decoding again", None),
    ):
        share_s = [r[key] for r in results["share"]]
        ha_s = [r[key] for r in results["ha"]]
        value, anchor = _median_or_none(share_s), _median_or_none(ha_s)
        if target is None:
            ok = value is not None and not any(
                r["ffmpeg_exited"] for r in results["share"]
            )
            wanted = "target: plays on, never exits"
        else:
            ok = value is not None and value <= target and None not in share_s
            wanted = f"target <= {target:.2f} s"
        if key == "hlsjs":
            ok = ok and not any(r["hlsjs_fatal"] for r in results["share"])
            wanted += ", no fatal error"
        out(
            f"{label} {what}, median of {drops}: {_seconds(value)} vs HA's own "
            f"stream {_seconds(anchor)} = ratio "
            f"{value / anchor if value is not None and anchor else float('nan'):.2f} "
            f"({wanted}) {verdict(ok)}"
        )
    out(
        "  details: "
        + "; ".join(
            f"{side} "
            + str(
                [
                    {
                        k: (round(v, 2) if isinstance(v, float) else v)
                        for k, v in r.items()
                    }
                    for r in runs
                ]
            )
            for side, runs in (("share", results["share"]), ("HA", results["ha"]))
        )
    )


def _resumed(
    frames: list[float], dropped: float, served: float | None, returned: float
) -> float | None:
    """Seconds from returned to a player's first frame of new video.

    Players show (ffmpeg decodes) what they buffered before the drop for a
    while after it: the drop's stall is the longest one that ends once new
    video is served.
    """
    if served is None:
        return None
    after = [at for at in frames if at > dropped]
    gaps = [
        (later - earlier, later)
        for earlier, later in itertools.pairwise([dropped, *after])
        if later >= served
    ]
    return max(gaps)[1] - returned if gaps else None


def _median_or_none(values: list[float | None]) -> float | None:
    """The median of the runs; None (never) counts as the longest."""
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    return ordered[len(ordered) // 2] if ordered else None


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _smooth_lines(name: str, play: dict[str, Any], rate: float, play_s: float) -> None:
    per_s = play["requests"] / play["played_s"]
    ratio = play["bytes"] / play["played_s"] / rate
    # The media file (init section, segment or part) hls.js fetched most often.
    file, most = max(play["fetches"].items(), key=lambda item: item[1])
    ok = (
        play["stalls"] == 0
        and play["freezes"] == 0
        and per_s <= 3
        and ratio <= 1.3
        and most <= 2
    )
    out(
        f"hls.js smoothness over {play_s:.0f} s, {name}: {play['stalls']} stalls, "
        f"{play['freezes']} freezes (longest {play['longestFreezeMs'] / 1000:.2f} s), "
        f"{per_s:.1f} requests/s, bytes {ratio:.2f}x the stream's own bitrate "
        f"({rate * 8 / 1000:.0f} kbit/s), most fetches of one media file {most} "
        f"({file}) (target 0 stalls, <= 3 requests/s, <= 1.3x, no file more than "
        f"twice) {verdict(ok)}"
    )


async def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--play", type=float, default=60, help="seconds of hls.js")
    parser.add_argument("--port", type=int, default=18133)
    parser.add_argument(
        "--rtsp-port", type=int, default=18154, help="RTSP server (uses +1, +10..)"
    )
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=CLIENTS,
        default=list(CLIENTS),
        help="first-frame clients to measure (smoothness is always measured)",
    )
    parser.add_argument(
        "--drops", type=int, default=3, help="camera drops, each side (5 s each)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    plan = Plan(args.runs, args.play, tuple(args.clients), args.drops)
    for tool in ("ffprobe", "ffmpeg", "chromium", "rtsp-server-perl"):
        if shutil.which(tool) is None:
            sys.exit(f"time_to_first_frame: {tool} is not installed (scripts/setup)")
    feed = f"http://{HOST}:{args.port}{LIVE_PATH}"
    await run_bench(
        args.port,
        lambda bench: measure(bench, plan, args.rtsp_port),
        keep=args.keep,
        extra_cameras=dict.fromkeys(plan.ha_cameras, feed),
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except aiohttp.ClientError as err:
        sys.exit(f"time_to_first_frame: {type(err).__name__}: {err}")
