"""docs/openapi.yaml against the code: every status, error code and field is documented."""

import ast
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from custom_components.rtcc_share.models import RefusalReason
from custom_components.rtcc_share.signature import AuthErrorCode
from custom_components.rtcc_share.webhook import REFUSAL_STATUS

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "custom_components" / "rtcc_share"
HANDLER_FILES = ("webhook.py",)
WEBHOOK = "/api/webhook/{webhook_id}"
STREAM = "/api/rtcc_share/hls/{token}/master_playlist.m3u8"
# Calls whose first argument is the status and second the contract's code.
ERROR_CALLS = ("_error",)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """Return the parsed OpenAPI document."""
    document: dict[str, Any] = yaml.safe_load(
        (ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8")
    )
    return document


def _nodes() -> Iterator[ast.AST]:
    for name in HANDLER_FILES:
        yield from ast.walk(ast.parse((PACKAGE / name).read_text(encoding="utf-8")))


def _status(node: ast.AST) -> int | None:
    """Return the value of an `HTTPStatus.NAME` expression."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "HTTPStatus"
    ):
        return HTTPStatus[node.attr].value
    return None


def _error_calls() -> list[ast.Call]:
    return [
        node
        for node in _nodes()
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ERROR_CALLS
        and len(node.args) >= 2
    ]


def _emitted() -> set[tuple[int, str]]:
    """Return (status, code) of every error the handler can answer."""
    pairs = {
        (status, str(call.args[1].value))
        for call in _error_calls()
        if (status := _status(call.args[0])) is not None
        and isinstance(call.args[1], ast.Constant)
    }
    pairs |= {
        (HTTPStatus.UNAUTHORIZED.value, code)
        for code in get_args(getattr(AuthErrorCode, "__value__", AuthErrorCode))
    }
    pairs |= {(status.value, reason.value) for reason, status in REFUSAL_STATUS.items()}
    return pairs


def test_every_refusal_has_a_status() -> None:
    """The outcome table covers every refusal the use case can return."""
    assert set(REFUSAL_STATUS) == set(RefusalReason)


def _responses(spec: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = spec["paths"][WEBHOOK]["post"]["responses"]
    return responses


def _documented_errors(spec: dict[str, Any], status: int) -> set[str]:
    """Return the error codes a response narrows the Error schema to."""
    schema = _responses(spec)[str(status)]["content"]["application/json"]["schema"]
    return {
        code
        for part in schema.get("allOf", [])
        for code in part.get("properties", {}).get("error", {}).get("enum", [])
    }


def test_version(spec: dict[str, Any]) -> None:
    """The document is OpenAPI 3.1 and describes both paths."""
    assert str(spec["openapi"]).startswith("3.1")
    assert {WEBHOOK, STREAM} <= set(spec["paths"])
    assert {"200", "404"} <= set(spec["paths"][STREAM]["get"]["responses"])


def test_every_status_documented(spec: dict[str, Any]) -> None:
    """Each HTTPStatus the handler uses, plus the catch-all 500, is a response."""
    used = {status for node in _nodes() if (status := _status(node)) is not None}
    used.add(HTTPStatus.INTERNAL_SERVER_ERROR.value)
    assert used <= {int(status) for status in _responses(spec)}


def test_every_error_documented(spec: dict[str, Any]) -> None:
    """Each error code is in the Error enum and under the status that carries it."""
    schemas = spec["components"]["schemas"]
    codes = set(schemas["ErrorCode"]["enum"])
    success = {
        schemas[name]["properties"]["status"]["const"] for name in ("Active", "Ended")
    }
    for status, code in _emitted():
        if status < 400:  # e.g. a repeated request for an ended activation
            assert code in success, (status, code)
            continue
        assert code in codes, code
        assert code in _documented_errors(spec, status), (status, code)


def test_error_fields_documented(spec: dict[str, Any]) -> None:
    """Extra fields of error bodies (detail, activation_id) are in the schema."""
    used = {kw.arg for call in _error_calls() for kw in call.keywords if kw.arg}
    used |= {"detail", "activation_id"}  # the optional fields of a Refused outcome
    assert used <= set(spec["components"]["schemas"]["Error"]["properties"])


def test_grant_body_documented(spec: dict[str, Any]) -> None:
    """The keys of the grant's body are exactly the Active schema's."""
    keys = {
        key.value
        for node in _nodes()
        if isinstance(node, ast.FunctionDef) and node.name == "_grant_body"
        for literal in ast.walk(node)
        if isinstance(literal, ast.Dict)
        for key in literal.keys
        if isinstance(key, ast.Constant)
    }
    active = spec["components"]["schemas"]["Active"]
    assert keys == set(active["properties"])
    # The live views are there only when granted (contract 1.1).
    assert set(active["required"]) == keys - {"stream_url", "webrtc_url"}


def test_refs_resolve(spec: dict[str, Any]) -> None:
    """Every local $ref points at something."""

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(spec):
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_spec_valid(spec: dict[str, Any]) -> None:
    """The document validates, where openapi-spec-validator is installed."""
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)
