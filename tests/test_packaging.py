"""The package's metadata agrees with itself.

One version (manifest.json's), one minimum Home Assistant release (hacs.json's,
the one `scripts/test` also runs the suite on), and a README whose links work
where HACS shows it: inside Home Assistant, with no repository around it.
"""

import json
from pathlib import Path
import re
import tomllib

from awesomeversion import AwesomeVersion
import yaml

ROOT = Path(__file__).parent.parent
MANIFEST = json.loads(
    (ROOT / "custom_components/rtcc_share/manifest.json").read_text(encoding="utf-8")
)
HACS = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
MIN_HA = HACS["homeassistant"]
MIN_ENV = ROOT / "envs/min-ha"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The repository on GitHub, as the manifest names it for Home Assistant.
REPOSITORY = MANIFEST["documentation"]
RAW = REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/")


def _pins(dependencies: list[str]) -> dict[str, str]:
    return dict(dep.split("==") for dep in dependencies if "==" in dep)


def test_one_version() -> None:
    """pyproject.toml and the changelog's newest release repeat manifest.json's."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == MANIFEST["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[:2] == ["Unreleased", MANIFEST["version"]]


def test_minimum_is_the_release_the_suite_also_runs_on() -> None:
    """hacs.json's minimum is what envs/min-ha pins and locks (.venv-min)."""
    env = tomllib.loads((MIN_ENV / "pyproject.toml").read_text(encoding="utf-8"))
    assert _pins(env["dependency-groups"]["dev"])["homeassistant"] == MIN_HA
    lock = tomllib.loads((MIN_ENV / "uv.lock").read_text(encoding="utf-8"))
    locked = {package["name"]: package.get("version") for package in lock["package"]}
    # The lock holds the test plugin too, so its exact pin of Home Assistant
    # matched this one when it was made.
    assert locked["homeassistant"] == MIN_HA
    assert "pytest-homeassistant-custom-component" in locked
    # ... and the main environment is not older than the minimum.
    main = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    main_ha = _pins(main["dependency-groups"]["dev"])["homeassistant"]
    assert AwesomeVersion(main_ha) >= AwesomeVersion(MIN_HA)


def test_docs_state_the_minimum() -> None:
    """The README and DEVELOPERS.md name hacs.json's minimum."""
    assert f"Home Assistant {MIN_HA} or later" in README
    developers = (ROOT / "DEVELOPERS.md").read_text(encoding="utf-8")
    assert f"The oldest supported Home Assistant is {MIN_HA}" in developers


def test_readme_links_work_inside_home_assistant() -> None:
    """HACS renders the README in Home Assistant, where relative links break.

    Every link and image is absolute (or an anchor on the page), and those
    into the repository name files that exist.
    """
    assert HACS["render_readme"] is True
    targets = [
        *re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", README),
        *re.findall(r"^\[[^\]]+\]:\s*(\S+)", README, re.MULTILINE),
        *re.findall(r"""(?:src|href)=["']([^"']+)""", README),
    ]
    assert targets
    into_repository = (f"{REPOSITORY}/blob/main/", f"{REPOSITORY}/tree/main/")
    for target in targets:
        if target.startswith("#"):
            continue
        assert target.startswith(("https://", "http://")), target
        for prefix in (*into_repository, f"{RAW}/main/"):
            if target.startswith(prefix):
                path = target.removeprefix(prefix).split("#")[0]
                assert (ROOT / path).exists(), target


def test_workflow_runs_hassfest_and_hacs_validation() -> None:
    """The GitHub workflow runs both validators a HACS integration carries."""
    workflow = yaml.safe_load(
        (ROOT / ".github/workflows/validate.yml").read_text(encoding="utf-8")
    )
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert "home-assistant/actions/hassfest" in uses
    assert "actions/checkout" in uses  # hassfest validates the checked-out tree
    assert uses["hacs/action"]["with"] == {"category": "integration"}
