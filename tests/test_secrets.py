"""No secret leaks: not into logs, diagnostics, events, notifications or answers.

One long test drives every path the integration has (config flow in both key
modes, options, reconfigure, a grant, its repeat, every refusal, a 401, an
end, the stop button, test runs, consent off, the audit actions,
diagnostics) with the integration's loggers at DEBUG, then searches
everything it produced for:

- the verification keys (the configured `whsec_` secret and the ones the
  flows generate; for `v1a` the city's private key, which Home Assistant is
  never given);
- the webhook ids;
- the stream tokens and full stream URLs handed to the city, HLS and WebRTC
  (allowed only in the grant answers that carry them to the city);
- the TURN shared secret set in the options;
- (a separate test) a real WHEP exchange's session id and ICE passwords, the
  TURN secret and the credentials derived from it, and a fixed TURN password
  stored before the resident had to accept handing it out;
- (a separate test) the source camera's URL with its credentials;
- (a separate test) the masked source's URL and its secret, through a
  masked grant, the Police view's snapshot and a masking failure;
- (a separate test) instant start's prebuffer: its loopback URL and the
  secret in it, through a grant that reads it.

Logs are checked for the integration's loggers (`custom_components.rtcc_share*`)
and Home Assistant's stream component (`homeassistant.components.stream*`,
which handles the source URL and redacts its credentials). Home Assistant's
own http/webhook/aiohttp.access loggers write the webhook URL path at
DEBUG/INFO by design; that is outside the integration and not checked here.

Config flow results are not searched: the generated secret and the webhook
URL are shown there on purpose, once, for the resident to hand to the city.
"""

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import json
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
import aioice.ice
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from homeassistant.components import persistent_notification
from homeassistant.components.camera import (
    async_get_image,
    async_register_webrtc_provider,
)
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import MATCH_ALL
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    setup_test_component_platform,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    CONF_AGENCY_NAME,
    CONF_ALLOW_HTTP_STREAM_URL,
    CONF_CAMERA_ENTITY_ID,
    CONF_ICE_SERVERS,
    CONF_INSTANT_START,
    CONF_MAX_DISTANCE_M,
    CONF_NOTIFY_TARGETS,
    CONF_PRIVACY_MASKS,
    CONF_STREAM_KINDS,
    CONF_TURN_SECRET,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    DEFAULT_OPTIONS,
    DOMAIN,
    STREAM_HLS,
    STREAM_WEBRTC,
)
from custom_components.rtcc_share.live.ice import turn_credentials
from custom_components.rtcc_share.live.mask_pipeline import MaskEncoder
from tools.city.webrtc import Viewer

from .common import (
    CITY_PRIVATE_KEY,
    CITY_PUBLIC_KEY,
    EXTERNAL_URL,
    HOME,
    SECRET,
    WEBHOOK_ID,
    City,
    ended,
    requested,
)
from .conftest import SourceCamera
from .gop_camera import GopCamera
from .mask_video import LiveFeed
from .webrtc_camera import LoopbackProvider, async_settle_peers

URL = "/api/webhook/{}"
CONSENT = "switch.{}_consent_to_share"
WATCHED_LOGGERS = ("custom_components.rtcc_share", "homeassistant.components.stream")
RTSP_URL = "rtsp://admin:hunter2@127.0.0.1:9/stream"
TURN_SECRET = "turn-secret-0123456789abcdefghijk"
OLD_TURN_PASSWORD = "old-fixed-turn-password"
CITY_PRIVATE_RAW = CITY_PRIVATE_KEY.private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption()
)
CITY_SECRET_KEY = "whsk_" + base64.b64encode(CITY_PRIVATE_RAW).decode()


