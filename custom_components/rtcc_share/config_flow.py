"""Config and reconfigure flows for rtcc_share (the options flow: options_flow.py)."""

from collections.abc import Mapping
from typing import Any

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
import probatio

from .activation import secure_external_url
from .const import (
    CONF_AGENCY_NAME,
    CONF_CAMERA_ENTITY_ID,
    CONF_REQUIRE_RECIPIENT,
    CONF_STREAM_KINDS,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    DEFAULT_OPTIONS,
    DOMAIN,
    PUBLIC_KEY_PREFIX,
    SECRET_PREFIX,
    STREAM_WEBRTC,
)
from .options_flow import RtccShareOptionsFlow
from .signature import InvalidKeyError, check_new_key, generate_secret
from .source_camera import async_camera_kinds, camera_to_store

CONF_KEY_MODE = "key_mode"
KEY_MODE_GENERATE = "generate"
KEY_MODE_PUBLIC_KEY = "public_key"
# Reconfigure only: change the agency's name and nothing else.
KEY_MODE_KEEP = "keep"
AGENCY_NAME_MAX_LEN = 100
# What the hand-over screens say about the webhook URL they show.
URL_PATH_ONLY = "webhook_path_only"
URL_INSECURE = "webhook_url_insecure"


KEY_MODE_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[KEY_MODE_PUBLIC_KEY, KEY_MODE_GENERATE],
        translation_key=CONF_KEY_MODE,
        mode=SelectSelectorMode.LIST,
    )
)
# Reconfigure also offers to keep the key, to change only the agency's name.
RECONFIGURE_KEY_MODE_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[KEY_MODE_KEEP, KEY_MODE_PUBLIC_KEY, KEY_MODE_GENERATE],
        translation_key=CONF_KEY_MODE,
        mode=SelectSelectorMode.LIST,
    )
)


def _key_schema(selector: SelectSelector, default: str) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(CONF_KEY_MODE, default=default): selector,
            probatio.Optional(CONF_VERIFICATION_KEY): TextSelector(),
        }
    )


def _validate_key(
    user_input: Mapping[str, Any], errors: dict[str, str], current: str = ""
) -> str | None:
    """Return the verification key chosen in the form, or None with an error set."""
    key = str(user_input.get(CONF_VERIFICATION_KEY, "")).strip()
    if user_input[CONF_KEY_MODE] == KEY_MODE_KEEP:
        if key:
            # A pasted key would be silently dropped: the resident decides.
            errors[CONF_VERIFICATION_KEY] = "key_with_keep"
            return None
        return current
    if user_input[CONF_KEY_MODE] == KEY_MODE_GENERATE:
        return generate_secret()
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


async def _async_offered(hass: HomeAssistant, entity_id: str) -> list[str] | None:
    """Return the kinds of live view the camera offers; None if it cannot be asked."""
    if hass.states.get(entity_id) is None:
        return None
    try:
        return await async_camera_kinds(hass, entity_id)
    except HomeAssistantError:
        return None


def _camera_error(offered: list[str] | None) -> str | None:
    """Return an error key when the camera cannot be shared, else None."""
    if offered is None:
        return "camera_not_found"
    if not offered:
        return "no_stream_source"
    return None


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
        # The kinds of live view the camera offered when it was picked.
        self._kinds: list[str] = []

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
            if not errors:
                offered = await _async_offered(self.hass, camera)
                if error := _camera_error(offered):
                    errors[CONF_CAMERA_ENTITY_ID] = error
                self._kinds = offered or []
            if not errors:
                self._camera = camera
                self._data = {
                    CONF_CAMERA_ENTITY_ID: camera_to_store(self.hass, camera),
                    CONF_AGENCY_NAME: agency,
                }
                if self._kinds == [STREAM_WEBRTC]:
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
            kinds = self._kinds[:1]
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
            data_schema=self.add_suggested_values_to_schema(
                _key_schema(KEY_MODE_SELECTOR, KEY_MODE_PUBLIC_KEY), user_input
            ),
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
        """Change the agency's name, the verification key, or both.

        A new name alone keeps the key: the entry is not reloaded and a live
        share goes on (`__init__`'s update listener).
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            agency = _validate_agency(user_input, errors)
            current = entry.data[CONF_VERIFICATION_KEY]
            key = _validate_key(user_input, errors, current)
            if key and not errors:
                self._data = {CONF_AGENCY_NAME: agency, CONF_VERIFICATION_KEY: key}
                if user_input[CONF_KEY_MODE] == KEY_MODE_GENERATE:
                    return await self.async_step_reconfigure_secret()
                if key != current:
                    return self.async_update_and_abort(entry, data_updates=self._data)
                if agency == entry.data[CONF_AGENCY_NAME]:
                    return self.async_abort(reason="nothing_changed")
                return self.async_update_and_abort(
                    entry, data_updates=self._data, reason="agency_changed"
                )
        schema = probatio.Schema(
            {probatio.Required(CONF_AGENCY_NAME): TextSelector()}
        ).extend(_key_schema(RECONFIGURE_KEY_MODE_SELECTOR, KEY_MODE_KEEP).schema)
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
