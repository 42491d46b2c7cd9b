"""Take the README's screenshots from a running scripts/develop instance.

Drives headless Chromium (Debian's `chromium`) over the DevTools protocol:
logs the browser in with the demo owner's token, then captures the config
flow, the device page, the notifications drawer and, with privacy masks set
for a moment, the demo doorbell beside its Police view into docs/images/.

    scripts/develop          # in one terminal
    .venv/bin/python -m tools.screenshots
"""

import argparse
import asyncio
import base64
import json
from pathlib import Path
import subprocess
import sys
from typing import Any
import uuid

from tools.city.browser import Page, chromium
from tools.demo.__main__ import Instance

# A desktop-sized window without scrollbars, for the README's images.
SCREEN_FLAGS = ("--hide-scrollbars", "--window-size=1280,860")


class Screen:
    """The browser tab the screenshots are taken in."""

    def __init__(self, page: Page) -> None:
        """Drive this tab."""
        self.page = page

    async def js(self, expression: str) -> Any:
        """Evaluate JavaScript (awaiting promises) and return the value."""
        return await self.page.js(expression)

    async def goto(self, url: str, settle: float = 4) -> None:
        """Navigate and give the frontend time to render."""
        await self.page.goto(url)
        await asyncio.sleep(settle)

    async def shot(self, path: Path) -> None:
        """Save a PNG of the viewport."""
        data = await self.page.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))
        print(f"wrote {path}")


# All elements matching a selector, through the frontend's nested shadow roots.
DEEP_ALL = """
(selector) => {
  const found = [];
  const walk = (root) => {
    found.push(...root.querySelectorAll(selector));
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}
"""


def _city(command: str, state: dict[str, Any], *args: str) -> None:
    """Act as the city with the reference client."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.city",
            command,
            "--url",
            state["webhook_url"],
            "--key",
            state["key"],
            *args,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def _click(page: Screen, selector: str, text: str) -> None:
    """Click the first element matching selector whose text contains text."""
    await page.js(
        f"({DEEP_ALL})({json.dumps(selector)})"
        f".find(el => el.textContent.includes({json.dumps(text)}))?.click()"
    )
    await asyncio.sleep(3)


# The demo doorbell's privacy masks for the screenshot, as the resident types
# them: the left quarter (a neighbour's drive), a window at the top right.
SCREENSHOT_MASKS = "0, 0, 25, 100\n70, 0, 100, 40"


def _set_masks(instance: Instance, entry_id: str, text: str) -> None:
    """Set the privacy masks through the real options flow, other options kept."""
    flow = instance.http.post(
        "/api/config/config_entries/options/flow", json={"handler": entry_id}
    ).json()
    current = {
        field["name"]: field.get("description", {}).get("suggested_value")
        for field in flow["data_schema"]
    }
    result = instance.http.post(
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        json={
            **{k: v for k, v in current.items() if v is not None},
            "privacy_masks": text,
        },
    ).json()
    if result.get("type") != "create_entry":
        raise RuntimeError(f"the options flow refused the masks: {result}")


async def _police_view(
    page: Screen, base: str, instance: Instance, entry_id: str, device: str, out: Path
) -> None:
    """The Police view camera playing its masked stream, masks set for it."""
    _set_masks(instance, entry_id, SCREENSHOT_MASKS)
    try:
        await page.goto(f"{base}/config/devices/device/{device}", settle=6)
        # The entity row's name (the Activity card names it in a span).
        await page.js(
            f"({DEEP_ALL})('div').find(el => el.children.length === 0 "
            "&& el.textContent.trim() === 'Police view')?.click()"
        )
        # Its more-info dialog: the snapshot, then Home Assistant's own stream.
        await asyncio.sleep(25)
        await page.shot(out / "police_view_masks.png")
    finally:
        _set_masks(instance, entry_id, "")


async def _browse(page: Screen, base: str, state: dict[str, Any], out: Path) -> None:
    instance = Instance(base)
    tokens = instance.tokens(state["password"])
    device = instance.http.post(
        "/api/template",
        json={
            "template": "{{ integration_entities('rtcc_share') "
            "| map('device_id') | first }}"
        },
    ).text.strip()
    await page.goto(f"{base}/onboarding.html", settle=1)
    stored = {
        **tokens,
        "hassUrl": base,
        "clientId": f"{base}/",
        "expires": 4102444800000,
    }
    await page.js(
        f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(stored))})"
    )
    # A live share, so the device page and the notification show one.
    instance.http.post(
        "/api/services/switch/turn_on",
        json={"entity_id": "switch.demo_doorbell_consent_to_share"},
    ).raise_for_status()
    activation = f"DEMO-SCREENSHOTS-{uuid.uuid4().hex[:8]}"
    _city(
        "activate",
        state,
        "--activation-id",
        activation,
        "--lat",
        "32.2990",
        "--lon",
        "-90.1848",
    )
    try:
        await page.goto(f"{base}/config/devices/device/{device}", settle=6)
        await page.shot(out / "device.png")
        await _click(page, "span.item-text", "Notifications")
        await page.shot(out / "notification.png")
        await page.goto(
            f"{base}/config/integrations/dashboard/add?domain=rtcc_share", settle=5
        )
        await _click(page, "ha-button, mwc-button, button", "OK")
        await asyncio.sleep(2)
        await page.shot(out / "config_flow.png")
    finally:
        _city("end", state, "--activation-id", activation)
        instance.http.post(
            "/api/services/switch/turn_off",
            json={"entity_id": "switch.demo_doorbell_consent_to_share"},
        ).raise_for_status()
    await _police_view(page, base, instance, state["entry_id"], device, out)


async def run(base: str, state: dict[str, Any], out: Path) -> None:
    """Start the browser and take the screenshots."""
    async with chromium(flags=SCREEN_FLAGS) as page:
        await page.call("Page.enable")
        await _browse(Screen(page), base, state, out)


def main() -> None:
    """Capture the screenshots."""
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots")
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--state", type=Path, default=Path("config/demo.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.url, json.loads(args.state.read_text()), args.out))


if __name__ == "__main__":
    main()
