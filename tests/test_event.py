"""The activation event entity."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from .conftest import snapshot_entities


@pytest.mark.parametrize("platforms", [[Platform.EVENT]])
async def test_entities(
    hass: HomeAssistant, snapshot: SnapshotAssertion, integration: MockConfigEntry
) -> None:
    """The activation event entity after setup."""
    await snapshot_entities(hass, snapshot, integration)
