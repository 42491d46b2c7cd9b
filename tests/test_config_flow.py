"""Config, options and reconfigure flows, every error and abort."""

import base64
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtcc_share.const import (
    CONF_AGENCY_NAME,
    CONF_ALLOWED_INCIDENT_TYPES,
    CONF_CAMERA_ENTITY_ID,
    CONF_ICE_SERVERS,
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED,
    CONF_MAX_DISTANCE_M,
    CONF_NOTIFY_TARGETS,
    CONF_PRIVACY_MASKS,
    CONF_REQUIRE_RECIPIENT,
    CONF_STREAM_KINDS,
    CONF_TURN_SECRET,
    CONF_VERIFICATION_KEY,
    CONF_WEBHOOK_ID,
    DEFAULT_OPTIONS,
    DOMAIN,
    STREAM_HLS,
    STREAM_WEBRTC,
)

from .common import (
    CAMERA,
    CITY_PUBLIC_KEY,
    EXTERNAL_URL,
    SECRET,
    SMALL_ORDER_POINTS,
    WEBHOOK_ID,
)
from .conftest import SourceCamera

CLOUD_REMOTE_UI = "https://0123456789abcdef.ui.nabu.casa"

USER_INPUT = {CONF_CAMERA_ENTITY_ID: CAMERA, CONF_AGENCY_NAME: "Jackson PD RTCC"}
# The options form shows the privacy masks as text, one rectangle per line.
FORM_DEFAULTS = {**DEFAULT_OPTIONS, CONF_PRIVACY_MASKS: ""}


async def _reconfigure(hass: HomeAssistant, entry: ConfigEntry, step: str) -> Any:
    """Open Reconfigure and choose `hand_over` or `change_key` from its menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["hand_over", "change_key"]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )


async def _start(hass: HomeAssistant, user_input: dict[str, Any] = USER_INPUT) -> Any:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def test_user_flow_with_city_public_key(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """Pin the city's public key; the entry starts with the privacy defaults."""
    result = await _start(hass)
    assert result["step_id"] == "key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"key_mode": "public_key", CONF_VERIFICATION_KEY: f"  {CITY_PUBLIC_KEY} "},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Front door"
    data = result["data"]
    assert data[CONF_VERIFICATION_KEY] == CITY_PUBLIC_KEY
    assert len(data[CONF_WEBHOOK_ID]) == 64
    # A pinned city key: messages must name this entry's webhook.
    assert result["options"] == {**DEFAULT_OPTIONS, CONF_REQUIRE_RECIPIENT: True}
    # The camera by its registry id: a rename keeps it the same camera.
    registry_id = er.async_get(hass).async_get(CAMERA).id
    assert result["result"].unique_id == registry_id
    assert data[CONF_CAMERA_ENTITY_ID] == registry_id
    placeholders = result["description_placeholders"]
    assert placeholders["webhook_url"].endswith(f"/api/webhook/{data[CONF_WEBHOOK_ID]}")
    assert placeholders["secret"] == "-"