@pytest.fixture
async def camera(
    hass: HomeAssistant, source_camera: SourceCamera, video_file: Path
) -> SourceCamera:
    """The front door (the configured entry) and two more cameras for the flows."""
    await hass.config.async_update(
        latitude=HOME[0], longitude=HOME[1], external_url=EXTERNAL_URL
    )
    cameras = [source_camera]
    for name in ("Back door", "Garage"):
        other = SourceCamera(str(video_file))
        other._attr_name = name
        other._attr_unique_id = name.lower().replace(" ", "_")
        cameras.append(other)
    setup_test_component_platform(hass, "camera", cameras)
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    return source_camera


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Notify the phone (legacy service) and a notify entity as well."""
    return {
        **DEFAULT_OPTIONS,
        CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone", "notify.kitchen_display"],
    }


@dataclass
class Observed:
    """Everything the integration produced that someone else could read."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    grant_bodies: list[str] = field(default_factory=list)

    def add(self, where: str, value: Any) -> None:
        """Keep a value as searchable text."""
        text = value if isinstance(value, str) else json.dumps(value, default=repr)
        self.texts.append((where, text))


@dataclass
class Secrets:
    """What must never leak, by name."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        """Remember a secret."""
        assert value, name
        self.values[name] = value


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Every record of the watched loggers, formatted with any traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [
        (f"log {record.name}", formatter.format(record) + repr(record.args))
        for record in [*caplog.get_records("setup"), *caplog.records]
        if record.name.startswith(WATCHED_LOGGERS)
    ]


async def _state_texts(hass: HomeAssistant) -> list[tuple[str, str]]:
    """Every state and attribute in Home Assistant (ours included)."""
    texts = [
        (f"state {state.entity_id}", json.dumps(state.as_dict(), default=repr))
        for state in hass.states.async_all()
    ]
    ours = [
        entry.entity_id
        for entry in er.async_get(hass).entities.values()
        if entry.platform == DOMAIN
    ]
    # Each entry's ten entities have a state, so all of them were searched.
    assert len(ours) == 10 * len(hass.config_entries.async_entries(DOMAIN))
    assert all(hass.states.get(entity_id) for entity_id in ours)
    return texts


def _file_texts(hass: HomeAssistant) -> list[tuple[str, str]]:
    """The audit logs (and any side files) on disk."""
    folder = Path(hass.config.path(DOMAIN))
    files = sorted(folder.iterdir())
    assert files
    return [
        (f"file {path.name}", path.read_bytes().decode("utf-8", "replace"))
        for path in files
    ]


def _assert_no_leak(observed: Observed, secrets: Secrets) -> None:
    leaks = [
        (name, where)
        for where, text in observed.texts
        for name, value in secrets.values.items()
        if value in text
        and not (name.startswith("stream") and where in observed.grant_bodies)
    ]
    assert not leaks, leaks


class CityClient:
    """Posts signed (or unsigned) requests to one entry and records the answers."""

    def __init__(
        self,
        client: TestClient,
        webhook_id: str,
        key: str,
        observed: Observed,
        secrets: Secrets,
    ) -> None:
        """Talk to the webhook of one entry."""
        self.client = client
        self.url = URL.format(webhook_id)
        self.city = City(key)
        self.observed = observed
        self.secrets = secrets
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    async def raw(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """Post bytes as they are."""
        response = await self.client.post(self.url, data=body, headers=headers)
        text = await response.text()
        where = f"response {len(self.observed.texts)} ({response.status})"
        self.observed.add(where, text)
        self.observed.add(f"{where} headers", dict(response.headers))
        answer = json.loads(text)
        urls = {
            key: answer[key] for key in ("stream_url", "webrtc_url") if key in answer
        }
        if response.status in (200, 201) and urls:
            self.observed.grant_bodies.append(where)
        for key, url in urls.items():
            # .../hls/{token}/master_playlist.m3u8, .../whep/{token}
            token = url.split("/")[-2 if key == "stream_url" else -1]
            self.secrets.add(f"stream url {url}", url)
            self.secrets.add(f"stream token {url}", token)
        return response.status, answer

    async def post(self, payload: Any, **sign: Any) -> tuple[int, dict[str, Any]]:
        """Sign and post a payload."""
        body, headers = self.city.sign(payload, **sign)
        self.sent.append((body, headers))
        return await self.raw(body, headers)


async def _consent(hass: HomeAssistant, camera: str, on: bool) -> None:
    await hass.services.async_call(
        "switch",
        "turn_on" if on else "turn_off",
        {"entity_id": CONSENT.format(camera)},
        blocking=True,
    )


async def _press(hass: HomeAssistant, button: str) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": button}, blocking=True
    )


async def _flow(hass: HomeAssistant, camera: str, key_step: dict[str, Any]) -> Any:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CAMERA_ENTITY_ID: camera, CONF_AGENCY_NAME: "Jackson PD RTCC"},
    )
    assert result["step_id"] == "key"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], key_step)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    return result["result"]


def _far() -> dict[str, Any]:
    body = requested("FAR-1")
    body["incident"]["location"] = {"lat": HOME[0] + 0.05, "lon": HOME[1]}
    return body


def _protest() -> dict[str, Any]:
    body = requested("PROTEST-1")
    body["incident"]["type"] = "protest"
    return body


@pytest.fixture
async def notify_calls(hass: HomeAssistant) -> list[ServiceCall]:
    """A phone (legacy notify service) and a notify entity that record messages."""
    calls: list[ServiceCall] = []
    hass.services.async_register("notify", "mobile_app_phone", calls.append)
    hass.services.async_register("notify", "send_message", calls.append)
    hass.states.async_set("notify.kitchen_display", "unknown")
    return calls


async def _audit_actions(
    hass: HomeAssistant, entry_id: str, observed: Observed
) -> None:
    """The resident's three audit actions; export in both formats."""
    for service, extra in (
        ("export_audit_log", {"format": "json"}),
        ("export_audit_log", {"format": "csv"}),
        ("verify_audit_log", {}),
        ("transparency_report", {}),
    ):
        response = await hass.services.async_call(
            DOMAIN,
            service,
            {"config_entry_id": entry_id, **extra},
            blocking=True,
            return_response=True,
        )
        observed.add(f"action {service} {extra} {entry_id}", response)
        if service == "verify_audit_log":
            assert response == {
                "valid": True,
                "records": response["records"],
                "first_bad_seq": None,
                "truncated": False,
                "expected_last_seq": None,
            }


