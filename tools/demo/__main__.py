"""Bootstrap the running development instance through its own HTTP API.

Run by scripts/develop once Home Assistant answers: completes onboarding with a
generated owner login, adds rtcc_share for the demo doorbell through the real
config flow (generated shared secret) and turns on lab mode through the real
options flow. Consent stays off. What it created is kept in config/demo.json
and printed on every start.
"""

import argparse
import json
from pathlib import Path
import secrets
import sys
from typing import Any
from urllib.parse import urljoin

import httpx

CAMERA = "camera.demo_doorbell"
AGENCY = "Demo City RTCC"
USERNAME = "demo"


class Instance:
    """A running Home Assistant reached over HTTP."""

    def __init__(self, base: str) -> None:
        """Talk to the instance at base (no trailing slash)."""
        self.base = base
        self.client_id = f"{base}/"
        self.http = httpx.Client(base_url=base, timeout=30)

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
        """Create the owner and finish onboarding."""
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
        for step, body in (
            ("core_config", None),
            ("analytics", None),
            ("integration", {"client_id": self.client_id, "redirect_uri": self.base}),
        ):
            self._call("POST", f"/api/onboarding/{step}", json=body)

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
            sys.exit(f"config flow stopped at {flow}")
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


def main(argv: list[str] | None = None) -> int:
    """Bootstrap once, then print what a developer needs."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo")
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--state", type=Path, default=Path("config/demo.json"))
    args = parser.parse_args(argv)
    state: dict[str, Any] = (
        json.loads(args.state.read_text()) if args.state.exists() else {}
    )
    instance = Instance(args.url)
    if not instance.onboarded():
        state = {"username": USERNAME, "password": secrets.token_urlsafe(12)}
        instance.create_owner(state["password"])
        args.state.write_text(json.dumps(state, indent=2))
    elif "password" not in state:
        sys.exit(
            f"{args.url} was onboarded without {args.state}; remove config/.storage"
        )
    else:
        instance.login(state["password"])
    if "webhook_url" not in state:
        state.update(instance.add_share())
        args.state.write_text(json.dumps(state, indent=2))
        args.state.chmod(0o600)
    print(
        f"""
  Home Assistant  {args.url}
  Login           {state["username"]} / {state["password"]}
  Webhook URL     {state["webhook_url"]}
  Key (whsec_)    {state["key"]}

  Consent is off: log in, open Settings > Devices > Demo doorbell and turn
  on "Consent to share". Then, as the city:

    export RTCC_CITY_KEY='{state["key"]}'
    scripts/city activate --url {state["webhook_url"]} \\
        --lat 32.2990 --lon -90.1848 --play
    scripts/city end --url {state["webhook_url"]} --activation-id <id>
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
