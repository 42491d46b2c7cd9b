"""Config, options and reconfigure flows for rtcc_share."""

from collections.abc import Mapping
from contextlib import suppress
import re
from typing import Any

from homeassistant.components import webhook
from homeassistant.components.camera import async_get_stream_source
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .activation import secure_external_url
from .const import (
    CONF_AGENCY_NAME,
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_ALLOWED_INCIDENT_TYPES,
    CONF_CAMERA_ENTITY_ID,
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_NOTIFY_TARGETS,
    CONF_PRIVACY_MASKS,
    CONF_REQUIRE_RECIPIENT,
    CONF_SHARE_AUDIO,
    CONF_STREAM_KINDS,
    CONF_TURN_SECRET,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    DEFAULT_ALLOWED_INCIDENT_TYPES,
    DEFAULT_OPTIONS,
    DOMAIN,
    INCIDENT_TYPE_MAX_LEN,
    INCIDENT_TYPE_PATTERN,
    OPTION_RANGES,
    PUBLIC_KEY_PREFIX,
    SECRET_PREFIX,
    STREAM_HLS,
    STREAM_KINDS,
    STREAM_WEBRTC,
)
from .live import webrtc_share
from .live.ice import IceServerError, check_options as check_ice_options
from .live.masks import (
    InvalidMasksError,
    Mask,
    format_masks,
    masks_from_option,
    parse_masks,
)
from .signature import InvalidKeyError, check_new_key, generate_secret
from .source_camera import camera_entity_id, camera_to_store

CONF_KEY_MODE = "key_mode"
KEY_MODE_GENERATE = "generate"
KEY_MODE_PUBLIC_KEY = "public_key"
AGENCY_NAME_MAX_LEN = 100
# What the hand-over screens say about the webhook URL they show.
URL_PATH_ONLY = "webhook_path_only"
URL_INSECURE = "webhook_url_insecure"
# Notify services that are no target of their own.
NOT_NOTIFY_TARGETS = frozenset({"send_message", "persistent_notification"})

_INCIDENT_TYPE_RE = re.compile(INCIDENT_TYPE_PATTERN)

KEY_MODE_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[KEY_MODE_PUBLIC_KEY, KEY_MODE_GENERATE],
        translation_key=CONF_KEY_MODE,
        mode=SelectSelectorMode.LIST,
    )
)


def _key_schema() -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(
                CONF_KEY_MODE, default=KEY_MODE_PUBLIC_KEY
            ): KEY_MODE_SELECTOR,
            probatio.Optional(CONF_VERIFICATION_KEY): TextSelector(),
        }
    )


def _validate_key(user_input: Mapping[str, Any], errors: dict[str, str]) -> str | None:
    """Return the verification key chosen in the form, or None with an error set."""
    if user_input[CONF_KEY_MODE] == KEY_MODE_GENERATE:
        return generate_secret()
    key = str(user_input.get(CONF_VERIFICATION_KEY, "")).strip()
    if not key:
        errors[CONF_VERIFICATION_KEY] = "key_required"
        return None
    try:
        check_new_key(key)
    except InvalidKeyError as err:
        errors[CONF_VERIFICATION_KEY] = err.reason
        return None
    return key


def _validate_agency(user_input: Mapping[str, Any], errors: dict[str, str]) -> str:
    agency = str(user_input.get(CONF_AGENCY_NAME, "")).strip()
    if not agency or len(agency) > AGENCY_NAME_MAX_LEN:
        errors[CONF_AGENCY_NAME] = "invalid_agency_name"
    return agency


async def _async_camera_kinds(hass: HomeAssistant, entity_id: str) -> list[str]:
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


async def _async_validate_camera(hass: HomeAssistant, entity_id: str) -> str | None:
    """Return an error key when the camera cannot be shared, else None."""
    if hass.states.get(entity_id) is None:
        return "camera_not_found"
    try:
        kinds = await _async_camera_kinds(hass, entity_id)
    except HomeAssistantError:
        return "camera_not_found"
    return None if kinds else "no_stream_source"


