"""Write the storage a development instance needs before Home Assistant starts.

Run by scripts/develop before every start (`python -m tools.demo.prepare`):
the HTTP server on 127.0.0.1 and the chosen port, and, before the first
start, onboarding without the steps that add integrations this venv cannot
load. Only the standard library: it runs on every start.
"""

import argparse
from datetime import UTC, datetime
import json
from pathlib import Path
import sys
from typing import Any

HOST = "127.0.0.1"
# Home Assistant 2026.10.4's .storage/http (HTTPConfigStore): the defaults of
# its HTTP_STORAGE_SCHEMA, so the server binds loopback only on our port. Its
# YAML `http:` is migrated once into a pending trial that reverts (and
# restarts) after 5 minutes, so it cannot set the port. tests/tools checks
# these against Home Assistant's own schema.
HTTP_STORE_VERSION = (2, 2)
HTTP_DEFAULTS: dict[str, Any] = {
    "cors_allowed_origins": ["https://cast.home-assistant.io"],
    "login_attempts_threshold": -1,
    "ip_ban_enabled": True,
    "ssl_profile": "modern",
    "use_x_frame_options": True,
}
# Onboarding's core_config step sets up google_translate, met, radio_browser
# and shopping_list, whose requirements .venv does not have (hass --skip-pip):
# their import tracebacks would be the first thing a developer sees. Marked
# done up front, only the owner is left to onboard.
ONBOARDING_STORE_VERSION = 4
ONBOARDING_DONE_UP_FRONT = ["core_config", "analytics", "integration"]


def _write_store(path: Path, key: str, version: tuple[int, int], data: Any) -> None:
    """Write a Home Assistant storage file, private like HA's own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": version[0],
                "minor_version": version[1],
                "key": key,
                "data": data,
            },
            indent=2,
        )
    )
    path.chmod(0o600)


def prepare(config: Path, port: int) -> None:
    """Write the storage a start of this config folder needs (HA not running).

    The HTTP settings are rewritten on every start: scripts/develop owns
    them. Onboarding is written only before the first start.
    """
    storage = config / ".storage"
    settings = {"server_host": [HOST], "server_port": port, **HTTP_DEFAULTS}
    _write_store(
        storage / "http",
        "http",
        HTTP_STORE_VERSION,
        {
            "stable": {
                **settings,
                "created_at": datetime.now(UTC).isoformat(),
                "error": None,
                "error_message": None,
            },
            "pending": None,
            "yaml_migration_done": True,
        },
    )
    if not (storage / "onboarding").exists():
        _write_store(
            storage / "onboarding",
            "onboarding",
            (ONBOARDING_STORE_VERSION, 1),
            {"done": ONBOARDING_DONE_UP_FRONT},
        )


def main(argv: list[str] | None = None) -> int:
    """Prepare the config folder for a start on the port."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo.prepare")
    parser.add_argument("--config", type=Path, default=Path("config"))
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args(argv)
    prepare(args.config, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
