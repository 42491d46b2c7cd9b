"""Share a doorbell camera with a city's Real Time Crime Center, on the resident's terms."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from . import stream_share, webhook, whep
from .audit import AuditLog, AuditUnavailableError
from .const import (
    CONF_AUDIT_RETENTION_DAYS,
    CONF_CAMERA_ENTITY_ID,
    CONF_VERIFICATION_KEY,
    DOMAIN,
)
from .models import RtccShareConfigEntry, RtccShareData
from .services import async_setup_services
from .session import ShareSession
from .signature import SeenIdStore, Verifier

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the share views once."""
    async_setup_services(hass)
    stream_share.async_setup_view(hass)
    whep.async_setup_view(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> bool:
    """Set up one shared camera."""
    audit = AuditLog(hass, entry.entry_id)
    try:
        await audit.async_open()
    except AuditUnavailableError as err:
        # No audit log, no sharing: retry until the resident fixes the disk.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="setup_audit_log",
            translation_placeholders={
                "camera": entry.data[CONF_CAMERA_ENTITY_ID],
                "error": str(err),
            },
        ) from err
    seen_ids = SeenIdStore(hass, entry.entry_id)
    await seen_ids.async_load()
    session = ShareSession(hass, entry.entry_id, audit)
    await session.async_start(dict(entry.data), dict(entry.options))
    entry.runtime_data = RtccShareData(
        verifier=Verifier.from_key(entry.data[CONF_VERIFICATION_KEY]),
        seen_ids=seen_ids,
        audit=audit,
        session=session,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    webhook.async_register(hass, entry)
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    entry.async_on_unload(
        audit.async_track_retention(
            lambda: int(entry.options.get(CONF_AUDIT_RETENTION_DAYS, 0))
        )
    )
    return True


async def _async_entry_updated(
    hass: HomeAssistant, entry: RtccShareConfigEntry
) -> None:
    """Record what the resident changed; new limits apply from the next request."""
    session = entry.runtime_data.session
    if entry.data[CONF_VERIFICATION_KEY] != session.data[CONF_VERIFICATION_KEY]:
        # The reconfigure flow reloads the entry after this.
        key_type = (
            "v1" if entry.data[CONF_VERIFICATION_KEY].startswith("whsec_") else "v1a"
        )
        await session.audit.async_append("key_rotated", key_type=key_type)
        session.data = dict(entry.data)
    changed = sorted(
        key
        for key in {*entry.options, *session.options}
        if entry.options.get(key) != session.options.get(key)
    )
    if changed:
        await session.audit.async_append("options_changed", changed=changed)
        session.async_update_options(dict(entry.options))


async def async_unload_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> bool:
    """Stop sharing and remove everything the entry registered."""
    webhook.async_unregister(hass, entry)
    await entry.runtime_data.session.async_stop()
    await entry.runtime_data.seen_ids.async_flush()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Delete the entry's stored state; the audit log stays with the resident."""
    await SeenIdStore(hass, entry.entry_id).async_remove()
    await ShareSession(
        hass, entry.entry_id, AuditLog(hass, entry.entry_id)
    ).async_remove()
