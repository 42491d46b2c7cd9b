"""Floods of refused requests: counted in full, written in bounded records."""

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import REFUSALS_IN_FULL_PER_INTERVAL

from .common import City, requested
from .conftest import WEBHOOK_ID


async def test_authenticated_flood_writes_bounded_records_and_counts_all(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    """100 refusals in a minute: a few full records, one summary, all counted."""
    audit = integration.runtime_data.audit
    before = len(await audit.async_export(None, None))
    client = await hass_client_no_auth()
    for index in range(100):  # a leaked key, fresh ids, consent off
        body, headers = city.sign(requested(f"FLOOD-{index}"))
        response = await client.post(
            f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers
        )
        assert response.status == 403
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    records: list[dict[str, Any]] = (await audit.async_export(None, None))[before:]
    assert len(records) == REFUSALS_IN_FULL_PER_INTERVAL + 1
    *full, summary = records
    assert [r["activation_id"] for r in full] == ["FLOOD-0", "FLOOD-1", "FLOOD-2"]
    assert summary["reason"] == "consent_off"
    assert summary["count"] == 100 - REFUSALS_IN_FULL_PER_INTERVAL
    assert "activation_id" not in summary
    [month] = await audit.async_transparency_report()
    assert month["refused_by_reason"] == {"consent_off": 100}
    # A new minute writes in full again.
    body, headers = city.sign(requested("AFTER"))
    await client.post(f"/api/webhook/{WEBHOOK_ID}", data=body, headers=headers)
    assert (await audit.async_export(None, None))[-1]["activation_id"] == "AFTER"
