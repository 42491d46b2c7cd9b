"""The HLS share's files under its token, each request counted for the audit log."""

from http import HTTPStatus
import re
from typing import Final

from aiohttp import web
from homeassistant.components.stream.core import StreamView
from homeassistant.components.stream.hls import HlsInitView
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS

from ..const import DOMAIN
from . import tokens
from .hls_playlists import (
    ShareMasterPlaylistView,
    SharePartView,
    SharePlaylistView,
    ShareSegmentView,
)
from .hls_share import HlsShare
from .http import LiveView

_FILES: Final[tuple[tuple[re.Pattern[str], StreamView], ...]] = (
    (re.compile(r"master_playlist\.m3u8"), ShareMasterPlaylistView()),
    (re.compile(r"playlist\.m3u8"), SharePlaylistView()),
    (re.compile(r"init\.mp4"), HlsInitView()),
    (re.compile(r"segment/(?P<sequence>\d{1,12})\.m4s"), ShareSegmentView()),
    (
        re.compile(r"segment/(?P<sequence>\d{1,12})\.(?P<part_num>\d{1,6})\.m4s"),
        SharePartView(),
    ),
)


def async_setup_view(hass: HomeAssistant) -> None:
    """Register the view once for all entries (from the integration's setup)."""
    hass.http.register_view(ShareHlsView())


class ShareHlsView(LiveView):
    """Serve a share's HLS files under its token, logging each viewer."""

    url = tokens.HLS.route() + "/{file:.+}"
    name = f"api:{DOMAIN}:hls"
    cors_allowed = True

    async def get(
        self, request: web.Request, token: str, file: str
    ) -> web.StreamResponse:
        """Serve one file of a live share, or 404."""
        share = tokens.get(request.app[KEY_HASS], HlsShare, token)
        match = next(
            (
                (view, found.groupdict())
                for pattern, view in _FILES
                if (found := pattern.fullmatch(file))
            ),
            None,
        )
        if share is None or match is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        view, parts = match
        try:
            response = await view.handle(
                request,
                share.stream,
                parts.get("sequence", ""),
                parts.get("part_num", ""),
            )
        except Exception:
            # A request woken by revocation finds the output torn down.
            if not share.revoked:
                raise
            response = web.Response(status=HTTPStatus.NOT_FOUND)
        if share.revoked:
            # A request that raced the revocation may have restarted the worker.
            await share.async_teardown()
            return web.Response(status=HTTPStatus.NOT_FOUND)
        body = getattr(response, "body", None)
        share.log_request(
            request.remote or "unknown", len(body) if isinstance(body, bytes) else 0
        )
        return response
