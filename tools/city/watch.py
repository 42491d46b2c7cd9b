"""The local viewer page of `scripts/city watch`: served from this machine only.

The page (viewer/) plays a share's stream_url with hls.js, installed from the
npm registry by scripts/setup (`npm ci` in viewer/, pinned by its lockfile),
or its webrtc_url over WHEP with the browser's own RTCPeerConnection.
Nothing in it loads from the internet: its Content-Security-Policy allows
scripts only from this server, and network requests only over HTTP(S) to
the home (its WHEP endpoint answers CORS, this page being another origin).
"""

from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import threading
from typing import Final, Self
from urllib.parse import quote, urlsplit

VIEWER: Final = Path(__file__).parent / "viewer"
HLS_JS: Final = VIEWER / "node_modules" / "hls.js" / "dist" / "hls.min.js"
DEFAULT_PORT: Final = 18380
_FILES: Final = {
    "/index.html": (VIEWER / "index.html", "text/html; charset=utf-8"),
    "/viewer.js": (VIEWER / "viewer.js", "text/javascript; charset=utf-8"),
    "/viewer.css": (VIEWER / "viewer.css", "text/css; charset=utf-8"),
    "/hls.min.js": (HLS_JS, "text/javascript; charset=utf-8"),
}
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "worker-src blob:; media-src blob:; connect-src http: https:"
)


class ViewerMissingError(RuntimeError):
    """hls.js is not installed (run scripts/setup)."""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        found = _FILES.get("/index.html" if path == "/" else path)
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body = found[0].read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", found[1])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the page reports what matters."""


class ViewerServer:
    """The viewer page on 127.0.0.1, in a background thread."""

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        """Serve on this loopback port (0: any free one)."""
        if not HLS_JS.is_file():
            raise ViewerMissingError(
                f"{HLS_JS} is missing: run scripts/setup (npm ci in {VIEWER})"
            )
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="city-viewer", daemon=True
        )

    def page_url(self, stream_url: str, player: str = "hls") -> str:
        """Return the page's address playing this stream ("hls" or "webrtc")."""
        return (
            f"http://127.0.0.1:{self.port}/index.html"
            f"?player={player}&src={quote(stream_url, safe='')}"
        )

    def __enter__(self) -> Self:
        """Start serving."""
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
