"""Bootstrap the running development instance through its own HTTP API.

Run by scripts/develop once Home Assistant answers (after tools.demo.prepare,
which left only the owner to onboard): creates the owner with a generated
password, waits for the demo doorbell's camera, adds rtcc_share for it through
the real config flow (generated shared secret) and turns on lab mode through
the real options flow. Consent stays off. What it created is kept in
<config>/demo.json and printed on every start.
"""

import argparse
import contextlib
import json
from pathlib import Path
import secrets
import sys
import time
from typing import Any
from urllib.parse import urljoin

import httpx

CAMERA = "camera.demo_doorbell"
CONSENT = "switch.demo_doorbell_consent_to_share"
AGENCY = "Demo City RTCC"
USERNAME = "demo"


class BootstrapError(Exception):
    """The instance did not get to the state the demo needs."""


class Instance:
    """A running Home Assistant reached over HTTP."""

    def __init__(self, base: str) -> None:
        """Talk to the instance at base (no trailing slash)."""
        self.base = base
        self.client_id = f"{base}/"
        # Loopback only: no proxy from the environment.
        self.http = httpx.Client(base_url=base, timeout=30, trust_env=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def onboarded(self) -> bool:
        """Return True once the owner exists."""
        response = self.http.get("/api/onboarding")
        if response.status_code == 404:  # views are gone once onboarding is done
            return True
        response.raise_for_status()
        return all(step["done"] for step in response.json() if step["step"] == "user")

    def create_owner(self, password: str) -> None:
        """Create the owner, the one onboarding step prepare left, and log in."""
        code = self._call(
            "POST",
            "/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": "Demo resident",
                "username": USERNAME,
                "password": password,
                "language": "en",
            },
        )["auth_code"]
        self._token(code)

    def login(self, password: str) -> None:
        """Log in with the stored demo password."""
        self.tokens(password)

    def tokens(self, password: str) -> dict[str, Any]:
        """Log in and return the token response (the frontend stores it)."""
        flow = self._call(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.base,
            },
        )
        result = self._call(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": USERNAME,
                "password": password,
            },
        )
        return self._token(result["result"])

    def _token(self, code: str) -> dict[str, Any]:
        tokens: dict[str, Any] = self._call(
            "POST",
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        )
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        return tokens

    def wait_for_entity(self, entity_id: str, timeout: float) -> float:
        """Wait until the entity has a state; return the seconds it took."""
        began = time.monotonic()
        while self.http.get(f"/api/states/{entity_id}").status_code == 404:
            if time.monotonic() - began > timeout:
                raise BootstrapError(
                    f"{entity_id} did not appear within {timeout:.0f} s. The demo "
                    "doorbell adds it once its clip (demo_doorbell.mp4 in the "
                    "config folder) is encoded; look for demo_doorbell in Home "
                    "Assistant's log above"
                )
            time.sleep(0.25)
        return time.monotonic() - began

    def add_share(self) -> dict[str, str]:
        """Run the config flow and the options flow as the resident would."""
        flow = self._call(
            "POST", "/api/config/config_entries/flow", json={"handler": "rtcc_share"}
        )
        step = f"/api/config/config_entries/flow/{flow['flow_id']}"
        flow = self._call(
            "POST", step, json={"camera_entity_id": CAMERA, "agency_name": AGENCY}
        )
        if flow.get("step_id") != "key":
            raise BootstrapError(
                f"the config flow stopped at step {flow.get('step_id')!r} "
                f"with errors {flow.get('errors')}"
            )
        flow = self._call("POST", step, json={"key_mode": "generate"})
        placeholders = flow["description_placeholders"]
        entry_id = flow["result"]["entry_id"]
        options = self._call(
            "POST",
            "/api/config/config_entries/options/flow",
            json={"handler": entry_id},
        )
        defaults = {
            field["name"]: field.get("description", {}).get("suggested_value")
            for field in options["data_schema"]
        }
        self._call(
            "POST",
            f"/api/config/config_entries/options/flow/{options['flow_id']}",
            json={
                **{k: v for k, v in defaults.items() if v is not None},
                "allow_http_stream_url": True,
                # The demo doorbell offers both: HLS, and WebRTC by its relay.
                "stream_kinds": ["hls", "webrtc"],
                # A lab gets the highest daily limits, so the loop can be rerun.
                "max_activations_per_day": 24,
                "max_share_minutes_per_day": 1440,
            },
        )
        return {
            "entry_id": entry_id,
            # Without an external URL the flow shows only the path; the lab
            # city reaches the instance on its loopback address.
            "webhook_url": urljoin(self.base, placeholders["webhook_url"]),
            "key": placeholders["secret"],
        }


def bootstrap(url: str, state_path: Path, wait: float) -> dict[str, Any]:
    """Bring the instance to the demo's state; return what demo.json holds."""
    state: dict[str, Any] = (
        json.loads(state_path.read_text()) if state_path.exists() else {}
    )
    instance = Instance(url)
    if not instance.onboarded():
        state = {"username": USERNAME, "password": secrets.token_urlsafe(12)}
        instance.create_owner(state["password"])
        state_path.write_text(json.dumps(state, indent=2))
        state_path.chmod(0o600)
    elif "password" not in state:
        raise BootstrapError(
            f"{url} was onboarded without {state_path}: remove the config "
            "folder's .storage/ to start over"
        )
    else:
        instance.login(state["password"])
    if "webhook_url" not in state:
        instance.wait_for_entity(CAMERA, wait)
        state.update(instance.add_share())
        state_path.write_text(json.dumps(state, indent=2))
    return state


def _print_state(url: str, state: dict[str, Any]) -> None:
    print(
        f"""
  Home Assistant  {url}
  Login           {state["username"]} / {state["password"]}
  Webhook URL     {state["webhook_url"]}
  Key (whsec_)    {state["key"]}

  Consent is off: log in, open Settings > Devices > Demo doorbell and turn
  on "Consent to share". Then, as the city:

    export RTCC_CITY_KEY='{state["key"]}'
    scripts/city activate --url {state["webhook_url"]} \\
        --lat 32.2990 --lon -90.1848 --play
    scripts/city end --url {state["webhook_url"]} --activation-id <id>
""",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Bootstrap, then print what a developer needs; a failure is one line."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo")
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--state", type=Path, default=Path("config/demo.json"))
    parser.add_argument(
        "--wait",
        type=float,
        default=180,
        help="seconds to wait for the demo doorbell's camera (default 180)",
    )
    args = parser.parse_args(argv)
    try:
        state = bootstrap(args.url, args.state, args.wait)
    except BootstrapError as err:
        print(f"tools.demo: {err}", file=sys.stderr)
        return 1
    except httpx.HTTPError as err:
        detail = ""
        if isinstance(err, httpx.HTTPStatusError):
            with contextlib.suppress(ValueError):
                detail = f": {err.response.json()}"
        print(f"tools.demo: {type(err).__name__}: {err}{detail}", file=sys.stderr)
        return 1
    _print_state(args.url, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