async def test_user_flow_generates_secret(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """A generated secret is shown once, to hand to the city."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    secret = result["data"][CONF_VERIFICATION_KEY]
    assert secret.startswith("whsec_")
    assert result["description_placeholders"]["secret"] == secret
    assert result["options"][CONF_REQUIRE_RECIPIENT] is False


async def test_webhook_path_when_no_url(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """Without any configured URL the flow still shows the webhook path."""
    await hass.config.async_update(external_url=None, internal_url=None)
    hass.config.api = None
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    assert result["description_placeholders"]["webhook_url"].startswith("/api/webhook/")
    assert result["description"] == "webhook_path_only"


async def test_setup_never_shows_an_internal_webhook_url(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """Only an internal URL: the path with its note, not the internal address."""
    await hass.config.async_update(
        external_url=None, internal_url="http://192.168.1.20:8123"
    )
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    webhook_id = result["data"][CONF_WEBHOOK_ID]
    assert result["description"] == "webhook_path_only"
    assert result["description_placeholders"]["webhook_url"] == (
        f"/api/webhook/{webhook_id}"
    )
    # The reconfigure steps show the same, with their own notes.
    entry = result["result"]
    result = await _reconfigure(hass, entry, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENCY_NAME: "Jackson PD RTCC", "key_mode": "generate"}
    )
    assert result["description_placeholders"]["webhook_url"] == (
        f"/api/webhook/{webhook_id}"
    )
    result = await _reconfigure(hass, entry, "hand_over")
    assert result["reason"] == "hand_over_path_only"
    assert result["description_placeholders"]["webhook_url"] == (
        f"/api/webhook/{webhook_id}"
    )


async def test_setup_shows_the_external_webhook_url(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """With an external URL the whole webhook URL is shown, with the usual text."""
    await hass.config.async_update(internal_url="http://192.168.1.20:8123")
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    assert result["description"] is None
    assert result["description_placeholders"]["webhook_url"] == (
        f"{EXTERNAL_URL}/api/webhook/{result['data'][CONF_WEBHOOK_ID]}"
    )


async def test_hand_over_shows_the_webhook_url_again_never_the_secret(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Reconfigure → Show the webhook URL again: the URL; the secret stays unseen."""
    data = dict(integration.data)
    result = await _reconfigure(hass, integration, "hand_over")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "hand_over"
    assert result["description_placeholders"] == {
        "webhook_url": f"{EXTERNAL_URL}/api/webhook/{WEBHOOK_ID}",
        "public_key": "-",
    }
    assert SECRET not in str(result)
    # Nothing changed: no reload, no record.
    await hass.async_block_till_done()
    assert dict(integration.data) == data
    assert integration.state is ConfigEntryState.LOADED
    records = await integration.runtime_data.audit.async_export(None, None)
    assert "key_rotated" not in [record["event"] for record in records]


@pytest.mark.parametrize("verification_key", [CITY_PUBLIC_KEY])
async def test_hand_over_shows_a_pinned_public_key(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A city public key is the city's own: it is shown, to be checked."""
    result = await _reconfigure(hass, integration, "hand_over")
    assert result["description_placeholders"]["public_key"] == CITY_PUBLIC_KEY


@pytest.fixture
def cloud_remote_ui(hass: HomeAssistant) -> Iterator[None]:
    """Home Assistant Cloud with remote access on, and no external URL of its own."""
    hass.config.components.add("cloud")
    with patch(
        "homeassistant.components.cloud.async_remote_ui_url",
        return_value=CLOUD_REMOTE_UI,
    ):
        yield


@pytest.mark.usefixtures("cloud_remote_ui")
async def test_home_assistant_cloud_users_get_their_remote_webhook_url(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """The Remote UI address is the city's, for the webhook as for the stream.

    The contract's shape, `{external URL}/api/webhook/{id}`: no cloudhook, whose
    URL would hide the webhook id that `recipient` names.
    """
    await hass.config.async_update(external_url=None)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    webhook_id = result["data"][CONF_WEBHOOK_ID]
    assert result["description"] is None
    assert result["description_placeholders"]["webhook_url"] == (
        f"{CLOUD_REMOTE_UI}/api/webhook/{webhook_id}"
    )
    await hass.async_block_till_done()
    result = await _reconfigure(hass, result["result"], "hand_over")
    assert result["reason"] == "hand_over"
    assert result["description_placeholders"]["webhook_url"] == (
        f"{CLOUD_REMOTE_UI}/api/webhook/{webhook_id}"
    )


@pytest.mark.parametrize(
    "external_url", ["http://home.example.org", "https://203.0.113.7:8123"]
)
async def test_plain_http_or_ip_address_is_handed_over_with_a_warning(
    hass: HomeAssistant, camera: SourceCamera, external_url: str
) -> None:
    """Every grant would be refused there: the URL is shown, with the warning."""
    await hass.config.async_update(external_url=external_url)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    webhook_id = result["data"][CONF_WEBHOOK_ID]
    assert result["description"] == "webhook_url_insecure"
    assert result["description_placeholders"]["webhook_url"] == (
        f"{external_url}/api/webhook/{webhook_id}"
    )
    await hass.async_block_till_done()
    result = await _reconfigure(hass, result["result"], "hand_over")
    assert result["reason"] == "hand_over_insecure"


@pytest.mark.parametrize(
    ("user_input", "field", "error"),
    [
        (
            {**USER_INPUT, CONF_CAMERA_ENTITY_ID: "camera.nope"},
            CONF_CAMERA_ENTITY_ID,
            "camera_not_found",
        ),
        (
            {**USER_INPUT, CONF_AGENCY_NAME: "  "},
            CONF_AGENCY_NAME,
            "invalid_agency_name",
        ),
        (
            {**USER_INPUT, CONF_AGENCY_NAME: "x" * 101},
            CONF_AGENCY_NAME,
            "invalid_agency_name",
        ),
    ],
)
async def test_user_step_errors(
    hass: HomeAssistant,
    camera: SourceCamera,
    user_input: dict[str, Any],
    field: str,
    error: str,
) -> None:
    """Bad camera or agency names get a translated error, then the flow recovers."""
    result = await _start(hass, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], USER_INPUT
    )
    assert result["step_id"] == "key"


async def test_camera_without_stream(hass: HomeAssistant, camera: SourceCamera) -> None:
    """A camera without a stream source (e.g. WebRTC-only) is explained."""
    camera.source = None
    result = await _start(hass)
    assert result["errors"] == {CONF_CAMERA_ENTITY_ID: "no_stream_source"}


async def test_camera_turned_off(hass: HomeAssistant, camera: SourceCamera) -> None:
    """A camera that is off cannot be checked for a stream."""
    camera._attr_is_on = False
    result = await _start(hass)
    assert result["errors"] == {CONF_CAMERA_ENTITY_ID: "camera_not_found"}


SMALL_ORDER_KEYS = [
    "whpk_" + base64.b64encode(point).decode() for point in SMALL_ORDER_POINTS
]
# y = 2 has no x on the curve; y = p + 1 is the identity written non-canonically.
INVALID_POINT_KEYS = [
    "whpk_" + base64.b64encode((2).to_bytes(32, "little")).decode(),
    "whpk_" + base64.b64encode((2**255 - 18).to_bytes(32, "little")).decode(),
]
WEAK_SECRETS = [
    "whsec_" + base64.b64encode(bytes(32)).decode(),
    "whsec_" + base64.b64encode(bytes(range(15)) * 2).decode(),
    # 16 distinct bytes, but a 20-byte pattern repeated.
    "whsec_" + base64.b64encode((bytes(range(20)) * 3)[:48]).decode(),
]


UNSAFE_KEYS = [
    *((key, "weak_public_key") for key in SMALL_ORDER_KEYS),
    *((key, "invalid_public_key") for key in INVALID_POINT_KEYS),
    *((key, "weak_secret") for key in WEAK_SECRETS),
]


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", "key_required"),
        ("pk_abc", "invalid_prefix"),
        ("whpk_not base64!", "invalid_base64"),
        ("whpk_" + "A" * 40, "invalid_length"),
        *UNSAFE_KEYS,
    ],
)
async def test_malformed_small_order_invalid_point_or_weak_key_refused(
    hass: HomeAssistant, camera: SourceCamera, key: str, error: str
) -> None:
    """A malformed key, one anyone could forge with, or one that verifies nothing.

    Each is refused with its reason.
    """
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "public_key", CONF_VERIFICATION_KEY: key}
    )
    assert result["errors"] == {CONF_VERIFICATION_KEY: error}


