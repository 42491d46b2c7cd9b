"""Everything the resident is told: a notification on every start and end.

Driven by the session's events: a persistent notification (Markdown, so
city-supplied values are escaped), and a message to each chosen notify
target. A phone gets a "Stop sharing" action, which only the Companion
app's legacy service (`notify.mobile_app_<phone>`) carries: a phone chosen
by its notify entity, which takes a title and a message only, is sent
through that service. A test share is marked as one. Sending runs as the
entry's background work, so unloading the entry cancels it.
"""

from collections.abc import Callable
import logging
from typing import Any

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.util import dt as dt_util, slugify

from .const import CONF_NOTIFY_TARGETS, DOMAIN, signal_event, stop_action
from .data import RtccShareConfigEntry
from .texts import Texts, cached_texts, markdown_escape, plain

_LOGGER = logging.getLogger(__name__)

MOBILE_APP = "mobile_app"
# The Companion app's registration, as the mobile_app integration stores it.
MOBILE_APP_DEVICE_NAME = "device_name"


@callback
def _phone_service(hass: HomeAssistant, entity_id: str) -> str | None:
    """Return the legacy notify service of the phone a notify entity belongs to.

    Named as Home Assistant's legacy notify names a target of the mobile_app
    platform: `mobile_app_` and the registered device name, slugified.
    """
    registered = er.async_get(hass).async_get(entity_id)
    if registered is None or registered.platform != MOBILE_APP:
        return None
    app = hass.config_entries.async_get_entry(registered.config_entry_id or "")
    if app is None or not (device := app.data.get(MOBILE_APP_DEVICE_NAME)):
        return None
    service = slugify(f"{MOBILE_APP}_{device}")
    return service if hass.services.has_service("notify", service) else None


class Notifier:
    """Tells the resident of one entry about grants and ends."""

    def __init__(self, hass: HomeAssistant, entry: RtccShareConfigEntry) -> None:
        """Notify about the entry's session."""
        self._hass = hass
        self._entry = entry

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the session's events; return the cancel callback."""
        return async_dispatcher_connect(
            self._hass, signal_event(self._entry.entry_id), self._async_event
        )

    @callback
    def _async_event(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type not in ("granted", "ended"):
            return
        # Loaded at setup: the notification appears at once, with the event.
        texts = cached_texts(self._hass)
        # The persistent notification renders Markdown; notify targets vary.
        title, markdown = self._compose(texts, event_type, data, markdown_escape)
        persistent_notification.async_create(
            self._hass,
            markdown,
            title=title,
            notification_id=f"{DOMAIN}_{self._entry.entry_id}",
        )
        _, text = self._compose(texts, event_type, data, plain)
        stop = texts.text("notify_stop_action") if event_type == "granted" else None
        for target in self._entry.runtime_data.session.options[CONF_NOTIFY_TARGETS]:
            self._entry.async_create_background_task(
                self._hass,
                self._async_send(target, title, text, stop),
                f"{DOMAIN} notify {target}",
            )

    def _compose(
        self,
        texts: Texts,
        event_type: str,
        data: dict[str, Any],
        clean: Callable[[Any], str],
    ) -> tuple[str, str]:
        """Return the title and message; `clean` neutralises the city's values."""
        session = self._entry.runtime_data.session
        if event_type == "granted":
            expires = dt_util.parse_datetime(str(data["expires_at"]))
            title = texts.text("notify_granted_title")
            message = texts.text(
                "notify_granted_message",
                agency=session.agency,
                camera=session.camera_name,
                incident_type=texts.incident_type(data["incident_type"], clean),
                incident_id=clean(data["incident_id"]),
                operator_id=clean(data["operator_id"]),
                distance=texts.distance(data["distance_m"], self._hass.config.units),
                until=texts.clock(expires) if expires else "",
            )
        else:
            title = texts.text("notify_ended_title")
            message = texts.text(
                "notify_ended_message",
                agency=session.agency,
                camera=session.camera_name,
                reason=texts.reason(data["reason"]),
                duration=texts.duration(data["duration_s"]),
            )
        if not data.get("test"):
            return title, message
        note = (
            texts.text("notify_test_granted_note")
            if event_type == "granted"
            else texts.text("notify_test_ended_note")
        )
        return texts.text("notify_test_title", title=title), f"{note}\n\n{message}"

    async def _async_send(
        self, target: str, title: str, message: str, stop_title: str | None
    ) -> None:
        domain, _, name = target.partition(".")
        # A phone's notify entity takes no actions; its legacy service does.
        phone = _phone_service(self._hass, target)
        try:
            if phone is None and self._hass.states.get(target) is not None:
                await self._hass.services.async_call(
                    domain,
                    "send_message",
                    {"entity_id": target, "title": title, "message": message},
                    blocking=True,
                )
                return
            data: dict[str, Any] = {"title": title, "message": message}
            if stop_title is not None:
                data["data"] = {
                    "actions": [
                        {
                            "action": stop_action(self._entry.entry_id),
                            "title": stop_title,
                        }
                    ]
                }
            await self._hass.services.async_call(
                domain, phone or name, data, blocking=True
            )
        except HomeAssistantError as err:
            _LOGGER.warning("Could not notify %s: %s", target, type(err).__name__)
