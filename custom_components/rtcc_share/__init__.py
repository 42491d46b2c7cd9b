"""Share a doorbell camera with a city's Real Time Crime Center, on the resident's terms."""

from homeassistant.const import (
    EVENT_CORE_CONFIG_UPDATE,
    EVENT_HOMEASSISTANT_STOP,
    Platform,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.helper_integration import async_handle_source_entity_changes
from homeassistant.helpers.typing import ConfigType

from . import webhook
from .activation import Activations
from .audit import AuditLog, AuditUnavailableError
from .const import (
    CONF_AGENCY_NAME,
    CONF_AUDIT_RETENTION_DAYS,
    CONF_CAMERA_ENTITY_ID,
    CONF_PRIVACY_MASKS,
    CONF_VERIFICATION_KEY,
    DOMAIN,
    SECRET_PREFIX,
)
from .data import RtccShareConfigEntry, RtccShareData
from .entity import device_model
from .history import ShareHistory
from .live import hls_view, http, tokens, webrtc_view
from .live.instant_start import InstantStart
from .live.masked_view import MaskedView
from .live.masks import InvalidMasksError, Mask, masks_from_option
from .models import AuditEvent, EndReason
from .notifier import Notifier
from .rejections import Rejections
from .repair_issues import Repairs
from .services import async_setup_services
from .session import ShareSession
from .signature import SeenIdStore, Verifier
from .source_camera import camera_entity_id, camera_to_store
from .texts import async_texts

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
    tokens.async_setup(hass)
    http.redact_access_log()
    hls_view.async_setup_view(hass)
    webrtc_view.async_setup_view(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> bool:
    """Set up one shared camera; a setup that fails half way undoes what it began."""
    camera = camera_entity_id(hass, entry.data[CONF_CAMERA_ENTITY_ID])
    if (masks := _stored_masks(entry)) is None:
        # Never guess what to mask: nothing is shared until the options say.
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_privacy_masks",
            translation_placeholders={"camera": camera},
        )
    repairs = Repairs(hass, entry.entry_id, camera)
    entry.async_on_unload(repairs.async_clear)
    audit = AuditLog.for_entry(hass, entry.entry_id)
    entry.async_on_unload(audit.async_watch_health(repairs.audit_log))
    try:
        await audit.async_open()
    except AuditUnavailableError as err:
        # No audit log, no sharing: retry until the resident fixes the disk.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="setup_audit_log",
            translation_placeholders={"camera": camera, "error": str(err)},
        ) from err
    # Notifications and the logbook read translations without waiting.
    await async_texts(hass)
    seen_ids = SeenIdStore(hass, entry.entry_id)
    await seen_ids.async_load()
    session = ShareSession(
        hass,
        entry.entry_id,
        audit,
        ShareHistory(hass, entry.entry_id),
        dict(entry.data),
        dict(entry.options),
    )
    rejections = Rejections(hass, entry.entry_id, camera, audit)
    instant = InstantStart(
        hass,
        entry.entry_id,
        lambda: session.camera_entity_id,
        lambda: session.options if session.consent_on else None,
        lambda: session.live is not None,
    )
    masked = MaskedView(
        hass,
        lambda: session.camera_entity_id,
        masks,
        # With instant start, the masks are painted on the buffered video too.
        prebuffered=lambda: instant.reader_url("mask"),
    )
    entry.runtime_data = RtccShareData(
        verifier=Verifier.from_key(entry.data[CONF_VERIFICATION_KEY]),
        seen_ids=seen_ids,
        audit=audit,
        session=session,
        activations=Activations(hass, session, rejections, repairs, masked, instant),
        rejections=rejections,
        masked=masked,
        instant=instant,
    )
    entry.async_on_unload(rejections.async_start())
    entry.async_on_unload(Notifier(hass, entry).async_start())
    try:
        await session.async_start()
        entry.async_on_unload(instant.async_start())
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
        webhook.async_register(hass, entry)
    except Exception:
        await _async_stop(hass, entry)
        raise
    entry.async_on_unload(
        audit.async_track_retention(
            lambda: int(entry.options.get(CONF_AUDIT_RETENTION_DAYS, 0))
        )
    )
    # The resident learns at once, not at the first activation, that the city
    # cannot be given an address.
    activations = entry.runtime_data.activations
    activations.external_base_url()

    @callback
    def _core_config_updated(_event: Event) -> None:
        activations.external_base_url()

    entry.async_on_unload(
        hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, _core_config_updated)
    )

    async def _ha_stopping(_event: Event) -> None:
        # Entries are not unloaded when Home Assistant stops: stop reading
        # the camera for the masked picture here.
        await masked.async_close()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _ha_stopping))
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    entry.async_on_unload(_async_follow_camera(hass, entry))
    return True


