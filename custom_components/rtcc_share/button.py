"""The resident's buttons: stop sharing now, and run a test share."""

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import dry_run
from .data import RtccShareConfigEntry
from .entity import RtccShareEntity
from .models import EndReason

PARALLEL_UPDATES = 0

STOP = ButtonEntityDescription(key="stop_sharing", translation_key="stop_sharing")
# A check of the device, not its use: off the default dashboard, where a tap
# by anyone would notify the household.
TEST = ButtonEntityDescription(
    key="test_share",
    translation_key="test_share",
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtccShareConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stop and test buttons."""
    async_add_entities([StopSharingButton(entry, STOP), TestShareButton(entry, TEST)])


class StopSharingButton(RtccShareEntity, ButtonEntity):
    """Ends a live share (a test run too) immediately; does nothing while idle."""

    async def async_press(self) -> None:
        """End the live share."""
        await self.session.async_end(EndReason.STOPPED_BY_RESIDENT)


class TestShareButton(RtccShareEntity, ButtonEntity):
    """Runs a test share: everything the resident sees, nothing the city can reach."""

    async def async_press(self) -> None:
        """Start a test share that ends by itself within a minute."""
        await dry_run.async_start(self.session)
