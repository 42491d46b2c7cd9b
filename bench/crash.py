"""Crash test: kill -9 Home Assistant during a live share, restart, check.

Claim checked: after a crash during a live share, nothing is left shared and
nothing is lost. After `kill -9` and a restart:

1. the audit log's hash chain verifies (`rtcc_share.verify_audit_log`);
2. the share is recorded as `interrupted` (`rtcc_share.export_audit_log`);
3. consent is as it was: the consent switch is on;
4. no stream is live: the live-share binary sensor is off;
5. the old stream URL answers 404.

How: a real Home Assistant process, started like scripts/develop does but
with a scratch configuration folder under /tmp (config/configuration.yaml
with the port changed, 18173 by default; `custom_components` symlinks to the
repository's rtcc_share and the demo doorbell), bootstrapped with the
project's own `python -m tools.demo --url ... --state <scratch>/demo.json`
(owner, config flow, lab-mode options). The owner logs in, turns consent on,
and a signed `activation.requested` (tests/common.py's `City` with the
generated key) must answer 201 with a stream URL that serves the first part.
Then `kill -9`, restart on the same folder, and the checks above through the
REST API with the owner's token.

Every wait has a time limit (the whole run at most 5 min; about 1 min
normally). Home Assistant is stopped and the scratch folder removed on exit,
also on Ctrl-C or SIGTERM (`--keep` keeps the folder).

Run from the repository root:

    .venv/bin/python bench/crash.py [--port 18173] [--keep]

Prints one PASS/FAIL line per check and exits 1 if any check fails (2 if the
run could not get as far as the crash).
"""

# ruff: noqa: INP001
import argparse
import asyncio
import json
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
from harness import REPO, Api, City, HassProcess, Share, activate, scratch_config
from report import note, out

RUN_LIMIT_S = 300
ACTIVATION = "JPD-RTCC-CRASH-0001"


class SetupError(Exception):
    """The run failed before the crash could be tested."""


def _bootstrap(base: str, state: Path) -> dict[str, Any]:
    """Run tools.demo (retried: it may run before the camera is set up)."""
    for attempt in range(1, 4):
        result = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "python"),
                "-m",
                "tools.demo",
                "--url",
                base,
                "--state",
                str(state),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode == 0:
            data: dict[str, Any] = json.loads(state.read_text())
            return data
        note(f"tools.demo attempt {attempt} failed: {result.stderr.strip()[-300:]}")
        time.sleep(3)
    raise SetupError("tools.demo did not complete")


async def _login(
    hass: HassProcess, session: aiohttp.ClientSession, demo: dict[str, Any]
) -> Api:
    api = Api(hass.base, session)
    await api.login(demo["username"], demo["password"])
    await api.wait_running()
    return api


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        await response.read()
        return response.status


async def run(hass: HassProcess) -> list[tuple[str, bool, str]]:
    """Crash and check; return (check, passed, detail) rows."""
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        hass.start()
        note(f"Home Assistant answered after {await hass.wait_up():.1f} s")
        loop = asyncio.get_running_loop()
        demo = await loop.run_in_executor(
            None, _bootstrap, hass.base, hass.config_dir / "demo.json"
        )
        api = await _login(hass, session, demo)
        entry_id = demo["entry_id"]
        share = Share(
            entry_id=entry_id,
            camera="camera.demo_doorbell",
            webhook_url=demo["webhook_url"],
            key=demo["key"],
            city=City(demo["key"]),
            entities=await api.entities(entry_id),
        )
        await api.set_consent(share, True)
        status, reply, _ = await activate(session, share, ACTIVATION)
        if status != 201:
            raise SetupError(f"activation answered {status} {reply}")
        out(
            f"crash: signed activation granted before the crash: PASS (201, {reply['status']})"
        )
        stream_url = reply["stream_url"]
        part0 = stream_url.rsplit("/", 1)[0] + "/playlist.m3u8?_HLS_msn=0&_HLS_part=0"
        if (code := await _status(session, part0)) != 200:
            raise SetupError(f"the share's stream answered {code}")
        live = (await api.state(share.live_sensor))["state"]
        if live != "on":
            raise SetupError(f"live-share sensor is {live} during the share")
        note("share is live and streaming; kill -9")

        hass.kill9()
        hass.start()
        note(f"restarted; answered after {await hass.wait_up():.1f} s")
        api = await _login(hass, session, demo)

        rows: list[tuple[str, bool, str]] = []
        verify = (
            await api.service(
                "rtcc_share",
                "verify_audit_log",
                {"config_entry_id": entry_id},
                response=True,
            )
        )["service_response"]
        rows.append(
            (
                "audit chain verifies",
                verify.get("valid") is True,
                f"valid={verify.get('valid')}, records={verify.get('records')}, "
                f"first_bad_seq={verify.get('first_bad_seq')}",
            )
        )
        records = (
            await api.service(
                "rtcc_share",
                "export_audit_log",
                {"config_entry_id": entry_id},
                response=True,
            )
        )["service_response"]["records"]
        mine = [r for r in records if r.get("activation_id") == ACTIVATION]
        events = [r["event"] for r in mine]
        rows.append(
            (
                "share recorded as interrupted",
                "interrupted" in events,
                f"events for {ACTIVATION}: {events}",
            )
        )
        consent = (await api.state(share.consent))["state"]
        logged = [r["event"] for r in records if r["event"].startswith("consent_")]
        rows.append(
            (
                "consent is as it was (on)",
                consent == "on",
                f"{share.consent} is {consent}; the audit log's consent records: "
                f"{logged}",
            )
        )
        live = (await api.state(share.live_sensor))["state"]
        rows.append(
            ("no stream is live", live == "off", f"{share.live_sensor} is {live}")
        )
        code = await _status(session, stream_url)
        rows.append(("old stream URL answers 404", code == 404, f"HTTP {code}"))
        return rows


async def main() -> int:
    """Run the crash test with cleanup on every exit path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18173)
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    folder = scratch_config(args.port, bench_webhook_id=None, quiet=False)
    hass = HassProcess(folder, args.port)
    note(f"scratch Home Assistant on {hass.base} in {folder}")
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    try:
        async with asyncio.timeout(RUN_LIMIT_S):
            rows = await run(hass)
    except (SetupError, RuntimeError, TimeoutError, aiohttp.ClientError) as err:
        out(f"crash: FAIL (could not run the test: {type(err).__name__}: {err})")
        return 2
    finally:
        hass.stop()
        if args.keep:
            note(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    for check, passed, detail in rows:
        out(f"crash: {check}: {'PASS' if passed else 'FAIL'} ({detail})")
    return 0 if all(passed for _, passed, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
