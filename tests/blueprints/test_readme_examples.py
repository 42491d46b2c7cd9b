"""The README's automation examples are valid automations."""

from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util

README = Path(__file__).parents[2] / "README.md"


def _examples() -> list[dict[str, Any]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Automation examples\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert blocks
    return [
        automation
        for block in blocks
        for automation in yaml_util.parse_yaml(block)["automation"]
    ]


async def test_readme_examples_are_valid_automations(hass: HomeAssistant) -> None:
    """Every example loads as an automation that is on (none fails validation)."""
    examples = _examples()
    assert await async_setup_component(hass, "automation", {"automation": examples})
    await hass.async_block_till_done()
    states = hass.states.async_all("automation")
    assert sorted(state.attributes["friendly_name"] for state in states) == sorted(
        example["alias"] for example in examples
    )
    assert {state.state for state in states} == {"on"}