@pytest.mark.parametrize(("key", "error"), UNSAFE_KEYS)
async def test_reconfigure_to_small_order_key_or_weak_secret_refused(
    hass: HomeAssistant, integration: MockConfigEntry, key: str, error: str
) -> None:
    """Reconfiguring to an unsafe key is refused; the entry keeps its key."""
    result = await _reconfigure(hass, integration, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_AGENCY_NAME: "Jackson PD RTCC",
            "key_mode": "public_key",
            CONF_VERIFICATION_KEY: key,
        },
    )
    assert result["errors"] == {CONF_VERIFICATION_KEY: error}
    assert integration.data[CONF_VERIFICATION_KEY] == SECRET


async def test_already_configured(
    hass: HomeAssistant, camera: SourceCamera, config_entry: MockConfigEntry
) -> None:
    """One entry per camera."""
    result = await _start(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_options_flow(hass: HomeAssistant, integration: MockConfigEntry) -> None:
    """Every option is offered with its range; valid input is saved."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert set(result["data_schema"].schema) >= set(DEFAULT_OPTIONS) - {
        CONF_NOTIFY_TARGETS
    }
    new = {
        **FORM_DEFAULTS,
        CONF_MAX_DISTANCE_M: 250.0,
        CONF_ALLOWED_INCIDENT_TYPES: ["shots_fired"],
        CONF_NOTIFY_TARGETS: ["notify.mobile_app_phone"],
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], new)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_MAX_DISTANCE_M] == 250
    assert isinstance(integration.options[CONF_MAX_DISTANCE_M], int)
    await hass.async_block_till_done()
    assert integration.runtime_data.session.options[CONF_MAX_DISTANCE_M] == 250


async def test_options_offer_the_notify_targets_there_are(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Also notify lists the notify entities and services; others may be typed."""
    hass.services.async_register("notify", "mobile_app_pixel", lambda call: None)
    hass.services.async_register("notify", "send_message", lambda call: None)
    hass.services.async_register("notify", "persistent_notification", lambda _: None)
    hass.states.async_set("notify.kitchen_display", "unknown")
    result = await hass.config_entries.options.async_init(integration.entry_id)
    selector = result["data_schema"].schema[CONF_NOTIFY_TARGETS]
    assert selector.config["options"] == [
        "notify.kitchen_display",
        "notify.mobile_app_pixel",
    ]
    assert selector.config["custom_value"] is True


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({CONF_MAX_DISTANCE_M: 100.5}, CONF_MAX_DISTANCE_M, "out_of_range"),
        (
            {CONF_ALLOWED_INCIDENT_TYPES: ["Protest Now"]},
            CONF_ALLOWED_INCIDENT_TYPES,
            "invalid_incident_type",
        ),
        (
            {CONF_NOTIFY_TARGETS: ["light.kitchen"]},
            CONF_NOTIFY_TARGETS,
            "invalid_notify_target",
        ),
    ],
)
async def test_options_errors(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    change: dict[str, Any],
    field: str,
    error: str,
) -> None:
    """Out-of-range or malformed options are refused with a translated error."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}


@pytest.mark.parametrize(
    "change", [{CONF_MAX_DISTANCE_M: 49}, {"max_duration_s": 3601}]
)
async def test_options_outside_range_rejected_by_selector(
    hass: HomeAssistant, integration: MockConfigEntry, change: dict[str, Any]
) -> None:
    """The number selectors carry the contract's ranges."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {**FORM_DEFAULTS, **change}
        )


