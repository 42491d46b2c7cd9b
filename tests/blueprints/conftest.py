"""Fixtures of the automation tests (blueprints and the README's examples)."""

from collections.abc import AsyncGenerator

from homeassistant.core import HomeAssistant
import pytest


@pytest.fixture(autouse=True)
async def automations_off(hass: HomeAssistant) -> AsyncGenerator[None]:
    """Turn the automations off at the end, so their time triggers do not linger."""
    yield
    if hass.services.has_service("automation", "turn_off"):
        await hass.services.async_call(
            "automation", "turn_off", {"entity_id": "all"}, blocking=True
        )
        await hass.async_block_till_done()