@callback
def _async_follow_camera(
    hass: HomeAssistant, entry: RtccShareConfigEntry
) -> CALLBACK_TYPE:
    """Reload with the camera's new entity id when the resident renames it."""

    @callback
    def _stored_entity_id_changed(entity_id: str) -> None:
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_CAMERA_ENTITY_ID: entity_id}
        )

    return async_handle_source_entity_changes(
        hass,
        helper_config_entry_id=entry.entry_id,
        set_source_entity_id_or_uuid=_stored_entity_id_changed,
        # The entities belong to their own device, not the camera's.
        source_device_id=None,
        source_entity_id_or_uuid=entry.data[CONF_CAMERA_ENTITY_ID],
    )


async def async_migrate_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> bool:
    """Version 1 stored the camera's entity id; 2 stores its registry id."""
    if entry.version > 2:
        # A newer release wrote this entry: do not guess.
        return False
    if entry.version == 1:
        camera = camera_to_store(hass, entry.data[CONF_CAMERA_ENTITY_ID])
        hass.config_entries.async_update_entry(
            entry,
            data={**entry.data, CONF_CAMERA_ENTITY_ID: camera},
            unique_id=camera,
            version=2,
        )
    return True


async def _async_stop(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Close the webhook, end a live share, write what is pending.

    In this order and awaited: Home Assistant runs unload callbacks as
    concurrent tasks, which would let the notifier go before the end.
    """
    webhook.async_unregister(hass, entry)
    data = entry.runtime_data
    await data.session.async_stop()
    await data.masked.async_close()
    await data.instant.async_stop()
    await data.rejections.async_stop()
    await data.seen_ids.async_flush()


def _stored_masks(entry: RtccShareConfigEntry) -> tuple[Mask, ...] | None:
    """Return the entry's privacy masks; None if what is stored is not valid."""
    try:
        return masks_from_option(entry.options.get(CONF_PRIVACY_MASKS, []))
    except InvalidMasksError:
        return None


async def _async_entry_updated(
    hass: HomeAssistant, entry: RtccShareConfigEntry
) -> None:
    """Record what the resident changed, and apply it.

    New options, and a new agency name, apply at once, without a reload
    (which would end a live share); both are recorded as `options_changed`.
    New privacy masks end a live share first: its grant recorded the masks
    the city would see for the whole share. Any other new data (the key, a
    renamed camera) needs a reload, which this listener schedules: the one
    place that does (also for masks that are not valid, which fail the
    setup). Records that cannot be written now wait: the change never waits
    for the audit log.
    """
    data = entry.runtime_data
    session = data.session
    changed = [
        option
        for option in {*entry.options, *session.options}
        if entry.options.get(option) != session.options.get(option)
    ]
    if entry.data[CONF_AGENCY_NAME] != session.agency:
        changed.append(CONF_AGENCY_NAME)
    if CONF_PRIVACY_MASKS in changed:
        masks = _stored_masks(entry)
        # Under the lock: no grant comes between the end and the new masks.
        async with session.lock:
            await session.async_end_locked(EndReason.PRIVACY_MASKS_CHANGED)
            if masks is not None:
                await data.masked.async_set_masks(masks)
            else:
                # Nothing is granted until the reload fails the setup.
                await data.masked.async_close()
        if masks is None:
            hass.config_entries.async_schedule_reload(entry.entry_id)
    if changed:
        await session.audit.async_try_append(
            AuditEvent.OPTIONS_CHANGED, changed=sorted(changed)
        )
    if (key := entry.data[CONF_VERIFICATION_KEY]) != session.data[
        CONF_VERIFICATION_KEY
    ]:
        key_type = "v1" if key.startswith(SECRET_PREFIX) else "v1a"
        await session.audit.async_try_append(AuditEvent.KEY_ROTATED, key_type=key_type)
    reload = any(
        entry.data.get(field) != session.data.get(field)
        for field in {*entry.data, *session.data} - {CONF_AGENCY_NAME}
    )
    session.data = dict(entry.data)
    if reload:
        # The reload ends a live share: the old key must not keep it going.
        hass.config_entries.async_schedule_reload(entry.entry_id)
    elif changed:
        if CONF_AGENCY_NAME in changed:
            _async_name_device(hass, entry)
        session.async_update_options(dict(entry.options))


@callback
def _async_name_device(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Show the new agency on the entry's device, as a setup would."""
    devices = dr.async_get(hass)
    if device := devices.async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    ):
        devices.async_update_device(
            device.id, model=device_model(entry.runtime_data.session.agency)
        )


async def async_unload_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> bool:
    """Stop sharing, then remove the entities; unload callbacks drop the rest."""
    await _async_stop(hass, entry)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
    """Delete the entry's stored state and issues; the audit log stays with the resident."""
    await SeenIdStore(hass, entry.entry_id).async_remove()
    await ShareHistory(hass, entry.entry_id).async_remove()
    Repairs(
        hass, entry.entry_id, camera_entity_id(hass, entry.data[CONF_CAMERA_ENTITY_ID])
    ).async_clear()
    await AuditLog.async_forget(hass, entry.entry_id)
