"""Repair issues: raised where the fault is found, cleared as soon as it is gone.

None of them has a fix flow: each asks the resident to change something
outside the integration (the disk, the external URL).
"""

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

ISSUE_AUDIT_LOG = "audit_log_unavailable"
ISSUE_NO_EXTERNAL_URL = "no_external_url"


class Repairs:
    """The repair issues of one entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str, camera: str) -> None:
        """Name issues after the entry; describe them with the camera."""
        self._hass = hass
        self._entry_id = entry_id
        self._camera = camera

    @callback
    def audit_log(self, ok: bool) -> None:
        """Follow the audit log: every append says whether it could write."""
        issue_id = f"{ISSUE_AUDIT_LOG}_{self._entry_id}"
        if ok:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.CRITICAL,
            translation_key=ISSUE_AUDIT_LOG,
            translation_placeholders={"camera": self._camera},
        )

    @callback
    def external_url(self, *, available: bool) -> None:
        """Follow whether Home Assistant has an address to give the city."""
        issue_id = f"{ISSUE_NO_EXTERNAL_URL}_{self._entry_id}"
        if available:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_NO_EXTERNAL_URL,
            translation_placeholders={"camera": self._camera},
        )

    @callback
    def async_clear(self) -> None:
        """Remove every issue of the entry (unloaded or removed)."""
        for key in (ISSUE_AUDIT_LOG, ISSUE_NO_EXTERNAL_URL):
            ir.async_delete_issue(self._hass, DOMAIN, f"{key}_{self._entry_id}")
