"""Shared parts of the benchmarks: a scratch Home Assistant and its clients.

Not a benchmark itself. Every benchmark that needs Home Assistant starts a
real `hass` process, like scripts/develop does, but with:

- a scratch configuration folder under /tmp (removed at the end), whose
  configuration.yaml is config/configuration.yaml with the port changed, the
  log level lowered to `warning` (Home Assistant's own default; the dev
  config logs rtcc_share at debug) and, unless asked otherwise, the
  bench-only integration `bench/rtcc_bench` (a bare webhook, the history
  reset, a camera with any stream source) added;
- `custom_components` symlinks to the repository's `rtcc_share`, the demo
  doorbell (config/custom_components/demo_doorbell) and `rtcc_bench`;
- no `--debug` (asyncio debug mode would slow everything down unevenly);
- its own port on 127.0.0.1 (never 8123, which belongs to scripts/develop),
  set with an `http:` block (migrated to .storage/http on the first start).

The owner account, the config flow and the options flow are driven over
Home Assistant's HTTP API, as tools/demo does (an async copy of its
`Instance`), and city requests are signed with tests/common.py's `City`.
Also here: an LL-HLS `Viewer` (optionally in its own process,
`ViewerProcess`) and a live MPEG-TS `LiveFeed` of the demo clip served
outside Home Assistant (optionally in its own process, `FeedProcess`); run
as a script, this module is those two child processes. Children get SIGTERM
if the benchmark dies. All traffic stays on 127.0.0.1.
"""

# ruff: noqa: INP001
import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import ctypes
from dataclasses import dataclass, field
import io
import itertools
import json
import math
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Final, NoReturn
from urllib.parse import urljoin

import aiohttp
from aiohttp import web

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import note  # noqa: E402

# Sign exactly as the tests do.
from tests.common import City, ended, requested  # noqa: E402, TID251
from tests.video import make_video  # noqa: E402, TID251

HOST: Final = "127.0.0.1"
HASS_BIN: Final = REPO / ".venv" / "bin" / "hass"
DEV_CONFIG: Final = REPO / "config" / "configuration.yaml"
DEMO_DOORBELL: Final = REPO / "config" / "custom_components" / "demo_doorbell"
DEMO_CLIP: Final = REPO / "config" / "demo_doorbell.mp4"
BENCH_INTEGRATION: Final = REPO / "bench" / "rtcc_bench"
DEMO_CAMERA: Final = "camera.demo_doorbell"
FEED_CAMERA_NAME: Final = "Bench feed"
FEED_CAMERA: Final = "camera.bench_feed"
RING_CAMERA_NAME: Final = "Bench ring"
RING_CAMERA: Final = "camera.bench_ring"
FILE_CAMERA_NAME: Final = "Bench file"
FILE_CAMERA: Final = "camera.bench_file"
LIVE_PATH: Final = "/api/demo_doorbell/live.ts"
USERNAME: Final = "bench"
PR_SET_PDEATHSIG: Final = 1
# Resolved before any fork: a child only calls it.
_PRCTL: Final = ctypes.CDLL(None, use_errno=True).prctl

__all__ = [
    "DEMO_CAMERA",
    "FEED_CAMERA",
    "FEED_CAMERA_NAME",
    "FILE_CAMERA",
    "HOST",
    "LIVE_PATH",
    "REPO",
    "RING_CAMERA",
    "RING_CAMERA_NAME",
    "City",
    "ended",
    "requested",
]


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the benchmark dies (Linux).

    Covers what no cleanup handler can: the benchmark being SIGKILLed. Only
    used for children forked by the event loop's thread, which lives as long
    as the benchmark.
    """
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM a child process, SIGKILL it if it has not gone after 10 s."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()


def machine() -> str:
    """Describe the machine in one line (for the README)."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} CPUs, {model}, {mem_kb / 2**20:.0f} GiB RAM"


# The scratch Home Assistant