async def _collect(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    observed: Observed,
    events: list[Any],
    notify_calls: list[ServiceCall],
) -> None:
    """Gather what the resident, other integrations and logs can see."""
    await hass.async_block_till_done()
    for entry in hass.config_entries.async_entries(DOMAIN):
        await _audit_actions(hass, entry.entry_id, observed)
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        observed.add(f"diagnostics {entry.title}", diagnostics)
    observed.texts += _log_texts(caplog)
    observed.texts += await _state_texts(hass)
    observed.texts += _file_texts(hass)
    for event in events:
        observed.add(f"event {event.event_type}", event.data)
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert notifications
    observed.add("persistent notifications", notifications)
    assert notify_calls
    for call in notify_calls:
        observed.add(f"notify {call.service}", call.data)
    observed.add(
        "repair issues",
        [
            (issue.issue_id, issue.translation_placeholders)
            for issue in ir.async_get(hass).issues.values()
        ],
    )
    observed.add(
        "the integration's stores",
        {key: value for key, value in hass_storage.items() if key.startswith(DOMAIN)},
    )


async def _wait_for(predicate: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "verification_key", [SECRET, CITY_PUBLIC_KEY], ids=["v1", "v1a"]
)
async def test_no_secret_leaks_anywhere(
    hass: HomeAssistant,
    verification_key: str,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    notify_calls: list[ServiceCall],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Every path, then a search of everything for every secret."""
    caplog.set_level(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    # Before any HTTP client exists: its app cannot take new routes later.
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, MATCH_ALL)
    observed, secrets = Observed(), Secrets()
    secrets.add("secret", SECRET)
    secrets.add("secret, base64 part", SECRET.removeprefix("whsec_"))
    secrets.add("city private key", CITY_SECRET_KEY)
    secrets.add("city private key, base64 part", CITY_SECRET_KEY.removeprefix("whsk_"))
    secrets.add("webhook id", WEBHOOK_ID)
    secrets.add("turn secret", TURN_SECRET)

    # The config flow, both key modes, and the options flow.
    back_door = await _flow(hass, "camera.back_door", {"key_mode": "generate"})
    garage = await _flow(
        hass,
        "camera.garage",
        {"key_mode": "public_key", CONF_VERIFICATION_KEY: CITY_PUBLIC_KEY},
    )
    for entry in (back_door, garage):
        secrets.add(f"webhook id {entry.title}", entry.data[CONF_WEBHOOK_ID])
    secrets.add("generated secret", back_door.data[CONF_VERIFICATION_KEY])
    result = await hass.config_entries.options.async_init(integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **integration.options,
            CONF_MAX_DISTANCE_M: 450,
            CONF_TURN_SECRET: TURN_SECRET,
            # The form's text form of the masks.
            CONF_PRIVACY_MASKS: "",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    # Reconfigure: the back door gets a new generated secret.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": back_door.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "change_key"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENCY_NAME: "Jackson PD RTCC", "key_mode": "generate"}
    )
    assert result["step_id"] == "reconfigure_secret"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    secrets.add("rotated secret", back_door.data[CONF_VERIFICATION_KEY])

    client = await hass_client_no_auth()
    front = CityClient(client, WEBHOOK_ID, verification_key, observed, secrets)
    session = integration.runtime_data.session

    # Consent off, then on; a grant and its repeat; refusals while it is live.
    assert await front.post(requested("A-1")) == (403, {"error": "consent_off"})
    await _consent(hass, "front_door", True)
    status, grant = await front.post(requested("A-1"))
    assert status == 201
    assert await front.post(requested("A-1")) == (200, grant)
    assert (await front.post(requested("A-2")))[1]["error"] == "already_active"
    body, headers = front.sent[1]
    assert await front.raw(body, headers) == (409, {"error": "duplicate_message"})
    assert (await front.post(ended("A-1")))[0] == 200
    assert await front.post(ended("NEVER")) == (404, {"error": "unknown_activation"})

    # Policy refusals.
    assert await front.post(_protest()) == (403, {"error": "incident_type_not_allowed"})
    assert await front.post(_far()) == (403, {"error": "outside_area"})
    session.consent_since = dt_util.utcnow() - timedelta(days=46)
    assert await front.post(requested("OLD-1")) == (403, {"error": "consent_expired"})
    session.consent_since = dt_util.utcnow()

    # The share cannot be started safely: 503s (none counts against the limit).
    video, camera.source = camera.source, None
    assert await front.post(requested("B-1")) == (503, {"error": "camera_unavailable"})
    camera.source = video
    await hass.config.async_update(external_url=None)
    assert await front.post(requested("B-2")) == (503, {"error": "no_external_url"})
    await hass.config.async_update(external_url=EXTERNAL_URL)
    audit = integration.runtime_data.audit
    real_path = audit.path
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    audit.path = blocker / "log.jsonl"
    assert await front.post(requested("B-3")) == (
        503,
        {"error": "audit_log_unavailable"},
    )
    audit.path = real_path

    # A second share ended with the stop button, a third by consent off.
    assert (await front.post(requested("C-1")))[0] == 201
    await _press(hass, "button.front_door_stop_sharing_now")
    assert session.live is None
    assert (await front.post(requested("C-2")))[0] == 201
    await _consent(hass, "front_door", False)
    assert session.live is None
    await _consent(hass, "front_door", True)
    assert await front.post(requested("C-3")) == (403, {"error": "rate_limited"})
    # A test run counts against no limit; the stop button ends it.
    await _press(hass, "button.front_door_run_a_test_share")
    assert session.live is not None
    assert session.live.test
    await _press(hass, "button.front_door_stop_sharing_now")

    # Not authenticated, not JSON, too large, not valid.
    assert (await front.raw(b"{}", {"Content-Type": "application/json"}))[0] == 401
    body, headers = front.city.sign(requested("D-1"))
    assert (await front.raw(body + b" ", headers))[1] == {"error": "invalid_signature"}
    assert (await front.raw(body, {**headers, "Content-Type": "text/plain"}))[0] == 415
    assert (await front.raw(b" " * 70_000, headers))[0] == 413
    assert (await front.post({"type": "activation.requested"}))[0] == 400

    # `v1a`: the garage's entry pins the city's public key.
    garage_city = CityClient(
        client, garage.data[CONF_WEBHOOK_ID], CITY_PUBLIC_KEY, observed, secrets
    )
    await _consent(hass, "garage", True)
    # A pinned city key: messages must name the garage's webhook; one signed
    # for the front door is refused without either id reaching anything.
    assert await garage_city.post(requested("G-0", recipient=WEBHOOK_ID)) == (
        401,
        {"error": "wrong_recipient"},
    )
    garage_id = garage.data[CONF_WEBHOOK_ID]
    # A real activation ends a test run first.
    await _press(hass, "button.garage_run_a_test_share")
    assert (await garage_city.post(requested("G-1", recipient=garage_id)))[0] == 201
    assert (await garage_city.post({**ended("G-1"), "recipient": garage_id}))[0] == 200
    # The back door signs with its rotated secret.
    back_city = CityClient(
        client,
        back_door.data[CONF_WEBHOOK_ID],
        back_door.data[CONF_VERIFICATION_KEY],
        observed,
        secrets,
    )
    assert await back_city.post(requested("K-1")) == (403, {"error": "consent_off"})

    await _collect(
        hass, hass_client, hass_storage, caplog, observed, events, notify_calls
    )
    event_entity = hass.states.get("event.front_door_activation")
    assert event_entity is not None
    assert event_entity.attributes["event_type"] in ("granted", "refused", "ended")
    assert len(secrets.values) >= 15
    _assert_no_leak(observed, secrets)


async def test_camera_url_never_leaks(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    notify_calls: list[ServiceCall],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A source URL with credentials: the stream worker fails, nothing leaks it."""
    caplog.set_level(logging.DEBUG)
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, MATCH_ALL)
    observed, secrets = Observed(), Secrets()
    secrets.add("camera url", RTSP_URL)
    secrets.add("camera password", "hunter2")
    secrets.add("camera user:password", "admin:hunter2")
    camera.source = RTSP_URL

    front = CityClient(
        await hass_client_no_auth(), WEBHOOK_ID, SECRET, observed, secrets
    )
    await _consent(hass, "front_door", True)
    status, grant = await front.post(requested("A-1"))
    assert status == 201, grant
    # The worker connects in its own thread, fails (nothing listens on port 9)
    # and logs why, with the URL.
    await _wait_for(
        lambda: any(
            record.name.startswith("homeassistant.components.stream")
            and "127.0.0.1:9" in record.getMessage()
            for record in caplog.records
        )
    )
    assert (await front.post(ended("A-1")))[0] == 200
    assert (await front.post(requested("A-1")))[0] == 200  # it ended
    await _collect(
        hass, hass_client, hass_storage, caplog, observed, events, notify_calls
    )
    _assert_no_leak(observed, secrets)
    # The worker did log the (redacted) URL: the search above was not vacuous.
    assert any("127.0.0.1:9/stream" in text for where, text in observed.texts)


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone"],
            CONF_INSTANT_START: True,
        }
    ],
)
async def test_prebuffer_url_never_leaks(
    hass: HomeAssistant,
    socket_enabled: None,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    notify_calls: list[ServiceCall],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Instant start: the prebuffer's URL and its secret stay in the process.

    A grant reads the prebuffer; the logs (at DEBUG), diagnostics, states,
    events, notifications, stores and the audit log are searched.
    """
    caplog.set_level(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, MATCH_ALL)
    observed, secrets = Observed(), Secrets()
    async with GopCamera() as live:
        camera.source = live.url
        front = CityClient(
            await hass_client_no_auth(), WEBHOOK_ID, SECRET, observed, secrets
        )
        await _consent(hass, "front_door", True)
        instant = integration.runtime_data.instant
        await _wait_for(
            lambda: (
                instant.prebuffer is not None
                and instant.prebuffer.lookback() is not None
            )
        )
        status, grant = await front.post(requested("P-1"))
        assert status == 201, grant
        stream = integration.runtime_data.session.live.stream
        url = stream.stream.source
        secrets.add("prebuffer url", url)
        secrets.add("prebuffer secret", url.split("@")[0].rsplit(":", 1)[1])
        # The share's worker reads the prebuffer until its first segment.
        await _wait_for(lambda: instant.prebuffer.stats.bursts == 1)
        await _wait_for(lambda: bool(stream.provider.get_segments()))
        assert (await front.post(ended("P-1")))[0] == 200
        await _consent(hass, "front_door", False)
    await _collect(
        hass, hass_client, hass_storage, caplog, observed, events, notify_calls
    )
    _assert_no_leak(observed, secrets)
    # The stream worker did log the (redacted) URL, and the audit log the
    # grant's instant start: the search was not vacuous.
    assert any("/prebuffer/share_" in text for _, text in observed.texts)
    assert any('"instant_start": true' in text for _, text in observed.texts)


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone"],
            CONF_STREAM_KINDS: [STREAM_HLS, STREAM_WEBRTC],
            CONF_ICE_SERVERS: [
                "turn:turn.example.org:3478",
                f"turn:old.example.org:3478 city {OLD_TURN_PASSWORD}",
            ],
            CONF_TURN_SECRET: TURN_SECRET,
            # Lab mode: the peers are on loopback.
            CONF_ALLOW_HTTP_STREAM_URL: True,
        }
    ],
)
async def test_webrtc_secrets_never_leak(
    hass: HomeAssistant,
    socket_enabled: None,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    video_file: Path,
    notify_calls: list[ServiceCall],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A WebRTC grant and a real WHEP exchange: URL, token, ICE passwords stay out.

    So do the TURN secret, the credentials derived from it (for the city's
    WHEP answer only) and a fixed TURN password that is not handed out.
    """
    caplog.set_level(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, MATCH_ALL)
    observed, secrets = Observed(), Secrets()
    secrets.add("turn secret", TURN_SECRET)
    secrets.add("fixed turn password", OLD_TURN_PASSWORD)
    provider = LoopbackProvider(video_file)
    unregister = async_register_webrtc_provider(hass, provider)
    client = await hass_client_no_auth()
    front = CityClient(client, WEBHOOK_ID, SECRET, observed, secrets)
    await _consent(hass, "front_door", True)
    status, grant = await front.post(requested("W-1", accept_streams=["hls", "webrtc"]))
    assert status == 201, grant
    _, credential = turn_credentials(
        TURN_SECRET, datetime.fromisoformat(grant["expires_at"])
    )
    secrets.add("derived turn credential", credential)
    viewer = Viewer(client, grant["webrtc_url"].removeprefix(EXTERNAL_URL))
    with patch.object(aioice.ice, "get_host_addresses", return_value=["127.0.0.1"]):
        await viewer.start()
        async with asyncio.timeout(20):
            await viewer.first_frame.wait()
    assert viewer.location and viewer.answer
    secrets.add("whep session id", viewer.location.rsplit("/", 1)[1])
    offer = viewer.pc.localDescription.sdp
    for side, sdp in (("offer", offer), ("answer", viewer.answer)):
        [pwd, *_] = re.findall(r"^a=ice-pwd:(\S+)", sdp, flags=re.MULTILINE)
        secrets.add(f"ice-pwd of the {side}", pwd)
    assert await front.post(requested("W-1", accept_streams=["webrtc"])) == (
        200,
        grant,
    )
    assert (await front.post(ended("W-1")))[0] == 200
    await viewer.close(delete=False)
    await provider.peers.async_close_all()
    await async_settle_peers()
    unregister()
    await _collect(
        hass, hass_client, hass_storage, caplog, observed, events, notify_calls
    )
    assert len(secrets.values) == 10
    _assert_no_leak(observed, secrets)
    # The audit log does hold the viewer session, and the log the skipped
    # fixed password's line: the search was not vacuous.
    assert any("webrtc_sessions" in text for where, text in observed.texts)
    assert any("line 2 of the options" in text for where, text in observed.texts)


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **DEFAULT_OPTIONS,
            CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone", "notify.kitchen_display"],
            CONF_PRIVACY_MASKS: [[0.1, 0.05, 0.33, 0.5]],
        }
    ],
)
async def test_masked_source_url_never_leaks(
    live_feed: LiveFeed,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    integration: MockConfigEntry,
    camera: SourceCamera,
    notify_calls: list[ServiceCall],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The masked source's URL holds a secret: it stays inside the home.

    A masked grant whose stream the city reads, the Police view's snapshot,
    and a masking failure that ends the share (its warning logged).
    """
    caplog.set_level(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, MATCH_ALL)
    observed, secrets = Observed(), Secrets()
    camera.source = live_feed.url
    client = await hass_client_no_auth()
    front = CityClient(client, WEBHOOK_ID, SECRET, observed, secrets)
    await _consent(hass, "front_door", True)
    status, grant = await front.post(requested("M-1"))
    assert status == 201, grant
    masked = integration.runtime_data.masked.current
    assert masked is not None
    secrets.add("masked source url", masked.url)
    secrets.add("masked source secret", masked.url.split("@")[0].rsplit(":", 1)[1])
    playlist = await client.get(
        grant["stream_url"].removeprefix(EXTERNAL_URL).replace("master_", "")
    )
    observed.add("playlist", await playlist.text())
    image = await async_get_image(hass, "camera.front_door_police_view")
    assert image.content_type == "image/jpeg"
    session = integration.runtime_data.session
    with patch.object(MaskEncoder, "encode", side_effect=RuntimeError("failed")):
        await _wait_for(lambda: session.live is None, 20)
    await _collect(
        hass, hass_client, hass_storage, caplog, observed, events, notify_calls
    )
    _assert_no_leak(observed, secrets)
    # The failure was logged and recorded: the search covered them.
    assert any("privacy-masked view failed" in text for _, text in observed.texts)
    assert any("privacy_mask_failed" in text for _, text in observed.texts)
    # Home Assistant's stream logged the masked URL, redacted.
    assert any(
        "@127.0.0.1:" in text and "/masked.ts" in text for _, text in observed.texts
    )


def test_leak_search_finds_planted_secrets() -> None:
    """The search itself: a planted secret is found, a granted URL allowed."""
    observed, secrets = Observed(), Secrets()
    secrets.add("secret", SECRET)
    secrets.add("stream token", "0f" * 32)
    observed.add("response 1 (201)", {"stream_url": f"https://x/{'0f' * 32}/m"})
    observed.grant_bodies.append("response 1 (201)")
    _assert_no_leak(observed, secrets)
    observed.add("log custom_components.rtcc_share", f"key={SECRET}")
    observed.add("event rtcc_share_granted", {"token": "0f" * 32})
    with pytest.raises(AssertionError) as err:
        _assert_no_leak(observed, secrets)
    assert "('secret', 'log custom_components.rtcc_share')" in str(err.value)
    assert "('stream token', 'event rtcc_share_granted')" in str(err.value)
