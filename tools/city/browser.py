"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol.

Used to play a share in a real browser: the viewer page's tests and the
benchmarks. A fresh profile each time, and no network of its own
(background networking, component updates, sync and QUIC are off).
"""

import asyncio
from collections.abc import AsyncIterator
import contextlib
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
from typing import Any, Final

import aiohttp

FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


class BrowserMissingError(RuntimeError):
    """Chromium is not installed (run scripts/setup)."""


class Page:
    """One browser tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Speak to the tab over this socket."""
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result."""
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        async for message in self._ws:
            data = json.loads(message.data)
            if data.get("id") == call_id:
                if "error" in data:
                    raise RuntimeError(data["error"].get("message", "DevTools error"))
                result: dict[str, Any] = data.get("result", {})
                return result
        raise RuntimeError("the browser closed")

    async def goto(self, url: str) -> None:
        """Navigate to url."""
        await self.call("Page.navigate", url=url)

    async def js(self, expression: str) -> Any:
        """Evaluate JavaScript (awaiting a promise) and return its value."""
        result = await self.call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        return result.get("result", {}).get("value")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def chromium(
    timeout: float = 30, flags: tuple[str, ...] = ()
) -> AsyncIterator[Page]:
    """Start headless Chromium with a fresh profile (and flags); yield its first tab."""
    if (binary := shutil.which("chromium")) is None:
        raise BrowserMissingError("chromium is not installed: run scripts/setup")
    port = _free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child
            [
                binary,
                *FLAGS,
                *flags,
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with aiohttp.ClientSession() as session:
                async with asyncio.timeout(timeout):
                    while True:
                        with contextlib.suppress(aiohttp.ClientError):
                            async with session.get(
                                f"http://127.0.0.1:{port}/json"
                            ) as response:
                                targets = await response.json()
                            if pages := [t for t in targets if t["type"] == "page"]:
                                break
                        await asyncio.sleep(0.2)
                async with session.ws_connect(
                    pages[0]["webSocketDebuggerUrl"], max_msg_size=0
                ) as ws:
                    yield Page(ws)
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