def scratch_config(
    port: int,
    *,
    bench_webhook_id: str | None,
    extra_cameras: dict[str, str] | None = None,
    ring_like_cameras: tuple[str, ...] = (),
    file_camera: bool = False,
    quiet: bool = True,
) -> Path:
    """Write a scratch configuration folder and return its path.

    extra_cameras: name -> stream source of `rtcc_bench` cameras to add.
    ring_like_cameras: which of them stream only over WebRTC, signalled like
    Home Assistant's Ring camera (their source is read, never offered).
    file_camera: also add `camera.bench_file`, whose source is a local H.264
    MP4 made with tests/video.py (1 s keyframes, 8 s, no audio).
    """
    folder = Path(tempfile.mkdtemp(prefix=f"rtcc-bench-{port}-"))
    extra_cameras = dict(extra_cameras or {})
    if file_camera:
        extra_cameras[FILE_CAMERA_NAME] = str(
            make_video(folder / "doorbell.mp4", seconds=8)
        )
    text = DEV_CONFIG.read_text().replace("8123", str(port))
    if not re.search(r"^http:", text, flags=re.MULTILINE):
        # Home Assistant 2026.10 keeps HTTP settings in .storage/http; a fresh
        # folder takes them once from YAML (a deprecation repair is raised).
        text += f"\nhttp:\n  server_host: {HOST}\n  server_port: {port}\n"
    if quiet:
        text = re.sub(
            r"^logger:\n(?:[ \t]+.*\n|\n)*",
            "logger:\n  default: warning\n\n",
            text,
            flags=re.MULTILINE,
        )
    cameras = "".join(
        f"  - platform: rtcc_bench\n    name: {name}\n    stream_source: {source}\n"
        + ("    ring_like: true\n" if name in ring_like_cameras else "")
        for name, source in extra_cameras.items()
    )
    if cameras:
        anchor = "camera:\n  - platform: demo_doorbell\n"
        if anchor not in text:
            raise RuntimeError("config/configuration.yaml has no demo_doorbell camera")
        text = text.replace(anchor, anchor + cameras)
    if bench_webhook_id is not None:
        text += f"\nrtcc_bench:\n  webhook_id: {bench_webhook_id}\n"
    (folder / "configuration.yaml").write_text(text)
    components = folder / "custom_components"
    components.mkdir()
    (components / "rtcc_share").symlink_to(REPO / "custom_components" / "rtcc_share")
    (components / "demo_doorbell").symlink_to(DEMO_DOORBELL)
    if bench_webhook_id is not None or cameras:
        (components / "rtcc_bench").symlink_to(BENCH_INTEGRATION)
    if DEMO_CLIP.exists():
        # The demo doorbell encodes its 30 s clip on first start; reuse it.
        shutil.copyfile(DEMO_CLIP, folder / DEMO_CLIP.name)
    return folder


class HassProcess:
    """A real `hass` process on a scratch config folder and a loopback port."""

    def __init__(self, config_dir: Path, port: int) -> None:
        """Run Home Assistant with this folder on this port."""
        self.config_dir = config_dir
        self.port = port
        self.base = f"http://{HOST}:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the process id."""
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    def start(self) -> None:
        """Start hass, its output going to hass.out in the scratch folder."""
        log = (self.config_dir / "hass.out").open("ab")
        self.proc = subprocess.Popen(
            [str(HASS_BIN), "--config", str(self.config_dir), "--skip-pip"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no lock is taken
        )
        log.close()

    async def wait_up(self, timeout: float = 120) -> float:
        """Wait until the HTTP server answers; return the seconds it took."""
        began = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - began < timeout:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"hass exited during start-up; see {self.config_dir}/hass.out"
                    )
                try:
                    async with session.get(
                        f"{self.base}/manifest.json",
                        timeout=aiohttp.ClientTimeout(total=2),
                    ) as response:
                        if response.status == 200:
                            return time.monotonic() - began
                except aiohttp.ClientError, TimeoutError:
                    pass
                await asyncio.sleep(0.5)
        raise TimeoutError(f"hass did not answer within {timeout} s")

    def thread_cpu(self) -> dict[str, int]:
        """CPU time of each live thread, in ns (/proc/<pid>/task/*/schedstat)."""
        times: dict[str, int] = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                times[task.name] = int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError, ProcessLookupError:
                continue  # the thread ended meanwhile
        return times

    @staticmethod
    def cpu_between(before: dict[str, int], after: dict[str, int]) -> float:
        """Seconds of CPU between two thread_cpu() snapshots.

        Threads that ended in between are missed; threads started in between
        count in full.
        """
        return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9

    def kill9(self) -> None:
        """SIGKILL the process (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """Stop gracefully (SIGTERM), SIGKILL after the timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


