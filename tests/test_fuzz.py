"""Prototype."""

import json

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .common import City, requested
from .conftest import WEBHOOK_ID

URL = f"/api/webhook/{WEBHOOK_ID}"


async def test_probe(hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, integration: MockConfigEntry, city: City, caplog) -> None:
    client = await hass_client_no_auth()
    await hass.services.async_call("switch", "turn_on", {"entity_id": "switch.front_door_consent_to_share"}, blocking=True)
    async def p(raw, headers, **kw):
        try:
            r = await client.post(URL, data=raw, headers=headers, **kw)
            print(r.status, r.headers.get("Content-Type"), (await r.read())[:200])
        except Exception as e:
            print("CLIENT EXC", type(e), e)
    for bad in ([1], {"a": 1}, None):
        b = requested(); b["type"] = bad
        await p(*city.sign(b))
    b = requested(); b["incident"]["location"]["lat"] = 10**400
    await p(*city.sign(b))
    b = requested(); b["incident"]["radius_m"] = 10**400
    await p(*city.sign(b))
    b = requested(); b["requested_duration_s"] = 10**400
    await p(*city.sign(b))
    raw, h = city.sign(requested("A-2"))
    for hv in ["é", "\x7f", "a"*10000, "a"*8000, "\x01", "ü" * 3, "a b", "a,b"]:
        await p(raw, {**h, "webhook-id": hv})
    await p(raw, {**h, "webhook-signature": "\u00e9"})
    await p(raw, {**h, "Content-Type": "application/JSON; charset=UTF-8"})
    await p(raw, {**h, "Content-Type": "application/json; charset=\"utf-8\""})
    await p(raw, {**h, "Content-Type": "text/plain"})
    await p(raw, {**h, "Content-Type": "application/json;;;"})
    await p(raw, {**h, "Content-Type": "\u00e9"})
    await p(raw, {**h, "Content-Type": ""})
    await p(raw, {k: v for k, v in h.items() if k != "Content-Type"}, skip_auto_headers=["Content-Type"])
    for m in ("get", "put", "head", "delete"):
        r = await getattr(client, m)(URL)
        print(m, r.status, r.headers.get("Content-Type"), await r.read())
    print([ (x.name, x.levelname, x.getMessage()) for x in caplog.records if x.levelno>=40])