async def _async_webrtc_only(hass: HomeAssistant, entity_id: str) -> bool:
    """Return True for a camera whose video never passes through the home.

    A camera that streams only over WebRTC (Ring, Nest) has no stream
    source: it cannot be given privacy masks. A camera that is off now is
    not judged by what it offers now.
    """
    with suppress(HomeAssistantError):
        return await _async_camera_kinds(hass, entity_id) == [STREAM_WEBRTC]
    return False


def _hand_over_url(hass: HomeAssistant, webhook_id: str) -> tuple[str, str | None]:
    """Return the webhook URL for the city, and what the screen must say of it.

    The address every grant is given (external HTTPS with a host name, Home
    Assistant Cloud's Remote UI included); else an external address on which
    every grant would be refused (plain HTTP, an IP address), with a
    warning; else only the path, never an internal address.
    """
    path = webhook.async_generate_path(webhook_id)
    if (base := secure_external_url(hass)) is not None:
        return base + path, None
    try:
        base = get_url(hass, allow_internal=False, allow_ip=True)
    except NoURLAvailableError:
        return path, URL_PATH_ONLY
    return base.rstrip("/") + path, URL_INSECURE


def _hand_over_placeholders(webhook_url: str, key: str) -> dict[str, str]:
    """What the resident hands to the city: a new secret only when it is made."""
    return {
        "webhook_url": webhook_url,
        "secret": key if key.startswith(SECRET_PREFIX) else "-",
    }


class RtccShareConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one camera to share with a city's Real Time Crime Center."""

    # 2: the camera is stored by its entity registry id.
    VERSION = 2

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._data: dict[str, Any] = {}
        self._camera = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> RtccShareOptionsFlow:
        """Return the options flow."""
        return RtccShareOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the camera and name the agency."""
        errors: dict[str, str] = {}
        if user_input is not None:
            camera = user_input[CONF_CAMERA_ENTITY_ID]
            # The same camera, however it is renamed, is added only once.
            await self.async_set_unique_id(camera_to_store(self.hass, camera))
            self._abort_if_unique_id_configured()
            # An entry not yet migrated from storing the entity id.
            self._async_abort_entries_match({CONF_CAMERA_ENTITY_ID: camera})
            agency = _validate_agency(user_input, errors)
            if not errors and (
                error := await _async_validate_camera(self.hass, camera)
            ):
                errors[CONF_CAMERA_ENTITY_ID] = error
            if not errors:
                self._camera = camera
                self._data = {
                    CONF_CAMERA_ENTITY_ID: camera_to_store(self.hass, camera),
                    CONF_AGENCY_NAME: agency,
                }
                if await _async_webrtc_only(self.hass, camera):
                    return await self.async_step_webrtc_only()
                return await self.async_step_key()
        schema = probatio.Schema(
            {
                probatio.Required(CONF_CAMERA_ENTITY_ID): EntitySelector(
                    EntitySelectorConfig(domain="camera")
                ),
                probatio.Required(CONF_AGENCY_NAME): TextSelector(),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_webrtc_only(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Tell the resident that this camera's picture cannot be masked."""
        if user_input is not None:
            return await self.async_step_key()
        state = self.hass.states.get(self._camera)
        return self.async_show_form(
            step_id="webrtc_only",
            description_placeholders={"camera": state.name if state else self._camera},
        )

    async def async_step_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pin the city's public key, or generate a shared secret."""
        errors: dict[str, str] = {}
        if user_input is not None and (key := _validate_key(user_input, errors)):
            webhook_id = webhook.async_generate_id()
            camera = self._camera
            # HLS where the camera has a stream source; WebRTC only for a
            # camera that offers nothing else (a Ring doorbell).
            kinds = [STREAM_HLS]
            with suppress(HomeAssistantError):
                kinds = (await _async_camera_kinds(self.hass, camera))[:1] or kinds
            state = self.hass.states.get(camera)
            name = state.name if state else camera
            url, note = _hand_over_url(self.hass, webhook_id)
            return self.async_create_entry(
                title=name,
                data={
                    **self._data,
                    CONF_WEBHOOK_ID: webhook_id,
                    CONF_VERIFICATION_KEY: key,
                },
                # A city key may be pinned by many homes: require messages
                # addressed to this one, so none can be replayed elsewhere.
                options={
                    **DEFAULT_OPTIONS,
                    CONF_REQUIRE_RECIPIENT: key.startswith(PUBLIC_KEY_PREFIX),
                    CONF_STREAM_KINDS: kinds,
                },
                description=note,
                description_placeholders=_hand_over_placeholders(url, key),
            )
        return self.async_show_form(
            step_id="key",
            data_schema=self.add_suggested_values_to_schema(_key_schema(), user_input),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the webhook URL again, or change the agency or the key."""
        return self.async_show_menu(
            step_id="reconfigure", menu_options=["hand_over", "change_key"]
        )

    async def async_step_hand_over(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the webhook URL again; nothing changes.

        A shared secret was shown once and stays unseen (a new one can be
        generated); a pinned public key is the city's own and is shown.
        """
        entry = self._get_reconfigure_entry()
        url, note = _hand_over_url(self.hass, entry.data[CONF_WEBHOOK_ID])
        key = entry.data[CONF_VERIFICATION_KEY]
        placeholders = {
            "webhook_url": url,
            "public_key": key if key.startswith(PUBLIC_KEY_PREFIX) else "-",
        }
        if note == URL_PATH_ONLY:
            return self.async_abort(
                reason="hand_over_path_only", description_placeholders=placeholders
            )
        if note == URL_INSECURE:
            return self.async_abort(
                reason="hand_over_insecure", description_placeholders=placeholders
            )
        return self.async_abort(
            reason="hand_over", description_placeholders=placeholders
        )

    async def async_step_change_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the agency's name or the verification key."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            agency = _validate_agency(user_input, errors)
            key = _validate_key(user_input, errors)
            if key and not errors:
                self._data = {CONF_AGENCY_NAME: agency, CONF_VERIFICATION_KEY: key}
                if user_input[CONF_KEY_MODE] == KEY_MODE_GENERATE:
                    return await self.async_step_reconfigure_secret()
                return self.async_update_and_abort(entry, data_updates=self._data)
        schema = probatio.Schema(
            {probatio.Required(CONF_AGENCY_NAME): TextSelector()}
        ).extend(_key_schema().schema)
        suggested = user_input or {CONF_AGENCY_NAME: entry.data[CONF_AGENCY_NAME]}
        return self.async_show_form(
            step_id="change_key",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_reconfigure_secret(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the new secret once; it is saved when the resident confirms."""
        entry = self._get_reconfigure_entry()
        if user_input is not None:
            return self.async_update_and_abort(entry, data_updates=self._data)
        url, _ = _hand_over_url(self.hass, entry.data[CONF_WEBHOOK_ID])
        return self.async_show_form(
            step_id="reconfigure_secret",
            description_placeholders=_hand_over_placeholders(
                url, self._data[CONF_VERIFICATION_KEY]
            ),
        )


def _number(option: str) -> NumberSelector:
    low, high = OPTION_RANGES[option]
    return NumberSelector(
        NumberSelectorConfig(min=low, max=high, step=1, mode=NumberSelectorMode.BOX)
    )


def _notify_targets(hass: HomeAssistant) -> list[str]:
    """Return the notify entities and services to choose from (phones among them)."""
    services = hass.services.async_services_for_domain("notify")
    return sorted(
        {
            *hass.states.async_entity_ids("notify"),
            *(f"notify.{name}" for name in services if name not in NOT_NOTIFY_TARGETS),
        }
    )


def _options_schema(hass: HomeAssistant) -> probatio.Schema:
    fields: dict[Any, Any] = {
        probatio.Required(option): _number(option) for option in OPTION_RANGES
    }
    fields[probatio.Required(CONF_ALLOWED_INCIDENT_TYPES)] = SelectSelector(
        SelectSelectorConfig(
            options=list(DEFAULT_ALLOWED_INCIDENT_TYPES),
            multiple=True,
            custom_value=True,
            translation_key=CONF_ALLOWED_INCIDENT_TYPES,
        )
    )
    fields[probatio.Required(CONF_SHARE_AUDIO)] = BooleanSelector()
    fields[probatio.Optional(CONF_NOTIFY_TARGETS)] = SelectSelector(
        SelectSelectorConfig(
            options=_notify_targets(hass), multiple=True, custom_value=True
        )
    )
    fields[probatio.Required(CONF_ALLOW_HTTP_STREAM_URL)] = BooleanSelector()
    fields[probatio.Required(CONF_REQUIRE_RECIPIENT)] = BooleanSelector()
    fields[probatio.Optional(CONF_ICE_SERVERS)] = SelectSelector(
        SelectSelectorConfig(options=[], multiple=True, custom_value=True)
    )
    fields[probatio.Optional(CONF_TURN_SECRET)] = TextSelector(
        TextSelectorConfig(type=TextSelectorType.PASSWORD)
    )
    fields[probatio.Required(CONF_ICE_STATIC_CREDENTIALS_ACCEPTED)] = BooleanSelector()
    fields[probatio.Required(CONF_STREAM_KINDS)] = SelectSelector(
        SelectSelectorConfig(
            options=list(STREAM_KINDS),
            multiple=True,
            translation_key=CONF_STREAM_KINDS,
        )
    )
    # The masks' text form, one rectangle per line (stored as fractions).
    fields[probatio.Optional(CONF_PRIVACY_MASKS)] = TextSelector(
        TextSelectorConfig(multiline=True)
    )
    return probatio.Schema(fields)


def _validate_options(user_input: Mapping[str, Any], errors: dict[str, str]) -> None:
    for option, (low, high) in OPTION_RANGES.items():
        value = user_input[option]
        if value != int(value) or not low <= value <= high:
            errors[option] = "out_of_range"
    types = user_input[CONF_ALLOWED_INCIDENT_TYPES]
    if any(
        len(code) > INCIDENT_TYPE_MAX_LEN or not _INCIDENT_TYPE_RE.match(code)
        for code in types
    ):
        errors[CONF_ALLOWED_INCIDENT_TYPES] = "invalid_incident_type"
    targets = user_input.get(CONF_NOTIFY_TARGETS, [])
    if any(not target.startswith("notify.") for target in targets):
        errors[CONF_NOTIFY_TARGETS] = "invalid_notify_target"
    if not user_input.get(CONF_STREAM_KINDS):
        errors[CONF_STREAM_KINDS] = "no_stream_kind"
    try:
        check_ice_options(user_input)
    except IceServerError as err:
        errors[err.field] = err.reason


def _stored_masks_text(options: Mapping[str, Any]) -> str:
    """Return the form's text of the stored masks ("" if they are not valid)."""
    try:
        return format_masks(masks_from_option(options.get(CONF_PRIVACY_MASKS, [])))
    except InvalidMasksError:
        return ""


class RtccShareOptionsFlow(OptionsFlow):
    """The resident's limits; defaults are the privacy-preserving ones."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show every option with its range."""
        errors: dict[str, str] = {}
        placeholders = {"line": "-"}
        if user_input is not None:
            _validate_options(user_input, errors)
            masks = await self._async_validate_masks(user_input, errors, placeholders)
            if not errors:
                options = {
                    **DEFAULT_OPTIONS,
                    **user_input,
                    **{option: int(user_input[option]) for option in OPTION_RANGES},
                    CONF_PRIVACY_MASKS: [list(mask) for mask in masks],
                }
                return self.async_create_entry(data=options)
        current = {
            **DEFAULT_OPTIONS,
            **self.config_entry.options,
            CONF_PRIVACY_MASKS: _stored_masks_text(self.config_entry.options),
            **(user_input or {}),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                _options_schema(self.hass), current
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_validate_masks(
        self,
        user_input: Mapping[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> tuple[Mask, ...]:
        """Return the masks of the form's text, or none with an error set."""
        try:
            masks = parse_masks(str(user_input.get(CONF_PRIVACY_MASKS) or ""))
        except InvalidMasksError as err:
            errors[CONF_PRIVACY_MASKS] = err.reason
            if err.line is not None:
                placeholders["line"] = str(err.line)
            return ()
        camera = camera_entity_id(
            self.hass, self.config_entry.data[CONF_CAMERA_ENTITY_ID]
        )
        if masks and await _async_webrtc_only(self.hass, camera):
            errors[CONF_PRIVACY_MASKS] = "masks_need_stream_source"
        return masks