# Talking to it


@dataclass(slots=True)
class Share:
    """One rtcc_share config entry, as the city and the resident see it."""

    entry_id: str
    camera: str
    webhook_url: str
    key: str
    city: City
    entities: dict[str, str] = field(default_factory=dict)

    @property
    def consent(self) -> str:
        """Return the consent switch's entity id."""
        return self.entities["consent"]

    @property
    def live_sensor(self) -> str:
        """Return the live-share binary sensor's entity id."""
        return self.entities["live_share"]

    @property
    def stop_button(self) -> str:
        """Return the stop button's entity id."""
        return self.entities["stop_sharing"]


class Api:
    """An owner's HTTP (and websocket) client of one Home Assistant."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        """Use this session (its own connection pool) for base."""
        self.base = base
        self.session = session
        self.client_id = f"{base}/"
        self.token = ""

    @property
    def auth(self) -> dict[str, str]:
        """Return the owner's Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request with the owner's token; raise on non-2xx."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as response:
            body = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:300]!r}")
            return json.loads(body) if body else None

    async def onboard(self, password: str) -> None:
        """Create the owner and finish onboarding (tools/demo's steps)."""
        code = (
            await self.call(
                "POST",
                "/api/onboarding/users",
                json={
                    "client_id": self.client_id,
                    "name": "Bench resident",
                    "username": USERNAME,
                    "password": password,
                    "language": "en",
                },
            )
        )["auth_code"]
        await self._token(code)
        for step, body in (
            ("core_config", None),
            ("analytics", None),
            ("integration", {"client_id": self.client_id, "redirect_uri": self.base}),
        ):
            await self.call("POST", f"/api/onboarding/{step}", json=body)

    async def wait_running(self, timeout: float = 120) -> None:
        """Wait until Home Assistant has finished starting (state RUNNING)."""
        async with asyncio.timeout(timeout):
            while (await self.call("GET", "/api/config"))["state"] != "RUNNING":
                await asyncio.sleep(0.2)

    async def login(self, username: str, password: str) -> None:
        """Log in through the login flow."""
        flow = await self.call(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.base,
            },
        )
        result = await self.call(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": username,
                "password": password,
            },
        )
        await self._token(result["result"])

    async def _token(self, code: str) -> None:
        async with self.session.post(
            self.base + "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as response:
            response.raise_for_status()
            self.token = (await response.json())["access_token"]

    async def add_share(self, camera: str, **options: Any) -> Share:
        """Run the config and options flows as the resident would."""
        flow = await self.call(
            "POST", "/api/config/config_entries/flow", json={"handler": "rtcc_share"}
        )
        step = f"/api/config/config_entries/flow/{flow['flow_id']}"
        flow = await self.call(
            "POST", step, json={"camera_entity_id": camera, "agency_name": "Bench"}
        )
        if flow.get("step_id") != "key":
            raise RuntimeError(f"config flow stopped at {flow}")
        flow = await self.call("POST", step, json={"key_mode": "generate"})
        placeholders = flow["description_placeholders"]
        entry_id = flow["result"]["entry_id"]
        form = await self.call(
            "POST",
            "/api/config/config_entries/options/flow",
            json={"handler": entry_id},
        )
        defaults = {
            item["name"]: item.get("description", {}).get("suggested_value")
            for item in form["data_schema"]
        }
        await self.call(
            "POST",
            f"/api/config/config_entries/options/flow/{form['flow_id']}",
            json={
                **{k: v for k, v in defaults.items() if v is not None},
                "allow_http_stream_url": True,
                **options,
            },
        )
        share = Share(
            entry_id=entry_id,
            camera=camera,
            # Without an external URL the flow shows the webhook's path only.
            webhook_url=urljoin(self.base, placeholders["webhook_url"]),
            key=placeholders["secret"],
            city=City(placeholders["secret"]),
        )
        share.entities = await self.entities(entry_id)
        return share

    async def entities(self, entry_id: str) -> dict[str, str]:
        """Return an rtcc_share entry's entity ids by key (`consent`, ...)."""
        registry = await self.ws({"type": "config/entity_registry/list"})
        prefix = f"{entry_id}_"
        return {
            item["unique_id"].removeprefix(prefix): item["entity_id"]
            for item in registry
            if item.get("config_entry_id") == entry_id
            and str(item.get("unique_id", "")).startswith(prefix)
        }

    async def ws(self, message: dict[str, Any]) -> Any:
        """Send one websocket command and return its result."""
        async with self.session.ws_connect(self.base + "/api/websocket") as socket:
            await socket.receive_json()  # auth_required
            await socket.send_json({"type": "auth", "access_token": self.token})
            if (reply := await socket.receive_json())["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {reply}")
            await socket.send_json({"id": 1, **message})
            reply = await socket.receive_json()
        if not reply.get("success"):
            raise RuntimeError(f"websocket {message['type']}: {reply}")
        return reply["result"]

    async def service(
        self, domain: str, name: str, data: dict[str, Any], *, response: bool = False
    ) -> Any:
        """Call an action (service)."""
        query = "?return_response" if response else ""
        return await self.call(
            "POST", f"/api/services/{domain}/{name}{query}", json=data
        )

    async def state(self, entity_id: str) -> dict[str, Any]:
        """Return an entity's state object."""
        result: dict[str, Any] = await self.call("GET", f"/api/states/{entity_id}")
        return result

    async def set_consent(self, share: Share, on: bool) -> None:
        """Turn the consent switch on or off."""
        await self.service(
            "switch", "turn_on" if on else "turn_off", {"entity_id": share.consent}
        )

    async def reset_history(self, share: Share) -> None:
        """Empty the share history (resets the daily budget; bench only)."""
        await self.call("POST", f"/api/rtcc_bench/reset/{share.entry_id}")


async def post_signed(
    session: aiohttp.ClientSession, share: Share, payload: dict[str, Any]
) -> tuple[int, dict[str, Any], float]:
    """Sign and POST a city message; return status, JSON body, seconds taken."""
    body, headers = share.city.sign(payload)
    began = time.perf_counter()
    async with session.post(share.webhook_url, data=body, headers=headers) as response:
        raw = await response.read()
    elapsed = time.perf_counter() - began
    return response.status, json.loads(raw) if raw else {}, elapsed


async def activate(
    session: aiohttp.ClientSession,
    share: Share,
    activation_id: str,
    **changes: Any,
) -> tuple[int, dict[str, Any], float]:
    """Send a signed activation.requested."""
    return await post_signed(session, share, requested(activation_id, **changes))


async def end(
    session: aiohttp.ClientSession, share: Share, activation_id: str
) -> tuple[int, dict[str, Any], float]:
    """Send a signed activation.ended."""
    return await post_signed(session, share, ended(activation_id))


@dataclass
class Bench:
    """A started, onboarded scratch Home Assistant and its owner client."""

    hass: HassProcess
    api: Api
    session: aiohttp.ClientSession
    bench_webhook_url: str | None
    startup_s: float

    @classmethod
    async def start(
        cls,
        port: int,
        *,
        bench_webhook: bool = True,
        extra_cameras: dict[str, str] | None = None,
        ring_like_cameras: tuple[str, ...] = (),
        file_camera: bool = False,
    ) -> Bench:
        """Write the scratch config, start hass, create the owner."""
        webhook_id = secrets.token_hex(32) if bench_webhook else None
        folder = scratch_config(
            port,
            bench_webhook_id=webhook_id,
            extra_cameras=extra_cameras,
            ring_like_cameras=ring_like_cameras,
            file_camera=file_camera,
        )
        hass = HassProcess(folder, port)
        note(f"{machine()}; starting Home Assistant on {hass.base} in {folder}")
        hass.start()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        try:
            startup = await hass.wait_up()
            api = Api(hass.base, session)
            await api.onboard(secrets.token_urlsafe(12))
            await api.wait_running()
        except BaseException:
            await session.close()
            hass.stop(timeout=10)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        note(f"Home Assistant answered after {startup:.1f} s; owner created, running")
        return cls(
            hass=hass,
            api=api,
            session=session,
            bench_webhook_url=(
                f"{hass.base}/api/webhook/{webhook_id}" if webhook_id else None
            ),
            startup_s=startup,
        )

    async def close(self, *, keep: bool = False) -> None:
        """Stop hass and remove the scratch folder (unless keep)."""
        await self.session.close()
        began = time.monotonic()
        self.hass.stop()
        note(f"Home Assistant stopped in {time.monotonic() - began:.1f} s")
        if keep:
            note(f"kept {self.hass.config_dir}")
        else:
            shutil.rmtree(self.hass.config_dir, ignore_errors=True)


async def run_bench(
    port: int,
    body: Callable[[Bench], Any],
    *,
    keep: bool = False,
    **start_kwargs: Any,
) -> Any:
    """Start a Bench, run body(bench), always clean up (also on Ctrl-C/SIGTERM)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    bench = await Bench.start(port, **start_kwargs)
    try:
        return await body(bench)
    finally:
        await bench.close(keep=keep)


def bench_main(
    doc: str,
    port: int,
    measure: Callable[[Bench, argparse.Namespace], Awaitable[None]],
    *,
    options: dict[str, dict[str, Any]] | None = None,
    feed_cameras: tuple[str, ...] = (),
    ring_like_cameras: tuple[str, ...] = (),
    serves_feed: bool = False,
    file_camera: bool = False,
) -> NoReturn:
    """Run a benchmark script: parse its options, run measure on a Bench, exit.

    Every script takes `--port` (default `port`) and `--keep` besides its own
    `options` (flag -> add_argument keywords). `feed_cameras` name cameras
    reading the demo clip's live feed on feed_url(port), which a FeedProcess
    serves while measure runs, unless the script `serves_feed` itself;
    `ring_like_cameras` name cameras that read it too but stream it only over
    WebRTC, signalled like Home Assistant's Ring camera. A lost connection
    ends the script with a one-line message instead of a traceback.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for flag, kwargs in (options or {}).items():
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    extra_cameras = dict.fromkeys(
        (*feed_cameras, *ring_like_cameras), feed_url(args.port)
    )

    async def body(bench: Bench) -> None:
        feed = bool(extra_cameras) and not serves_feed
        async with feed_process(bench) if feed else contextlib.nullcontext():
            await measure(bench, args)

    async def main() -> int:
        await run_bench(
            args.port,
            body,
            keep=args.keep,
            file_camera=file_camera,
            extra_cameras=extra_cameras or None,
            ring_like_cameras=ring_like_cameras,
        )
        return 0

    try:
        sys.exit(asyncio.run(main()))
    except aiohttp.ClientError as err:
        sys.exit(f"{Path(sys.argv[0]).stem}: {type(err).__name__}: {err}")


# Watching a stream


def decode_first_frame(init: bytes, media: bytes) -> tuple[int, int]:
    """Decode the first video frame of init + a segment or part; return its size."""
    import av  # noqa: PLC0415 - only the stream benchmarks need it

    with av.open(io.BytesIO(init + media), format="mp4") as container:
        for frame in container.decode(video=0):
            return frame.width, frame.height
    raise RuntimeError("no video frame")


HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="\./segment/(\d+)\.(\d+)\.m4s"')
PART = re.compile(r'#EXT-X-PART:DURATION=([\d.]+),URI="\./segment/(\d+)\.(\d+)\.m4s"')
EXTINF = re.compile(r"#EXTINF:([\d.]+),\n\./segment/(\d+)\.m4s")


@dataclass
class Playlist:
    """What an LL-HLS client needs from a media playlist."""

    hint: tuple[int, int] | None
    parts: list[tuple[int, int]]
    complete: dict[int, float]

    @classmethod
    def parse(cls, text: str) -> Playlist:
        """Parse HA's media playlist."""
        hint = HINT.search(text)
        return cls(
            hint=(int(hint[1]), int(hint[2])) if hint else None,
            parts=[(int(m[2]), int(m[3])) for m in PART.finditer(text)],
            complete={int(m[2]): float(m[1]) for m in EXTINF.finditer(text)},
        )


@dataclass
class ViewLog:
    """What a viewer saw: when each part and each complete segment arrived."""

    parts: list[tuple[float, int, int]] = field(default_factory=list)
    segments: dict[int, float] = field(default_factory=dict)
    durations: dict[int, float] = field(default_factory=dict)
    live_at: float | None = None
    error: str | None = None
    bytes: int = 0

    def part_gaps(self, since: float = 0.0, until: float = math.inf) -> list[float]:
        """Gaps between consecutive parts that touch [since, until]."""
        times = [t for t, _, _ in self.parts]
        return [
            b - a for a, b in itertools.pairwise(times) if b >= since and a <= until
        ]

    def segment_gaps(self, since: float = 0.0, until: float = math.inf) -> list[float]:
        """Gaps between consecutive complete segments that touch [since, until]."""
        times = [self.segments[s] for s in sorted(self.segments)]
        return [
            b - a for a, b in itertools.pairwise(times) if b >= since and a <= until
        ]


@dataclass
class Viewer(ViewLog):
    """An LL-HLS viewer: master playlist, then blocking playlist + part requests.

    Follows the live edge like hls.js in low-latency mode: it asks for the
    media playlist with `_HLS_msn`/`_HLS_part` of the hinted next part (the
    server holds the request until that part exists), fetches every new part,
    and records when each part and each complete segment arrived (monotonic
    clock). `report`, if given, is called with each part and segment.
    """

    session: aiohttp.ClientSession | None = None
    master_url: str = ""
    report: Callable[[dict[str, Any]], None] | None = None

    async def _get(self, url: str) -> bytes:
        assert self.session is not None
        async with self.session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"{response.status} for {url.rsplit('/', 1)[-1]}")
            data = await response.read()
        self.bytes += len(data)
        return data

    async def run(self, stop: asyncio.Event, deadline: float) -> None:
        """Watch until stop is set or the monotonic deadline passes."""
        try:
            await self._run(stop, deadline)
        except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
            if not stop.is_set():
                self.error = f"{type(err).__name__}: {err}"

    async def _run(self, stop: asyncio.Event, deadline: float) -> None:
        assert self.session is not None
        base = self.master_url.rsplit("/", 1)[0]
        master = (await self._get(self.master_url)).decode()
        media = next(line for line in master.splitlines() if line.endswith(".m3u8"))
        playlist = Playlist.parse((await self._get(f"{base}/{media}")).decode())
        await self._get(f"{base}/init.mp4")
        if playlist.hint is None:
            raise RuntimeError("no preload hint: LL-HLS is off")
        start = playlist.hint
        fetched: set[tuple[int, int]] = set()
        while not stop.is_set() and time.monotonic() < deadline:
            msn, part = playlist.hint or start
            request = self.session.get(
                f"{base}/{media}?_HLS_msn={msn}&_HLS_part={part}",
                timeout=aiohttp.ClientTimeout(
                    total=max(1.0, deadline - time.monotonic())
                ),
            )
            async with request as response:
                if response.status != 200:
                    raise RuntimeError(f"{response.status} for blocking playlist")
                text = (await response.read()).decode()
            playlist = Playlist.parse(text)
            for item in playlist.parts:
                if item >= start and item not in fetched:
                    await self._get(f"{base}/segment/{item[0]}.{item[1]}.m4s")
                    fetched.add(item)
                    now = time.monotonic()
                    self.live_at = self.live_at or now
                    self.parts.append((now, *item))
                    if self.report:
                        self.report({"part": [now, *item], "bytes": self.bytes})
            for sequence, duration in playlist.complete.items():
                if sequence >= start[0] and sequence not in self.segments:
                    listed = [p for p in playlist.parts if p[0] == sequence]
                    if listed and all(p in fetched for p in listed):
                        now = time.monotonic()
                        self.segments[sequence] = now
                        self.durations[sequence] = duration
                        if self.report:
                            self.report({"segment": [sequence, now, duration]})