async def test_reconfigure_to_public_key(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """The agency and key can be changed; the entry reloads."""
    result = await _reconfigure(hass, integration, "change_key")
    assert result["step_id"] == "change_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_AGENCY_NAME: "Hinds County RTCC",
            "key_mode": "public_key",
            CONF_VERIFICATION_KEY: CITY_PUBLIC_KEY,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert integration.data[CONF_VERIFICATION_KEY] == CITY_PUBLIC_KEY
    assert integration.data[CONF_AGENCY_NAME] == "Hinds County RTCC"
    await hass.async_block_till_done()
    records = await integration.runtime_data.audit.async_export(None, None)
    assert "key_rotated" in [r["event"] for r in records]


async def test_reconfigure_generates_secret(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A new secret is shown before it is saved."""
    result = await _reconfigure(hass, integration, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENCY_NAME: "Jackson PD RTCC", "key_mode": "generate"}
    )
    assert result["step_id"] == "reconfigure_secret"
    secret = result["description_placeholders"]["secret"]
    assert integration.data[CONF_VERIFICATION_KEY] == SECRET
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "reconfigure_successful"
    assert integration.data[CONF_VERIFICATION_KEY] == secret
    # The update listener's reload finishes before the test does.
    await hass.async_block_till_done()


async def test_reconfigure_changes_only_the_agency(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Keeping the key: no key to enter again, no reload, the change on record."""
    session = integration.runtime_data.session
    result = await _reconfigure(hass, integration, "change_key")
    assert result["data_schema"]({CONF_AGENCY_NAME: "x"})["key_mode"] == "keep"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_AGENCY_NAME: "Hinds County RTCC", "key_mode": "keep"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "agency_changed"
    await hass.async_block_till_done()
    assert integration.data[CONF_AGENCY_NAME] == "Hinds County RTCC"
    assert integration.data[CONF_VERIFICATION_KEY] == SECRET
    # The same session: the entry was not reloaded.
    assert integration.runtime_data.session is session
    assert session.agency == "Hinds County RTCC"
    records = await integration.runtime_data.audit.async_export(None, None)
    assert [(r["event"], r.get("changed")) for r in records[-1:]] == [
        ("options_changed", ["agency_name"])
    ]


async def test_reconfigure_keeping_everything_changes_nothing(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """The same name and the key kept: nothing saved, nothing recorded."""
    before = await integration.runtime_data.audit.async_export(None, None)
    result = await _reconfigure(hass, integration, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_AGENCY_NAME: integration.data[CONF_AGENCY_NAME], "key_mode": "keep"},
    )
    assert result["reason"] == "nothing_changed"
    await hass.async_block_till_done()
    assert await integration.runtime_data.audit.async_export(None, None) == before


async def test_reconfigure_keep_with_a_pasted_key_is_refused(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A key pasted while keeping the current one would be dropped: an error."""
    result = await _reconfigure(hass, integration, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_AGENCY_NAME: "Jackson PD RTCC",
            "key_mode": "keep",
            CONF_VERIFICATION_KEY: CITY_PUBLIC_KEY,
        },
    )
    assert result["errors"] == {CONF_VERIFICATION_KEY: "key_with_keep"}
    assert integration.data[CONF_VERIFICATION_KEY] == SECRET


async def test_reconfigure_errors(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Errors in the reconfigure form are shown."""
    result = await _reconfigure(hass, integration, "change_key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_AGENCY_NAME: "", "key_mode": "public_key", CONF_VERIFICATION_KEY: "x"},
    )
    assert result["errors"] == {
        CONF_AGENCY_NAME: "invalid_agency_name",
        CONF_VERIFICATION_KEY: "invalid_prefix",
    }


async def test_webrtc_only_camera_can_be_shared_over_webrtc(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """A Ring doorbell (WebRTC only) is accepted; the city may get WebRTC."""
    with patch(
        "custom_components.rtcc_share.live.webrtc_share.supports_webrtc",
        return_value=True,
    ):
        camera.source = None
        result = await _start(hass)
        # The resident is told that such a camera cannot be masked.
        assert result["step_id"] == "webrtc_only"
        assert result["description_placeholders"] == {"camera": "Front door"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["step_id"] == "key"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"key_mode": "generate"}
        )
    assert result["options"][CONF_STREAM_KINDS] == [STREAM_WEBRTC]
    assert result["options"][CONF_PRIVACY_MASKS] == []


async def test_camera_with_a_stream_source_shares_hls_by_default(
    hass: HomeAssistant, camera: SourceCamera
) -> None:
    """HLS by default; WebRTC (which may show the home's address) is opted into."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"key_mode": "generate"}
    )
    assert result["options"][CONF_STREAM_KINDS] == [STREAM_HLS]


async def test_options_need_a_kind_of_live_view(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A resident who picks no kind of live view is told to pick one."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    user_input = {**FORM_DEFAULTS, CONF_STREAM_KINDS: []}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    assert result["errors"] == {CONF_STREAM_KINDS: "no_stream_kind"}


async def test_options_refuse_an_ice_server_that_is_not_stun_or_turn(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """ICE servers are stun:/turn: URLs, optionally with a user and password."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    user_input = {**FORM_DEFAULTS, CONF_ICE_SERVERS: ["https://cloud.example.org"]}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    assert result["errors"] == {CONF_ICE_SERVERS: "invalid_ice_server"}


async def _options(hass: HomeAssistant, entry: MockConfigEntry, **changes: Any) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, **changes}
    )


@pytest.mark.parametrize(
    ("line", "error"),
    [
        # A second server named in the same header, a quote, a cut-off URL.
        (
            'stun:a.example.org>; rel="ice-server", <turn:evil.example.org',
            "invalid_ice_server",
        ),
        ("stun:a.example.org>,<turn:evil.example.org", "invalid_ice_server"),
        ('stun:a"b.example.org', "invalid_ice_server"),
        ("stun:a.example.org;x", "invalid_ice_server"),
        ("turn:t.example.org?transport=sctp", "invalid_ice_server"),
        ("turn:[fe80::1%eth0]:3478", "invalid_ice_server"),
        ("stun:s.example.org city s3cret", "invalid_ice_server"),
        ("turn:t.example.org city pässword", "invalid_ice_credential"),
        ("turn:t.example.org city pass\x1bword", "invalid_ice_credential"),
    ],
)
async def test_options_refuse_ice_servers_a_header_cannot_carry(
    hass: HomeAssistant, integration: MockConfigEntry, line: str, error: str
) -> None:
    """Only RFC 7064/7065 URLs and printable-ASCII credentials are accepted."""
    result = await _options(
        hass,
        integration,
        **{CONF_ICE_SERVERS: [line], CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True},
    )
    assert result["errors"] == {CONF_ICE_SERVERS: error}


async def test_options_refuse_a_fixed_turn_password_unless_accepted(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A fixed TURN password would be the city's for good: refused by default."""
    line = 'turn:t.example.org:3478 city s3"cret'
    result = await _options(hass, integration, **{CONF_ICE_SERVERS: [line]})
    assert result["errors"] == {CONF_ICE_SERVERS: "ice_static_credentials_not_accepted"}
    result = await _options(
        hass,
        integration,
        **{CONF_ICE_SERVERS: [line], CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: True},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_ICE_SERVERS] == [line]
    assert integration.options[CONF_ICE_STATIC_CREDENTIALS_ACCEPTED] is True


async def test_options_turn_servers_without_a_password_use_the_turn_secret(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """A TURN URL alone needs a secret long enough not to be guessed."""
    turn = {CONF_ICE_SERVERS: ["turn:t.example.org:3478?transport=udp"]}
    result = await _options(hass, integration, **turn)
    assert result["errors"] == {CONF_TURN_SECRET: "turn_secret_required"}
    result = await _options(hass, integration, **turn, **{CONF_TURN_SECRET: "x" * 31})
    assert result["errors"] == {CONF_TURN_SECRET: "weak_turn_secret"}
    result = await _options(hass, integration, **{CONF_TURN_SECRET: "short"})
    assert result["errors"] == {CONF_TURN_SECRET: "weak_turn_secret"}
    secret = "x" * 32
    result = await _options(hass, integration, **turn, **{CONF_TURN_SECRET: secret})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_TURN_SECRET] == secret
    assert integration.options[CONF_ICE_STATIC_CREDENTIALS_ACCEPTED] is False


async def test_options_offer_the_turn_secret_as_a_password(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """The secret is typed into a password field; accepting fixed ones is off."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    schema = result["data_schema"].schema
    [secret] = [key for key in schema if key == CONF_TURN_SECRET]
    assert schema[secret].config["type"] == "password"
    [accepted] = [key for key in schema if key == CONF_ICE_STATIC_CREDENTIALS_ACCEPTED]
    assert accepted.description == {"suggested_value": False}


async def test_options_take_privacy_masks_as_text_and_store_fractions(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """One rectangle per line, in percentages; stored as fractions, shown back."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    [field] = [key for key in result["data_schema"].schema if key == CONF_PRIVACY_MASKS]
    assert field.description == {"suggested_value": ""}
    assert result["data_schema"].schema[field].config["multiline"] is True
    text = "0, 0, 30, 100\n\n61 42.5 90% 97"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, CONF_PRIVACY_MASKS: text}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_PRIVACY_MASKS] == [
        [0.0, 0.0, 0.3, 1.0],
        [0.61, 0.425, 0.9, 0.97],
    ]
    await hass.async_block_till_done()
    assert integration.runtime_data.masked.masks == (
        (0.0, 0.0, 0.3, 1.0),
        (0.61, 0.425, 0.9, 0.97),
    )
    result = await hass.config_entries.options.async_init(integration.entry_id)
    [field] = [key for key in result["data_schema"].schema if key == CONF_PRIVACY_MASKS]
    assert field.description == {"suggested_value": "0, 0, 30, 100\n61, 42.5, 90, 97"}
    # Left empty (the frontend may leave the field out): no masks.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {k: v for k, v in FORM_DEFAULTS.items() if k != CONF_PRIVACY_MASKS},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_PRIVACY_MASKS] == []


@pytest.mark.parametrize(
    ("text", "error", "line"),
    [
        ("\n".join(["0, 0, 10, 10"] * 9), "too_many_masks", "-"),
        ("0, 0, 30", "invalid_mask_line", "1"),
        ("0, 0, 30, 100\nleft, 0, 30, 100", "invalid_mask_line", "2"),
        ("0, 0, 30, 100\n\n0, 0, 101, 100", "mask_out_of_range", "3"),
        ("30, 0, 10, 100", "empty_mask", "1"),
    ],
)
async def test_options_refuse_privacy_masks_with_the_line(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    text: str,
    error: str,
    line: str,
) -> None:
    """A translated error on the field, naming the line it is about."""
    result = await hass.config_entries.options.async_init(integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, CONF_PRIVACY_MASKS: text}
    )
    assert result["errors"] == {CONF_PRIVACY_MASKS: error}
    assert result["description_placeholders"] == {"line": line}
    assert integration.options[CONF_PRIVACY_MASKS] == []


