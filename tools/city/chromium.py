"""Headless Chromium on the WHEP viewer page (whep_viewer.html), over DevTools.

    async with viewer_page(devtools_port=18450) as page:
        result = await page.js(f"watch({json.dumps(webrtc_url)})")

The page is served from its own loopback origin, so every request to the
home is a cross-origin one, as from a city's web application. ICE may use
loopback (`--allow-loopback-in-peer-connection`) and host candidates are
plain addresses, not mDNS names, so a peer without mDNS can reach them.
"""

import asyncio
from collections.abc import AsyncIterator
import contextlib
from pathlib import Path
import shutil
import subprocess
import tempfile
from typing import Any, Final

import aiohttp
from aiohttp import web

from tools.screenshots.__main__ import CHROMIUM_FLAGS, Page

PAGE: Final = Path(__file__).with_name("whep_viewer.html")
WEBRTC_FLAGS: Final = (
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)


def chromium() -> str | None:
    """Return Debian's chromium, if installed."""
    return shutil.which("chromium")


async def _page(_: web.Request) -> web.Response:
    return web.Response(text=PAGE.read_text("utf-8"), content_type="text/html")


@contextlib.asynccontextmanager
async def viewer_page(devtools_port: int) -> AsyncIterator[Page]:
    """Run Chromium on the viewer page until the block ends."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium")
    app = web.Application()
    app.router.add_get("/", _page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server  # noqa: SLF001 - the port it bound
    origin = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                binary,
                *CHROMIUM_FLAGS,
                *WEBRTC_FLAGS,
                f"--remote-debugging-port={devtools_port}",
                f"--user-data-dir={profile}",
                origin,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(
                    await _page_socket(session, devtools_port, origin),
                    max_msg_size=0,
                ) as ws,
            ):
                page = Page(ws)
                async with asyncio.timeout(30):
                    while await page.js("typeof watch") != "function":
                        await asyncio.sleep(0.1)
                yield page
        finally:
            browser.terminate()
            await asyncio.get_running_loop().run_in_executor(None, browser.wait, 10)
            await runner.cleanup()


async def _page_socket(
    session: aiohttp.ClientSession, devtools_port: int, origin: str
) -> str:
    """Return the DevTools socket URL of the viewer page's tab."""
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(
                    f"http://127.0.0.1:{devtools_port}/json"
                ) as response:
                    targets = await response.json()
                for target in targets:
                    if target["type"] == "page" and target["url"].startswith(origin):
                        return str(target["webSocketDebuggerUrl"])
            await asyncio.sleep(0.2)