class ViewerProcess(ViewLog):
    """A Viewer in its own process, so a busy benchmark loop cannot delay it.

    Runs `python bench/harness.py --viewer URL`, which reports every part and
    segment as a JSON line (CLOCK_MONOTONIC is system-wide, so its times
    compare with this process's), and stops on SIGTERM.
    """

    def __init__(self, master_url: str, limit_s: float) -> None:
        """Watch master_url for at most limit_s seconds."""
        super().__init__()
        self.master_url = master_url
        self.limit_s = limit_s
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the viewer process."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--viewer",
            self.master_url,
            "--limit",
            str(self.limit_s),
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self._reader = asyncio.create_task(self._read())

    @property
    def running(self) -> bool:
        """Return True while the viewer process runs."""
        return self._proc is not None and self._proc.returncode is None

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for line in self._proc.stdout:
            event = json.loads(line)
            if "part" in event:
                moment, sequence, number = event["part"]
                self.parts.append((moment, sequence, number))
                self.live_at = self.live_at or moment
                self.bytes = event["bytes"]
            elif "segment" in event:
                sequence, moment, duration = event["segment"]
                self.segments[sequence] = moment
                self.durations[sequence] = duration
            elif "end" in event:
                self.error = event["end"]["error"]
                self.bytes = event["end"]["bytes"]

    async def stop(self) -> None:
        """Stop the viewer and collect what it reported."""
        if self._proc is None:
            return
        await _terminate(self._proc)
        if self._reader is not None:
            await self._reader


