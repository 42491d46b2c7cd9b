"""Smoke test: the README's whole loop against a real `scripts/develop`.

scripts/develop runs on a scratch copy of config/ and its own loopback port,
as on a fresh clone: first start, owner, demo camera, the real config and
options flows. Then consent goes on through Home Assistant's REST API and the
README's `scripts/city activate … --play` and `scripts/city end …` run as the
city would. Everything started here is stopped (the whole process group).
"""

from collections.abc import Callable, Generator
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest

from tools.demo.__main__ import CONSENT, Instance

from .conftest import TIMINGS

# Real sockets: the test talks to the real instance on loopback. Its own
# bounds below (start, city, stop) end it first; the timeout is a backstop.
pytestmark = [
    pytest.mark.smoke,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(240),
]

REPO = Path(__file__).resolve().parents[2]
PORTS = range(18100, 18200)
KEY_LINE = "Key (whsec_)"
# How scripts/develop and tools.demo begin a line saying they gave up.
GAVE_UP = ("scripts/develop: ", "tools.demo: ")
# Bounds, not targets: a first start prints the key in about 20 s here.
START_BUDGET = 75
STOP_BUDGET = 20
# The README's incident, 110 m from the demo home.
LAT, LON = "32.2990", "-90.1848"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant: this test drives a real one."""


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS}")


def _scratch_config(folder: Path) -> Path:
    """The tracked part of config/, plus the clip if scripts/setup made it."""
    source = REPO / "config"
    folder.mkdir()
    shutil.copy(source / "configuration.yaml", folder)
    shutil.copytree(
        source / "custom_components" / "demo_doorbell",
        folder / "custom_components" / "demo_doorbell",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if (clip := source / "demo_doorbell.mp4").exists():
        shutil.copy(clip, folder)
    return folder


def _loopback_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return env | extra


class Develop:
    """scripts/develop in its own process group, its output collected."""

    def __init__(self, config: Path, port: int) -> None:
        """Start it."""
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.key_printed = False
        self.settled = threading.Event()  # the key, or a reason why not
        self.proc = subprocess.Popen(
            [str(REPO / "scripts" / "develop")],
            cwd=REPO,
            env=_loopback_env(
                RTCC_DEVELOP_PORT=str(port),
                RTCC_DEVELOP_CONFIG=str(config),
                RTCC_DEVELOP_WAIT=str(START_BUDGET),
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="develop-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if KEY_LINE in line:
                self.key_printed = True
            if self.key_printed or line.startswith(GAVE_UP):
                self.settled.set()
        self.settled.set()  # scripts/develop is gone

    def output(self, last: int | None = None) -> str:
        """Everything (or the last lines) scripts/develop printed so far."""
        return "".join(self.lines[-last:] if last else self.lines)

    def stop(self) -> float:
        """Stop the whole process group; return the seconds it took."""
        began = time.monotonic()
        with_kill = False
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            while time.monotonic() - began < STOP_BUDGET:
                self.proc.poll()  # reap scripts/develop, or it stays in the group
                os.killpg(self.proc.pid, 0)
                time.sleep(0.2)
            with_kill = True
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing left in the group
        self.proc.wait(timeout=STOP_BUDGET)
        self._reader.join(timeout=STOP_BUDGET)
        assert not with_kill, f"scripts/develop ignored SIGTERM for {STOP_BUDGET} s"
        return time.monotonic() - began


@pytest.fixture
def develop(tmp_path: Path) -> Generator[Callable[[], Develop]]:
    """Start scripts/develop on demand; always stop all of it afterwards."""
    started: list[Develop] = []

    def start() -> Develop:
        started.append(Develop(_scratch_config(tmp_path / "config"), _free_port()))
        return started[-1]

    yield start
    for instance in started:
        if instance.proc.poll() is None or instance._reader.is_alive():
            instance.stop()


def _city(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "city"), *args],
        cwd=REPO,
        env=_loopback_env(RTCC_CITY_KEY=key),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _body(output: str) -> dict[str, Any]:
    """The JSON answer scripts/city printed after its status line."""
    body, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
    assert isinstance(body, dict)
    return body


def test_fresh_clone_develop_runs_the_readme_loop(
    develop: Callable[[], Develop], record_property: Callable[[str, Any], None]
) -> None:
    """A first start prints the key; the city then gets a live H.264 stream, then 404."""
    timings: list[str] = []
    began = mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings.append(f"{name} {now - mark:.1f} s")
        mark = now

    instance = develop()
    instance.settled.wait(START_BUDGET + 15)
    assert instance.key_printed, f"no key; last output:\n{instance.output(40)}"
    lap("start to key")
    assert instance.proc.poll() is None, "scripts/develop exited after the key"
    state = json.loads((instance.config / "demo.json").read_text())
    assert state["webhook_url"].startswith(f"{instance.url}/api/webhook/")

    owner = Instance(instance.url)
    owner.login(state["password"])
    consent = owner.http.post(
        "/api/services/switch/turn_on", json={"entity_id": CONSENT}
    )
    assert consent.status_code == 200, consent.text
    assert owner.http.get(f"/api/states/{CONSENT}").json()["state"] == "on"
    lap("consent on")

    activation = f"SMOKE-{secrets.token_hex(4)}"
    where = ["--url", state["webhook_url"]]
    activate = _city(
        "activate",
        *where,
        "--lat",
        LAT,
        "--lon",
        LON,
        "--play",
        "--activation-id",
        activation,
        key=state["key"],
    )
    assert activate.stdout.startswith("HTTP 201"), activate.stdout + activate.stderr
    assert "codec_name=h264" in activate.stdout, activate.stdout + activate.stderr
    stream_url = _body(activate.stdout)["stream_url"]
    lap("activate + ffprobe")
    decoded = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            stream_url,
            "-frames:v",
            "1",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert decoded.returncode == 0, decoded.stderr
    lap("one frame decoded")

    end = _city("end", *where, "--activation-id", activation, key=state["key"])
    assert end.stdout.startswith("HTTP 200"), end.stdout + end.stderr
    assert _body(end.stdout)["status"] == "ended"
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(stream_url).status_code == 404
    lap("end + 404")

    before_stop = instance.output()
    hass_pid = json.loads((instance.config / ".ha_run.lock").read_text())["pid"]
    timings.append(f"stop {instance.stop():.1f} s")
    timings.append(f"total {time.monotonic() - began:.1f} s")
    record_property(TIMINGS, ", ".join(timings))
    assert not Path(f"/proc/{hass_pid}").exists(), "hass outlived scripts/develop"
    # A first start logs no traceback and no error.
    for sign in ("Traceback", " ERROR ("):
        assert sign not in before_stop, before_stop