async def test_options_refuse_masks_for_a_webrtc_only_camera(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """A Ring doorbell's video never passes through the home: it cannot be masked."""
    camera.source = None
    with patch(
        "custom_components.rtcc_share.live.webrtc_share.supports_webrtc",
        return_value=True,
    ):
        result = await hass.config_entries.options.async_init(integration.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**FORM_DEFAULTS, CONF_PRIVACY_MASKS: "0, 0, 30, 100"}
        )
        assert result["errors"] == {CONF_PRIVACY_MASKS: "masks_need_stream_source"}
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], FORM_DEFAULTS
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_options_show_no_text_for_stored_masks_that_are_not_valid(
    hass: HomeAssistant, integration: MockConfigEntry
) -> None:
    """Masks stored outside the flow that are not valid are not shown as masks."""
    hass.config_entries.async_update_entry(
        integration, options={**integration.options, CONF_PRIVACY_MASKS: [[2, 0, 3, 1]]}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(integration.entry_id)
    [field] = [key for key in result["data_schema"].schema if key == CONF_PRIVACY_MASKS]
    assert field.description == {"suggested_value": ""}


async def test_options_take_masks_for_a_camera_that_is_off(
    hass: HomeAssistant, integration: MockConfigEntry, camera: SourceCamera
) -> None:
    """A camera off now is not judged by what it offers now: the masks are saved."""
    camera._attr_is_on = False
    result = await hass.config_entries.options.async_init(integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**FORM_DEFAULTS, CONF_PRIVACY_MASKS: "0, 0, 30, 100"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert integration.options[CONF_PRIVACY_MASKS] == [[0.0, 0.0, 0.3, 1.0]]