async def _viewer_main(url: str, limit_s: float) -> None:
    """Entry point of ViewerProcess: watch, report JSON lines, stop on SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def report(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        viewer = Viewer(session=session, master_url=url, report=report)
        task = asyncio.create_task(viewer.run(stop, time.monotonic() + limit_s))
        await asyncio.wait(
            [task, asyncio.create_task(stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        stop.set()
        await task
    report({"end": {"error": viewer.error, "bytes": viewer.bytes}})


class LiveFeed:
    """The demo doorbell's clip as a real-time MPEG-TS feed, served by the bench.

    The same clip, container and pace as the demo doorbell's live view (15 fps,
    a keyframe every second, each connection starting at the clip's start),
    but outside Home Assistant's process, so its cost does not count as Home
    Assistant's, and it stops the moment a client goes away (the demo
    doorbell's serving thread runs on to the end of its 30 s clip). Records
    every connection, so the benchmarks can count camera connections.
    """

    def __init__(self, clip: Path, port: int) -> None:
        """Serve clip at http://127.0.0.1:port/live.ts."""
        self.clip = clip
        self.port = port
        self.url = f"http://{HOST}:{port}/live.ts"
        # [opened, closed or None] per connection, monotonic seconds.
        self.connections: list[list[float | None]] = []
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def active(self) -> int:
        """Return the number of open connections."""
        return sum(1 for _, closed in self.connections if closed is None)

    def opened_since(self, moment: float) -> int:
        """Count connections accepted at or after a monotonic moment."""
        return sum(
            1
            for opened, _ in self.connections
            if opened is not None and opened >= moment
        )

    def active_since(self, moment: float) -> int:
        """Count open connections that were accepted at or after moment."""
        return sum(
            1
            for opened, closed in self.connections
            if closed is None and opened is not None and opened >= moment
        )

    async def start(self) -> None:
        """Listen on loopback."""
        app = web.Application()
        app.router.add_get("/live.ts", self._live)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    async def close(self) -> None:
        """Stop serving, dropping open connections at once."""
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _live(self, request: web.Request) -> web.StreamResponse:
        record: list[float | None] = [time.monotonic(), None]
        self.connections.append(record)
        if (task := asyncio.current_task()) is not None:
            self._handlers.add(task)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        stop = threading.Event()
        thread = threading.Thread(
            target=_feed, args=(self.clip, loop, queue, stop), daemon=True
        )
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        try:
            await response.prepare(request)
            thread.start()
            while True:
                await response.write(await queue.get())
        except ConnectionError, asyncio.CancelledError:
            pass
        finally:
            stop.set()
            record[1] = time.monotonic()
            if task is not None:
                self._handlers.discard(task)
        return response


