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
All traffic stays on 127.0.0.1.
"""

# ruff: noqa: INP001
import asyncio
from collections.abc import Callable
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
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Final

import aiohttp

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Sign exactly as the tests do.
from tests.common import City, ended, requested  # noqa: E402, TID251

HOST: Final = "127.0.0.1"
HASS_BIN: Final = REPO / ".venv" / "bin" / "hass"
DEV_CONFIG: Final = REPO / "config" / "configuration.yaml"
DEMO_DOORBELL: Final = REPO / "config" / "custom_components" / "demo_doorbell"
DEMO_CLIP: Final = REPO / "config" / "demo_doorbell.mp4"
BENCH_INTEGRATION: Final = REPO / "bench" / "rtcc_bench"
DEMO_CAMERA: Final = "camera.demo_doorbell"
LIVE_PATH: Final = "/api/demo_doorbell/live.ts"
USERNAME: Final = "bench"
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")

__all__ = [
    "DEMO_CAMERA",
    "HOST",
    "LIVE_PATH",
    "REPO",
    "City",
    "ended",
    "requested",
]


def out(line: str) -> None:
    """Print one line to stdout, flushed (benchmarks run for minutes)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def note(line: str) -> None:
    """Print progress to stderr, so stdout holds only the results."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
    sys.stderr.flush()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    """Return the median."""
    return statistics.median(values)


def verdict(ok: bool) -> str:
    """Return the summary line's last word."""
    return "PASS" if ok else "MISS"


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
    quiet: bool = True,
) -> Path:
    """Write a scratch configuration folder and return its path."""
    folder = Path(tempfile.mkdtemp(prefix=f"rtcc-bench-{port}-"))
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
        for name, source in (extra_cameras or {}).items()
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

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is fields[0]; utime, stime are 14, 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def kill9(self) -> None:
        """SIGKILL the process (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> None:
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
            webhook_url=placeholders["webhook_url"],
            key=placeholders["secret"],
            city=City(placeholders["secret"]),
        )
        registry = await self.ws({"type": "config/entity_registry/list"})
        prefix = f"{entry_id}_"
        share.entities = {
            item["unique_id"].removeprefix(prefix): item["entity_id"]
            for item in registry
            if item.get("config_entry_id") == entry_id
            and str(item.get("unique_id", "")).startswith(prefix)
        }
        return share

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
    ) -> Bench:
        """Write the scratch config, start hass, create the owner."""
        webhook_id = secrets.token_hex(32) if bench_webhook else None
        folder = scratch_config(
            port, bench_webhook_id=webhook_id, extra_cameras=extra_cameras
        )
        hass = HassProcess(folder, port)
        note(f"starting Home Assistant on {hass.base} in {folder}")
        hass.start()
        try:
            startup = await hass.wait_up()
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100),
                timeout=aiohttp.ClientTimeout(total=60),
            )
            api = Api(hass.base, session)
            await api.onboard(secrets.token_urlsafe(12))
        except BaseException:
            hass.stop(timeout=10)
            raise
        note(f"Home Assistant answered after {startup:.1f} s; owner created")
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
        self.hass.stop()
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
class Viewer:
    """An LL-HLS viewer: master playlist, then blocking playlist + part requests.

    Follows the live edge like hls.js in low-latency mode: it asks for the
    media playlist with `_HLS_msn`/`_HLS_part` of the hinted next part (the
    server holds the request until that part exists), fetches every new part,
    and records when each part and each complete segment arrived.
    """

    session: aiohttp.ClientSession
    master_url: str
    parts: list[tuple[float, int, int]] = field(default_factory=list)
    segments: dict[int, float] = field(default_factory=dict)
    durations: dict[int, float] = field(default_factory=dict)
    live_at: float | None = None
    error: str | None = None
    bytes: int = 0

    async def _get(self, url: str) -> bytes:
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
            for sequence, duration in playlist.complete.items():
                if sequence >= start[0] and sequence not in self.segments:
                    listed = [p for p in playlist.parts if p[0] == sequence]
                    if listed and all(p in fetched for p in listed):
                        self.segments[sequence] = time.monotonic()
                        self.durations[sequence] = duration

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


class CountingProxy:
    """A loopback TCP proxy that counts the connections made through it."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port."""
        self.listen_port = listen_port
        self.target_port = target_port
        self.opened: list[float] = []
        self.active = 0
        self.max_active = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def reset_max(self) -> None:
        """Restart the maximum from the current count."""
        self.max_active = self.active

    def opened_since(self, moment: float) -> int:
        """Count connections accepted at or after a monotonic moment."""
        return sum(1 for t in self.opened if t >= moment)

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, HOST, self.listen_port)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.opened.append(time.monotonic())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
            pipes = [
                asyncio.ensure_future(self._pipe(reader, up_writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ]
            try:
                # Either side closing closes the whole connection, like TCP.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                up_writer.close()
        except OSError, asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self.active -= 1
            if task is not None:
                self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
