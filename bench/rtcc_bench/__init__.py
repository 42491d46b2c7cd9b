"""Benchmark-only helpers, loaded into the benchmarks' scratch Home Assistant.

Never part of the integration or the HACS package. It adds:

- a bare webhook (`rtcc_bench: webhook_id: ...`) that reads the body and
  answers `{}`: the baseline the activation webhook is compared with, served
  by the same Home Assistant through the same `webhook` component;
- `POST /api/rtcc_bench/reset/{entry_id}` (owner token required), which
  empties the entry's share history. That resets the resident's rolling
  daily budget (activations and minutes), for measurement only, so one run
  can take hundreds of samples. Nothing else of the session is touched;
- a WebRTC provider relaying the demo doorbell's feed (webrtc.py).
"""

from http import HTTPStatus

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.typing import ConfigType
import probatio

from .webrtc import async_setup_webrtc

DOMAIN = "rtcc_bench"
CONF_WEBHOOK_ID = "webhook_id"

CONFIG_SCHEMA = probatio.Schema(
    {DOMAIN: probatio.Schema({probatio.Required(CONF_WEBHOOK_ID): cv.string})},
    extra=probatio.ALLOW_EXTRA,
)


async def _bare_handler(
    hass: HomeAssistant, webhook_id: str, request: web.Request
) -> web.Response:
    await request.read()
    return web.Response(body=b"{}", content_type="application/json")


class ResetHistoryView(HomeAssistantView):
    """Empty one rtcc_share entry's share history (benchmarks only)."""

    url = "/api/rtcc_bench/reset/{entry_id}"
    name = "api:rtcc_bench:reset"
    requires_auth = True

    async def post(self, request: web.Request, entry_id: str) -> web.Response:
        """Clear the history; 404 if the entry is not loaded."""
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        runtime = getattr(entry, "runtime_data", None) if entry else None
        if runtime is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        history = runtime.session.history
        cleared = len(list(history))
        history._items.clear()  # noqa: SLF001 - measurement only, never in the product
        return self.json({"cleared": cleared})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the bare webhook and the reset view."""
    webhook.async_register(
        hass,
        DOMAIN,
        "Bench bare webhook",
        config[DOMAIN][CONF_WEBHOOK_ID],
        _bare_handler,
        local_only=False,
        allowed_methods=["POST"],
    )
    hass.http.register_view(ResetHistoryView())
    await async_setup_webrtc(hass)
    return True