def _feed(
    clip: Path,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[bytes],
    stop: threading.Event,
) -> None:
    """Remux the clip, looped, into MPEG-TS at real-time pace until stop."""
    import av  # noqa: PLC0415

    from config.custom_components.demo_doorbell.clip import packets  # noqa: PLC0415

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            chunk = bytes(data)
            future = asyncio.run_coroutine_threadsafe(queue.put(chunk), loop)
            while not stop.is_set():
                try:
                    future.result(timeout=0.2)
                    break
                except TimeoutError:
                    continue
            else:
                future.cancel()
            return len(chunk)

    with av.open(str(clip)) as template, av.open(Sink(), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(template.streams.video[0])
        started = time.monotonic()
        for packet, at in packets(clip, stop):
            if (ahead := at - (time.monotonic() - started)) > 0:
                time.sleep(ahead)
            packet.stream = stream
            out.mux(packet)


def feed_url(port: int) -> str:
    """The LiveFeed URL of a benchmark whose Home Assistant uses `port`."""
    return f"http://{HOST}:{port + 1}/live.ts"


class FeedProcess:
    """A LiveFeed in its own process, so a busy benchmark loop cannot delay it."""

    def __init__(self, clip: Path, port: int) -> None:
        """Serve clip on http://127.0.0.1:port/live.ts."""
        self.clip = clip
        self.port = port
        self.url = f"http://{HOST}:{port}/live.ts"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the feed process and wait until it accepts connections."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--feed",
            str(self.clip),
            str(self.port),
            preexec_fn=_die_with_parent,
        )
        async with asyncio.timeout(20):
            while True:
                try:
                    _, writer = await asyncio.open_connection(HOST, self.port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                return

    async def close(self) -> None:
        """Stop the feed process."""
        if self._proc is not None:
            await _terminate(self._proc)


@contextlib.asynccontextmanager
async def _serving[F: (LiveFeed, FeedProcess)](feed: F) -> AsyncIterator[F]:
    """Run a feed while the block runs."""
    await feed.start()
    try:
        yield feed
    finally:
        await feed.close()


def serve_feed(bench: Bench) -> contextlib.AbstractAsyncContextManager[LiveFeed]:
    """Serve the demo clip on feed_url(port) while the block runs."""
    return _serving(
        LiveFeed(bench.hass.config_dir / DEMO_CLIP.name, bench.hass.port + 1)
    )


def feed_process(bench: Bench) -> contextlib.AbstractAsyncContextManager[FeedProcess]:
    """Serve the demo clip on feed_url(port) from a separate process."""
    return _serving(
        FeedProcess(bench.hass.config_dir / DEMO_CLIP.name, bench.hass.port + 1)
    )


async def _feed_main(clip: Path, port: int) -> None:
    """Entry point of FeedProcess: serve until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with _serving(LiveFeed(clip, port)):
        await stop.wait()


if __name__ == "__main__":
    # Only for ViewerProcess (`--viewer URL --limit SECONDS`) and FeedProcess
    # (`--feed CLIP PORT`).
    if len(sys.argv) == 5 and sys.argv[1] == "--viewer" and sys.argv[3] == "--limit":
        asyncio.run(_viewer_main(sys.argv[2], float(sys.argv[4])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--feed":
        asyncio.run(_feed_main(Path(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit("harness.py is a library; see bench/README.md")


async def promote_http_config(api: Api) -> None:
    """Confirm the scratch config's HTTP settings (taken once from YAML).

    Home Assistant 2026.10 otherwise treats them as a trial and restarts
    itself five minutes after start to revert them, ending a longer bench.
    """
    with contextlib.suppress(RuntimeError):  # nothing pending to confirm
        await api.ws({"type": "http/config/promote"})
