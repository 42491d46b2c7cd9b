"""Tests for the audit-log actions."""

import csv
import io
import json
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers.service import async_get_all_descriptions
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.rtcc_share.audit import AuditLog
from custom_components.rtcc_share.const import DOMAIN


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Give every test its own, empty config directory (the log lives there)."""
    return str(tmp_path)


def _audit(entry: MockConfigEntry) -> AuditLog:
    audit: AuditLog = entry.runtime_data.audit
    return audit


async def _call(
    hass: HomeAssistant, service: str, entry_id: str, **data: Any
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        service,
        {"config_entry_id": entry_id, **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return response


async def _append_at(
    freezer: FrozenDateTimeFactory,
    audit: AuditLog,
    when: str,
    event: str,
    **fields: Any,
) -> None:
    freezer.move_to(when)
    await audit.async_append(event, **fields)


async def test_verify_audit_log(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """The action reports a valid chain and its length, then the first bad seq."""
    audit = _audit(integration)
    await audit.async_append("consent_on", cause="resident")
    await audit.async_append("consent_off", cause="resident")
    count = len(await audit.async_export(None, None))
    assert await _call(hass, "verify_audit_log", integration.entry_id) == {
        "valid": True,
        "records": count,
        "first_bad_seq": None,
        "truncated": False,
        "expected_last_seq": None,
    }

    lines = audit.path.read_bytes().splitlines(keepends=True)
    lines[-2] = lines[-2].replace(b'"cause":"resident"', b'"cause":"lapse"')
    audit.path.write_bytes(b"".join(lines))
    assert await _call(hass, "verify_audit_log", integration.entry_id) == {
        "valid": False,
        "records": count,
        "first_bad_seq": count - 1,
        "truncated": False,
        "expected_last_seq": None,
    }


async def test_verify_audit_log_reports_a_cut_end(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Records cut off the end at a record boundary leave a valid chain: reported."""
    audit = _audit(integration)
    await audit.async_append("consent_on", cause="resident")
    last = await audit.async_append("consent_off", cause="resident")
    lines = audit.path.read_bytes().splitlines(keepends=True)
    audit.path.write_bytes(b"".join(lines[:-2]))
    assert await _call(hass, "verify_audit_log", integration.entry_id) == {
        "valid": False,
        "records": last.seq - 2,
        "first_bad_seq": None,
        "truncated": True,
        "expected_last_seq": last.seq,
    }


async def test_export_audit_log(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Records in a time range, as JSON records or as CSV text."""
    audit = _audit(integration)
    await _append_at(
        freezer, audit, "2026-11-27T10:00:00Z", "consent_on", cause="resident"
    )
    await _append_at(
        freezer,
        audit,
        "2026-11-27T11:00:00Z",
        "share_ended",
        activation_id="JPD-RTCC-0017",
        reason="expired",
        duration_s=600,
        viewers=[{"address": "203.0.113.7", "requests": 3}],
    )
    await _append_at(
        freezer, audit, "2026-11-27T12:00:00Z", "consent_off", cause="lapse"
    )
    everything = await audit.async_export(None, None)

    response = await _call(hass, "export_audit_log", integration.entry_id)
    assert response == {"records": everything}

    response = await _call(
        hass,
        "export_audit_log",
        integration.entry_id,
        start="2026-11-27T10:30:00+00:00",
        end="2026-11-27T11:30:00Z",
    )
    assert [r["event"] for r in response["records"]] == ["share_ended"]

    # Without a time zone, times are the resident's local time.
    await hass.config.async_update(time_zone="America/Chicago")
    response = await _call(
        hass,
        "export_audit_log",
        integration.entry_id,
        start="2026-11-27 04:30:00",
        format="csv",
    )
    rows = list(csv.reader(io.StringIO(response["csv"])))
    assert rows[0] == [
        "seq",
        "ts",
        "event",
        "activation_id",
        "reason",
        "prev",
        "hash",
        "details",
    ]
    ended, last = everything[-2], everything[-1]
    assert rows[1][:7] == [
        str(ended["seq"]),
        "2026-11-27T11:00:00.000000Z",
        "share_ended",
        "JPD-RTCC-0017",
        "expired",
        ended["prev"],
        ended["hash"],
    ]
    assert json.loads(rows[1][7]) == {
        "duration_s": 600,
        "viewers": [{"address": "203.0.113.7", "requests": 3}],
    }
    assert rows[2][2:5] == ["consent_off", "", ""]
    assert json.loads(rows[2][7]) == {"cause": "lapse"}
    assert rows[2][6] == last["hash"]
    assert len(rows) == 3


async def test_export_invalid_time_range(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A start after the end is refused with a translated error."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "export_audit_log",
            integration.entry_id,
            start="2026-11-27T12:00:00Z",
            end="2026-11-27T11:00:00Z",
        )
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "invalid_time_range"


async def test_csv_export_formula_cells_are_neutralised(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A cell a spreadsheet would evaluate starts with a quote, in every column."""
    audit = _audit(integration)
    hostile = ["-2-3", "-A1:A9", "=HYPERLINK(1)", "+1", "@SUM(A1)", "\tx", "\rx"]
    for value in hostile:
        await audit.async_append(value, activation_id=value, reason=value)
    response = await _call(hass, "export_audit_log", integration.entry_id, format="csv")
    rows = list(csv.reader(io.StringIO(response["csv"])))[1:]
    assert [row[2:5] for row in rows] == [["'" + value] * 3 for value in hostile]
    for row in rows:
        assert not any(
            cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row
        )


@pytest.mark.parametrize(
    ("start", "end"),
    [("0001-01-01 00:00:00", "9999-12-31 23:59:59"), ("0001-01-01", None)],
)
async def test_export_with_extreme_naive_times_is_a_validation_error(
    hass: HomeAssistant, integration: MockConfigEntry, start: str, end: str | None
) -> None:
    """Times that leave the representable range in UTC: a translated error."""
    await hass.config.async_update(time_zone="Asia/Tokyo")
    data = {"start": start} | ({} if end is None else {"end": end})
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "export_audit_log", integration.entry_id, **data)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "time_out_of_range"
    await hass.config.async_update(time_zone="America/Chicago")
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass, "export_audit_log", integration.entry_id, end="9999-12-31 23:59:59"
        )
    assert err.value.translation_key == "time_out_of_range"


