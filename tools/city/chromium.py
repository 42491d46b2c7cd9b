"""Headless Chromium on the WHEP viewer page (whep_viewer.html), over DevTools.

    async with viewer_page() as page:
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
from typing import Any, Final

from aiohttp import web

from tools.city import browser
from tools.city.browser import Page

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
async def viewer_page() -> AsyncIterator[Page]:
    """Run Chromium on the viewer page until the block ends."""
    app = web.Application()
    app.router.add_get("/", _page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server  # noqa: SLF001 - the port it bound
    origin = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with browser.chromium(flags=WEBRTC_FLAGS) as page:
            await page.goto(origin)
            async with asyncio.timeout(30):
                while await page.js("typeof watch") != "function":
                    await asyncio.sleep(0.1)
            yield page
    finally:
        await runner.cleanup()
