"""Actions of the rtcc_share integration: the resident's view of the audit log."""

import csv
from datetime import datetime
import io
import json
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
import probatio

from .audit import AuditLog
from .const import DOMAIN
from .data import RtccShareConfigEntry

SERVICE_EXPORT_AUDIT_LOG = "export_audit_log"
SERVICE_VERIFY_AUDIT_LOG = "verify_audit_log"
SERVICE_TRANSPARENCY_REPORT = "transparency_report"

ATTR_START = "start"
ATTR_END = "end"
ATTR_FORMAT = "format"
FORMAT_JSON = "json"
FORMAT_CSV = "csv"

# Own CSV columns; every other field goes, as JSON, into `details`.
CSV_COLUMNS = ("seq", "ts", "event", "activation_id", "reason", "prev", "hash")
# A spreadsheet evaluates a cell starting with one of these as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_ENTRY_SCHEMA = probatio.Schema({probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
EXPORT_SCHEMA = _ENTRY_SCHEMA.extend(
    {
        probatio.Optional(ATTR_START): cv.datetime,
        probatio.Optional(ATTR_END): cv.datetime,
        probatio.Optional(ATTR_FORMAT, default=FORMAT_JSON): probatio.In(
            [FORMAT_JSON, FORMAT_CSV]
        ),
    }
)


def _audit_log(call: ServiceCall) -> AuditLog:
    """Return the audit log of the loaded entry the call names."""
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry: RtccShareConfigEntry | None = call.hass.config_entries.async_get_entry(
        entry_id
    )
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry.runtime_data.audit


def _csv_cell(value: Any) -> str:
    """Return a cell's text; a leading quote keeps a spreadsheet from evaluating it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


def _to_csv(records: list[dict[str, Any]]) -> str:
    """Return the records as CSV text, one row per record."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, "details"])
    for record in records:
        details = {k: v for k, v in record.items() if k not in CSV_COLUMNS}
        cells = [
            *(record.get(column) for column in CSV_COLUMNS),
            json.dumps(details, sort_keys=True, ensure_ascii=False),
        ]
        writer.writerow([_csv_cell(cell) for cell in cells])
    return out.getvalue()


async def _async_export_audit_log(call: ServiceCall) -> ServiceResponse:
    """Return the records in a time range, as JSON records or CSV text."""
    audit = _audit_log(call)
    start: datetime | None = call.data.get(ATTR_START)
    end: datetime | None = call.data.get(ATTR_END)
    try:
        # A datetime without a time zone is the resident's local time.
        start = None if start is None else dt_util.as_utc(start)
        end = None if end is None else dt_util.as_utc(end)
    except OverflowError as err:  # e.g. 0001-01-01 east of UTC: before year 1
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="time_out_of_range"
        ) from err
    if start is not None and end is not None and start > end:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_time_range"
        )
    records = await audit.async_export(start, end)
    if call.data[ATTR_FORMAT] == FORMAT_CSV:
        return {"csv": await call.hass.async_add_executor_job(_to_csv, records)}
    return {"records": [*records]}


async def _async_verify_audit_log(call: ServiceCall) -> ServiceResponse:
    """Verify the whole hash chain, and that no record is missing from its end."""
    result = await _audit_log(call).async_verify()
    return {
        "valid": result.valid,
        "records": result.records,
        "first_bad_seq": result.first_bad_seq,
        "truncated": result.truncated,
        "expected_last_seq": result.expected_last_seq,
    }


async def _async_transparency_report(call: ServiceCall) -> ServiceResponse:
    """Return the per-month activation statistics."""
    return {"months": [*await _audit_log(call).async_transparency_report()]}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions, for administrators only."""
    for name, handler, schema in (
        (SERVICE_EXPORT_AUDIT_LOG, _async_export_audit_log, EXPORT_SCHEMA),
        (SERVICE_VERIFY_AUDIT_LOG, _async_verify_audit_log, _ENTRY_SCHEMA),
        (SERVICE_TRANSPARENCY_REPORT, _async_transparency_report, _ENTRY_SCHEMA),
    ):
        # The log names viewers' addresses, incidents and operators.
        async_register_admin_service(
            hass,
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.ONLY,
        )
