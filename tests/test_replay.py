"""Replaying captured city requests verbatim: never a second effect.

Each test captures real, validly signed requests (a refusal, a grant, an
idempotent repeat of the grant and an end) and sends the very same bytes and
headers again: within the timestamp tolerance they are duplicates (409), also
after Home Assistant restarts; after it, their timestamp is stale (401).
"""

import copy
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtcc_share.const import (
    DOMAIN,
    EVENT_GRANTED,
    SEEN_IDS_SAVE_DELAY_S,
    TIMESTAMP_TOLERANCE_S,
)

from .common import (
    CITY_PUBLIC_KEY,
    CONSENT,
    SECRET,
    WEBHOOK_URL,
    City,
    ended,
    requested,
)

DUPLICATE = (409, {"error": "duplicate_message"})
STALE = (401, {"error": "stale_timestamp"})


@dataclass(frozen=True, slots=True)
class Captured:
    """A request as the city sent it, and what it got."""

    name: str
    body: bytes
    headers: dict[str, str]
    status: int
    answer: dict[str, Any]


@pytest.fixture
async def client(
    hass: HomeAssistant,
    integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> TestClient:
    """A real HTTP client to Home Assistant."""
    return await hass_client_no_auth()


async def _send(
    client: TestClient, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = await client.post(WEBHOOK_URL, data=body, headers=headers)
    assert response.content_type == "application/json"
    return response.status, await response.json()


async def _consent(hass: HomeAssistant, on: bool) -> None:
    await hass.services.async_call(
        "switch", "turn_on" if on else "turn_off", {"entity_id": CONSENT}, blocking=True
    )


async def _capture(
    hass: HomeAssistant, client: TestClient, city: City, **sign: Any
) -> list[Captured]:
    """Send a refusal, a grant, its idempotent repeat and the end; keep them."""
    captured: list[Captured] = []

    async def send(name: str, payload: dict[str, Any]) -> Captured:
        body, headers = city.sign(payload, **sign)
        status, answer = await _send(client, body, headers)
        captured.append(Captured(name, body, headers, status, answer))
        return captured[-1]

    await _consent(hass, False)
    assert (await send("refusal", requested("A-1"))).status == 403
    await _consent(hass, True)
    grant = await send("grant", requested("A-1"))
    assert grant.status == 201, grant.answer
    repeat = await send("repeat", requested("A-1"))
    assert (repeat.status, repeat.answer) == (200, grant.answer)
    end = await send("end", ended("A-1"))
    assert (end.status, end.answer["status"]) == (200, "ended")
    return captured


async def _audit_events(integration: MockConfigEntry) -> list[dict[str, Any]]:
    return await integration.runtime_data.audit.async_export(None, None)


def _count(records: list[dict[str, Any]], event: str, **fields: Any) -> int:
    return sum(
        1
        for r in records
        if r["event"] == event and all(r.get(k) == v for k, v in fields.items())
    )


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload the entry (which flushes pending saves) and set it up again."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _seen_key(entry: MockConfigEntry) -> str:
    return f"{DOMAIN}.{entry.entry_id}.seen_ids"


@pytest.mark.parametrize(
    "verification_key", [SECRET, CITY_PUBLIC_KEY], ids=["v1", "v1a"]
)
async def test_replay_within_window_is_refused(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Every replay is a 409; none grants, ends or refuses a second time."""
    granted = async_capture_events(hass, EVENT_GRANTED)
    refusal, grant, repeat, end = await _capture(hass, client, city)
    records = await _audit_events(integration)
    assert _count(records, "activation_granted") == 1

    for captured in (refusal, grant, repeat, end):
        assert await _send(client, captured.body, captured.headers) == DUPLICATE, (
            captured.name
        )
    # The replayed grant did not start a share again.
    assert integration.runtime_data.session.live is None
    await hass.async_block_till_done()
    assert len(granted) == 1
    after = await _audit_events(integration)
    new = after[len(records) :]
    # The first replays of a minute are recorded in full, the rest counted.
    assert [(r["event"], r["reason"]) for r in new] == [
        ("activation_refused", "duplicate_message")
    ] * 3
    await integration.runtime_data.rejections.async_flush()
    [counted] = (await _audit_events(integration))[len(after) :]
    assert (counted["reason"], counted["count"]) == ("duplicate_message", 1)
    assert _count(after, "activation_granted") == 1
    assert _count(after, "share_ended") == 1
    assert len(integration.runtime_data.seen_ids) == 4


async def test_replay_of_a_live_grant_is_refused(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """Replaying the grant while its share is live leaves that share untouched."""
    await _consent(hass, True)
    body, headers = city.sign(requested("A-1"))
    status, answer = await _send(client, body, headers)
    assert status == 201
    live = integration.runtime_data.session.live
    assert live is not None
    for _ in range(3):
        assert await _send(client, body, headers) == DUPLICATE
    assert integration.runtime_data.session.live is live
    assert live.grant.stream_url == answer["stream_url"]
    assert _count(await _audit_events(integration), "activation_granted") == 1


async def test_replay_after_restart_is_refused(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
) -> None:
    """The seen ids are saved on unload and loaded again: replays stay 409."""
    captured = await _capture(hass, client, city)
    await _restart(hass, integration)
    stored = {msg_id for msg_id, _ in hass_storage[_seen_key(integration)]["data"]}
    assert stored == {c.headers["webhook-id"] for c in captured}
    assert len(integration.runtime_data.seen_ids) == 4

    granted = async_capture_events(hass, EVENT_GRANTED)
    await _consent(hass, True)
    for c in captured:
        assert await _send(client, c.body, c.headers) == DUPLICATE, c.name
    await hass.async_block_till_done()
    assert not granted
    assert integration.runtime_data.session.live is None
    assert _count(await _audit_events(integration), "activation_granted") == 1

    # And again after a second restart (the replays added nothing to forget).
    await _restart(hass, integration)
    for c in captured:
        assert await _send(client, c.body, c.headers) == DUPLICATE, c.name


async def test_ids_saved_by_the_delayed_save_survive_a_crash(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
) -> None:
    """Once the delayed save ran, a crash (no unload, no flush) forgets nothing."""
    captured = await _capture(hass, client, city)
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=SEEN_IDS_SAVE_DELAY_S + 1)
    )
    await hass.async_block_till_done()
    crashed = copy.deepcopy(hass_storage)
    assert len(crashed[_seen_key(integration)]["data"]) == 4

    # What the disk holds after the crash is what was saved before it.
    await hass.config_entries.async_unload(integration.entry_id)
    await hass.async_block_till_done()
    hass_storage.clear()
    hass_storage.update(crashed)
    assert await hass.config_entries.async_setup(integration.entry_id)
    await hass.async_block_till_done()
    for c in captured:
        assert await _send(client, c.body, c.headers) == DUPLICATE, c.name


async def _crash_right_after(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    hass_storage: dict[str, Any],
    body: bytes,
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    """Send a request, crash before the delayed save runs, start again."""
    status, answer = await _send(client, body, headers)
    # Home Assistant dies now: only what was written so far is on disk.
    crashed = copy.deepcopy(hass_storage)
    await hass.config_entries.async_unload(integration.entry_id)
    await hass.async_block_till_done()
    hass_storage.clear()
    hass_storage.update(crashed)
    assert await hass.config_entries.async_setup(integration.entry_id)
    await hass.async_block_till_done()
    return status, answer


async def test_grant_replayed_after_a_crash_is_not_granted_again(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
) -> None:
    """Even if the webhook-id was not saved yet, the activation id was."""
    await _consent(hass, True)
    body, headers = city.sign(requested("A-1"))
    status, _ = await _crash_right_after(
        hass, client, integration, hass_storage, body, headers
    )
    assert status == 201
    granted = async_capture_events(hass, EVENT_GRANTED)
    await _consent(hass, True)
    status, answer = await _send(client, body, headers)
    # 409 if the id was saved in time; otherwise the activation is known.
    assert (status, answer) in (
        DUPLICATE,
        (200, {"status": "ended", "activation_id": "A-1"}),
    )
    await hass.async_block_till_done()
    assert not granted
    records = await _audit_events(integration)
    assert _count(records, "activation_granted") == 1
    assert _count(records, "interrupted", activation_id="A-1") == 1


async def test_refusal_replayed_after_a_crash_is_a_duplicate(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
) -> None:
    """A webhook-id is single-use across restarts, crashes included."""
    body, headers = city.sign(requested("A-1"))
    status, _ = await _crash_right_after(
        hass, client, integration, hass_storage, body, headers
    )
    assert status == 403  # consent is off
    assert await _send(client, body, headers) == DUPLICATE


async def test_replay_after_tolerance_window_is_stale(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Up to 300 s a replay is a duplicate; after that its timestamp is stale."""
    captured = await _capture(hass, client, city)
    records = len(await _audit_events(integration))
    freezer.tick(timedelta(seconds=TIMESTAMP_TOLERANCE_S - 1))
    for c in captured:
        assert await _send(client, c.body, c.headers) == DUPLICATE, c.name
    freezer.tick(timedelta(seconds=2))
    for c in captured:
        assert await _send(client, c.body, c.headers) == STALE, c.name
    after = await _audit_events(integration)
    assert _count(after, "activation_granted") == 1
    # Three duplicates in full, the fourth counted for the minute's summary;
    # stale replays are not authenticated: counted, not audited one by one.
    assert len(after) == records + 3
    assert integration.runtime_data.rejections.unauthenticated == 4

    # The window is over: a fresh message lets the store forget the old ids.
    body, headers = city.sign(ended("A-1"))
    assert (await _send(client, body, headers))[0] == 200
    assert len(integration.runtime_data.seen_ids) == 1


async def test_replay_after_window_and_restart_is_stale(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Expired ids are dropped on load; their replays are refused as stale."""
    captured = await _capture(hass, client, city)
    freezer.tick(timedelta(seconds=TIMESTAMP_TOLERANCE_S + 1))
    await _restart(hass, integration)
    assert len(integration.runtime_data.seen_ids) == 0
    for c in captured:
        assert await _send(client, c.body, c.headers) == STALE, c.name


async def test_message_stamped_ahead_stays_refused_until_stale(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A city clock 290 s ahead: its id is kept until its own timestamp is stale."""
    now = int(dt_util.utcnow().timestamp())
    body, headers = city.sign(requested("A-1"), timestamp=now + 290)
    assert (await _send(client, body, headers))[0] == 403  # consent is off
    # 580 s later the timestamp is 290 s old: still fresh enough to replay.
    freezer.tick(timedelta(seconds=580))
    assert await _send(client, body, headers) == DUPLICATE
    freezer.tick(timedelta(seconds=11))
    assert await _send(client, body, headers) == STALE


async def test_same_id_new_body_is_a_duplicate(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
) -> None:
    """The id, not the body, is single-use: a re-signed message reusing it fails."""
    await _consent(hass, True)
    body, headers = city.sign(requested("A-1"))
    assert (await _send(client, body, headers))[0] == 201
    msg_id = headers["webhook-id"]
    body, headers = city.sign(requested("A-2"), msg_id=msg_id)
    assert await _send(client, body, headers) == DUPLICATE
    body, headers = city.sign(ended("A-1"), msg_id=msg_id)
    assert await _send(client, body, headers) == DUPLICATE
    assert integration.runtime_data.session.live is not None


async def test_full_seen_id_store_refuses_rather_than_forgets(
    hass: HomeAssistant,
    client: TestClient,
    integration: MockConfigEntry,
    city: City,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the bound new messages are refused; no remembered id is dropped."""
    monkeypatch.setattr("custom_components.rtcc_share.signature.SEEN_IDS_MAX", 3)
    sent = [city.sign(ended(f"E-{n}")) for n in range(3)]
    for body, headers in sent:
        assert (await _send(client, body, headers))[0] == 404
    body, headers = city.sign(ended("E-3"))
    assert await _send(client, body, headers) == (
        403,
        {
            "error": "rate_limited",
            "detail": "too many messages within the timestamp tolerance",
        },
    )
    assert len(integration.runtime_data.seen_ids) == 3
    for body, headers in sent:
        assert await _send(client, body, headers) == DUPLICATE
    # Once the window has passed, the old ids make room.
    freezer.tick(timedelta(seconds=TIMESTAMP_TOLERANCE_S + 1))
    body, headers = city.sign(ended("E-4"))
    assert (await _send(client, body, headers))[0] == 404
    assert len(integration.runtime_data.seen_ids) == 1
