"""tools.demo.prepare: the storage it writes is what Home Assistant reads."""

import json
from pathlib import Path
from typing import Any

from homeassistant.components.http.config import (
    HTTP_STORAGE_SCHEMA,
    STORAGE_MINOR_VERSION,
    STORAGE_VERSION,
    ActiveConfigType,
    async_get_and_load_store,
    async_load_config,
)
from homeassistant.components.onboarding import (
    STORAGE_VERSION as ONBOARDING_VERSION,
    async_is_user_onboarded,
)
from homeassistant.components.onboarding.const import STEP_USER, STEPS
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from tools.demo.prepare import HOST, main

PORT = 18123


def _prepare(config: Path, hass_storage: dict[str, Any]) -> None:
    """Run the command as scripts/develop does; hand its files to hass."""
    assert main(["--config", str(config), "--port", str(PORT)]) == 0
    for path in (config / ".storage").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
        hass_storage[path.name] = json.loads(path.read_text())


async def test_http_binds_loopback_on_the_port_without_a_trial(
    hass: HomeAssistant, hass_storage: dict[str, Any], tmp_path: Path
) -> None:
    """HA takes the written HTTP settings as its confirmed ones, schema defaults included."""
    _prepare(tmp_path, hass_storage)
    written = hass_storage["http"]
    assert (written["version"], written["minor_version"]) == (
        STORAGE_VERSION,
        STORAGE_MINOR_VERSION,
    )

    conf = await async_load_config(hass, {})

    store = await async_get_and_load_store(hass)
    assert store.active_config_type is ActiveConfigType.STABLE
    assert store.revert_deadline is None
    expected = HTTP_STORAGE_SCHEMA({"server_host": [HOST], "server_port": PORT})
    assert {key: conf[key] for key in expected} == expected  # type: ignore[literal-required]


async def test_onboarding_leaves_only_the_owner(
    hass: HomeAssistant, hass_storage: dict[str, Any], tmp_path: Path
) -> None:
    """The steps that set up integrations are done; the owner is still to create."""
    _prepare(tmp_path, hass_storage)
    assert hass_storage["onboarding"]["version"] == ONBOARDING_VERSION

    assert await async_setup_component(hass, "onboarding", {})

    assert not async_is_user_onboarded(hass)
    done = hass_storage["onboarding"]["data"]["done"]
    assert set(STEPS) - set(done) == {STEP_USER}


def test_onboarding_is_written_only_before_the_first_start(tmp_path: Path) -> None:
    """A later start keeps Home Assistant's own onboarding record."""
    onboarding = tmp_path / ".storage" / "onboarding"
    main(["--config", str(tmp_path), "--port", str(PORT)])
    onboarding.write_text("kept")

    main(["--config", str(tmp_path), "--port", str(PORT + 1)])

    assert onboarding.read_text() == "kept"
    stored = json.loads((tmp_path / ".storage" / "http").read_text())
    assert stored["data"]["stable"]["server_port"] == PORT + 1
