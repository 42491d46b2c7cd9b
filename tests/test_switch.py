"""The consent switch: off by default, restored as it was, lapses by itself."""

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import Context, HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)
from syrupy.assertion import SnapshotAssertion

from .common import CONSENT, LAPSES, turn_on_consent
from .conftest import SourceCamera, snapshot_entities


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _causes(entry: MockConfigEntry) -> list[tuple[str, str]]:
    records = await entry.runtime_data.audit.async_export(None, None)
    return [(r["event"], r["cause"]) for r in records if "cause" in r]


async def test_off_after_install(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """A new entry never shares until the resident says so."""
    await _setup(hass, config_entry)
    assert hass.states.get(CONSENT).state == "off"
    assert hass.states.get(LAPSES).state == "unknown"


async def test_turn_on_and_off_is_audited_with_cause(
    hass: HomeAssistant, integration: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    """The resident in the UI and an automation are told apart."""
    await hass.services.async_call(
        "switch",
        "turn_on",
        {"entity_id": CONSENT},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    state = hass.states.get(CONSENT)
    assert state.state == "on"
    lapse = dt_util.parse_datetime(hass.states.get(LAPSES).state)
    assert lapse - dt_util.utcnow() > timedelta(days=44)
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": CONSENT}, blocking=True
    )
    assert hass.states.get(CONSENT).state == "off"
    assert await _causes(integration) == [
        ("consent_on", "resident"),
        ("consent_off", "automation"),
    ]
    # Turning on twice records once.
    await turn_on_consent(hass)
    await turn_on_consent(hass)
    assert len(await _causes(integration)) == 3


@pytest.mark.parametrize(
    ("state", "expected"), [("on", "on"), ("off", "off"), ("unavailable", "off")]
)
async def test_restored_as_it_was(
    hass: HomeAssistant,
    camera: SourceCamera,
    config_entry: MockConfigEntry,
    state: str,
    expected: str,
) -> None:
    """After a restart consent is as it was, never forced on."""
    since = dt_util.utcnow() - timedelta(days=10)
    mock_restore_cache_with_extra_data(
        hass, [(State(CONSENT, state), {"since": since.isoformat()})]
    )
    await _setup(hass, config_entry)
    assert hass.states.get(CONSENT).state == expected
    if expected == "on":
        lapse = dt_util.parse_datetime(hass.states.get(LAPSES).state)
        assert abs(lapse - (since + timedelta(days=45))) < timedelta(seconds=1)


async def test_restored_on_without_moment(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """Without a stored moment the lapse counts from the restart."""
    mock_restore_cache_with_extra_data(hass, [(State(CONSENT, "on"), {})])
    await _setup(hass, config_entry)
    assert hass.states.get(CONSENT).state == "on"


async def test_lapse_turns_consent_off(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Consent turns itself off consent_lapse_days after it was turned on."""
    await turn_on_consent(hass)
    freezer.tick(timedelta(days=45, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(CONSENT).state == "off"
    assert (await _causes(integration))[-1] == ("consent_off", "lapse")


async def test_options_change_reschedules_lapse(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Setting the lapse to 0 (never) removes the lapse moment."""
    await turn_on_consent(hass)
    hass.config_entries.async_update_entry(
        integration, options={**integration.options, "consent_lapse_days": 0}
    )
    await hass.async_block_till_done()
    assert hass.states.get(LAPSES).state == "unknown"
    records = await integration.runtime_data.audit.async_export(None, None)
    assert records[-1]["event"] == "options_changed"
    assert records[-1]["changed"] == ["consent_lapse_days"]


@pytest.mark.parametrize(("stored", "restored"), [(True, "off"), (False, "on")])
async def test_session_store_wins_over_restore_state(
    hass: HomeAssistant,
    camera: SourceCamera,
    config_entry: MockConfigEntry,
    hass_storage: dict,
    stored: bool,
    restored: str,
) -> None:
    """After a crash the switch's restore state may be stale; the store is not."""
    since = dt_util.utcnow() - timedelta(days=1)
    hass_storage[f"rtcc_share.{config_entry.entry_id}.session"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"rtcc_share.{config_entry.entry_id}.session",
        "data": {
            "history": [],
            "consent": {"on": stored, "since": since.isoformat() if stored else None},
        },
    }
    mock_restore_cache_with_extra_data(hass, [(State(CONSENT, restored), {})])
    await _setup(hass, config_entry)
    assert hass.states.get(CONSENT).state == ("on" if stored else "off")


@pytest.mark.parametrize("platforms", [[Platform.SWITCH]])
async def test_entities(
    hass: HomeAssistant, snapshot: SnapshotAssertion, integration: MockConfigEntry
) -> None:
    """The consent switch after setup."""
    await snapshot_entities(hass, snapshot, integration)
