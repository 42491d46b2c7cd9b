"""Which camera an entry shares: stored by its entity registry id, so a rename keeps it.

A camera without a registry entry (no unique id, so it cannot be renamed) is
stored by its entity id, before and after the migration to registry ids. The
entry's own Police view camera shows the resident what the city sees.
"""

from typing import Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN

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
