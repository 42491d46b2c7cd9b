"""Which camera an entry shares: stored by its entity registry id, so a rename keeps it.

A camera without a registry entry (no unique id, so it cannot be renamed) is
stored by its entity id, before and after the migration to registry ids. The
entry's own Police view camera shows the resident what the city sees. What a
camera offers decides which live views it can give, and whether it can be
masked.
"""

from contextlib import suppress
from typing import Final

from homeassistant.components.camera import async_get_stream_source
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN, STREAM_HLS, STREAM_WEBRTC
from .live import webrtc_share

POLICE_VIEW_KEY: Final = "police_view"


@callback
def camera_entity_id(hass: HomeAssistant, camera: str) -> str:
    """Return the camera's entity id today, from what the entry stores."""
    return er.async_resolve_entity_id(er.async_get(hass), camera) or camera


@callback
def camera_to_store(hass: HomeAssistant, entity_id: str) -> str:
    """Return what an entry stores for this camera: its registry id, if it has one."""
    entry = er.async_get(hass).async_get(entity_id)
    return entry.id if entry is not None else entity_id


@callback
def police_view_entity_id(hass: HomeAssistant, entry_id: str) -> str | None:
    """Return the entity id of the entry's Police view camera, if it has one."""
    return er.async_get(hass).async_get_entity_id(
        "camera", DOMAIN, f"{entry_id}_{POLICE_VIEW_KEY}"
    )


async def async_stream_source(hass: HomeAssistant, entity_id: str) -> str | None:
    """Return the camera's stream source; None if it has none or cannot be asked."""
    try:
        return await async_get_stream_source(hass, entity_id)
    except HomeAssistantError:
        return None


async def async_camera_kinds(hass: HomeAssistant, entity_id: str) -> list[str]:
    """Return the kinds of live view the camera offers: a stream source, WebRTC.

    Raise HomeAssistantError when the camera cannot be asked (it is off).
    """
    source = await async_get_stream_source(hass, entity_id)
    return [
        kind
        for kind, offered in (
            (STREAM_HLS, bool(source)),
            (STREAM_WEBRTC, webrtc_share.supports_webrtc(hass, entity_id)),
        )
        if offered
    ]


async def async_webrtc_only(hass: HomeAssistant, entity_id: str) -> bool:
    """Return True for a camera whose video never passes through the home.

    A camera that streams only over WebRTC (Ring, Nest) has no stream
    source: it cannot be given privacy masks. A camera that is off now is
    not judged by what it offers now.
    """
    with suppress(HomeAssistantError):
        return await async_camera_kinds(hass, entity_id) == [STREAM_WEBRTC]
    return False
