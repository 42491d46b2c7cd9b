"""The options flow: the resident's limits, views and privacy masks.

Every option is offered with its range; the defaults are the
privacy-preserving ones. The privacy masks are shown and typed as text, one
rectangle per line in percentages, and stored as fractions.
"""

from collections.abc import Mapping
import re
from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .const import (
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_ALLOWED_INCIDENT_TYPES,
    CONF_CAMERA_ENTITY_ID,
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_INSTANT_START,
    CONF_NOTIFY_TARGETS,
    CONF_PRIVACY_MASKS,
    CONF_REQUIRE_RECIPIENT,
    CONF_SHARE_AUDIO,
    CONF_STREAM_KINDS,
    CONF_TURN_SECRET,
    DEFAULT_ALLOWED_INCIDENT_TYPES,
    DEFAULT_OPTIONS,
    INCIDENT_TYPE_MAX_LEN,
    INCIDENT_TYPE_PATTERN,
    OPTION_RANGES,
    STREAM_KINDS,
)
from .live.ice import IceServerError, check_options as check_ice_options
from .live.masks import (
    InvalidMasksError,
    Mask,
    format_masks,
    masks_from_option,
    parse_masks,
)
from .source_camera import async_webrtc_only, camera_entity_id

# Notify services that are no target of their own.
NOT_NOTIFY_TARGETS = frozenset({"send_message", "persistent_notification"})

_INCIDENT_TYPE_RE = re.compile(INCIDENT_TYPE_PATTERN)


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
    fields[probatio.Required(CONF_INSTANT_START)] = BooleanSelector()
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
        if masks and await async_webrtc_only(self.hass, camera):
            errors[CONF_PRIVACY_MASKS] = "masks_need_stream_source"
        return masks