@pytest.mark.parametrize(
    "service", ["export_audit_log", "verify_audit_log", "transparency_report"]
)
async def test_non_admin_user_cannot_read_the_audit_log(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
    service: str,
) -> None:
    """A read-only user is refused every audit action; an admin is not."""

    async def call_as(user: MockUser) -> Any:
        return await hass.services.async_call(
            DOMAIN,
            service,
            {"config_entry_id": integration.entry_id},
            blocking=True,
            return_response=True,
            context=Context(user_id=user.id),
        )

    with pytest.raises(Unauthorized):
        await call_as(hass_read_only_user)
    assert await call_as(hass_admin_user)


async def test_export_rejects_unknown_format(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Only json and csv are offered."""
    with pytest.raises(probatio.Invalid):
        await _call(hass, "export_audit_log", integration.entry_id, format="xml")


async def test_transparency_report(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Per-month statistics of requests, grants, refusals and minutes."""
    audit = _audit(integration)
    ids = {
        "activation_id": "JPD-RTCC-0017",
        "incident_id": "CAD-20-118233",
        "incident_type": "shots_fired",
        "operator_id": "op-17",
    }
    await _append_at(
        freezer,
        audit,
        "2026-12-01T09:00:00Z",
        "activation_granted",
        **ids,
        legal_basis="exigent_circumstances",
        distance_m=112.4,
        granted_duration_s=900,
        expires_at="2026-12-01T09:15:00Z",
    )
    await _append_at(
        freezer,
        audit,
        "2026-12-01T09:12:30Z",
        "share_ended",
        activation_id="JPD-RTCC-0017",
        reason="ended_by_city",
        duration_s=750,
        viewers=[],
    )
    await _append_at(
        freezer,
        audit,
        "2026-12-02T09:00:00Z",
        "activation_refused",
        **{**ids, "activation_id": "JPD-RTCC-0018"},
        reason="outside_area",
    )
    assert await _call(hass, "transparency_report", integration.entry_id) == {
        "months": [
            {
                "month": "2026-12",
                "requested": 2,
                "granted": 1,
                "refused_by_reason": {"outside_area": 1},
                "minutes_shared": 12.5,
                "distinct_operators": 1,
                "distinct_incidents": 1,
            }
        ]
    }


@pytest.mark.parametrize(
    "service", ["export_audit_log", "verify_audit_log", "transparency_report"]
)
async def test_unknown_or_foreign_entry(
    hass: HomeAssistant, integration: MockConfigEntry, service: str
) -> None:
    """An entry id that is not one of ours is refused with a translated error."""
    other = MockConfigEntry(domain="demo", title="Demo")
    other.add_to_hass(hass)
    for entry_id in ("no-such-entry", other.entry_id):
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, service, entry_id)
        assert err.value.translation_domain == DOMAIN
        assert err.value.translation_key == "entry_not_found"
        assert err.value.translation_placeholders == {"entry_id": entry_id}


@pytest.mark.parametrize(
    "service", ["export_audit_log", "verify_audit_log", "transparency_report"]
)
async def test_entry_not_loaded(
    hass: HomeAssistant, integration: MockConfigEntry, service: str
) -> None:
    """An unloaded entry is refused with a translated error."""
    assert await hass.config_entries.async_unload(integration.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, service, integration.entry_id)
    assert err.value.translation_key == "entry_not_loaded"
    assert err.value.translation_placeholders == {"title": "Front door"}


async def test_actions_are_response_only(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Calling without asking for the response is an error (nothing to do)."""
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "verify_audit_log",
            {"config_entry_id": integration.entry_id},
            blocking=True,
        )


async def test_service_descriptions(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """services.yaml describes every action and its fields."""
    descriptions = (await async_get_all_descriptions(hass))[DOMAIN]
    assert set(descriptions["export_audit_log"]["fields"]) == {
        "config_entry_id",
        "start",
        "end",
        "format",
    }
    for service in ("verify_audit_log", "transparency_report"):
        assert set(descriptions[service]["fields"]) == {"config_entry_id"}
    assert descriptions["verify_audit_log"]["fields"]["config_entry_id"][
        "selector"
    ] == {"config_entry": {"integration": DOMAIN}}
