"""Tests for the translations of rtcc_share: complete, consistent and used.

Plain file checks, no Home Assistant instance: the code is read with `ast`,
so a translation key the code uses but en.json lacks fails here, not as an
untranslated string in front of a resident.
"""

import ast
from collections.abc import Iterator, Mapping
from contextlib import suppress
from functools import cache
import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

PACKAGE = Path(__file__).parent.parent / "custom_components" / "rtcc_share"
TRANSLATIONS = PACKAGE / "translations"
LANGUAGES = ("en", "es")

type Function = ast.FunctionDef | ast.AsyncFunctionDef

PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
# Tokens a translation must carry over verbatim.
TECHNICAL_TOKEN_RE = re.compile(
    r"whpk_|whsec_|notify\.\w*|https?://\S+|docs/\S+\.md"
    r"|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"
    r"|\b(?:RTSP|WebRTC|HTTPS|HLS|Ed25519|base64|JSON|CSV|ID)\b"
)


def placeholders(text: str) -> set[str]:
    """Return the {placeholders} of a string."""
    return set(PLACEHOLDER_RE.findall(text))


def technical_tokens(text: str) -> set[str]:
    """Return the technical tokens of a string."""
    return set(TECHNICAL_TOKEN_RE.findall(text))


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the conftest fixture: these tests need no Home Assistant."""


# --- Reading the files -------------------------------------------------------


@cache
def load_strings(language: str) -> dict[str, Any]:
    """Return translations/<language>.json."""
    strings: dict[str, Any] = json.loads(
        (TRANSLATIONS / f"{language}.json").read_text("utf-8")
    )
    return strings


def flatten(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, value) for every leaf of a JSON tree."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    """Return the node at a dotted key, or None."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_services() -> dict[str, Any]:
    """Return services.yaml."""
    services: dict[str, Any] = yaml.safe_load(
        (PACKAGE / "services.yaml").read_text("utf-8")
    )
    return services


@cache
def modules() -> dict[str, ast.Module]:
    """Return every module of the package, parsed, by dotted name (`live.ice`)."""
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): ast.parse(
            path.read_text("utf-8"), str(path)
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }


@cache
def constants() -> dict[str, Any]:
    """Return the package's module-level literal constants, e.g. CONF_KEY_MODE."""
    found: dict[str, Any] = {}
    for module in modules().values():
        for node in module.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name):
                with suppress(ValueError):  # Not a literal (f-string, ...).
                    found[target.id] = ast.literal_eval(value)
                # A tuple of constants, such as STREAM_KINDS.
                if isinstance(value, ast.Tuple) and all(
                    isinstance(item, ast.Name) and item.id in found
                    for item in value.elts
                ):
                    found[target.id] = tuple(found[item.id] for item in value.elts)  # type: ignore[union-attr]
    return found


def resolve(node: ast.expr) -> Any:
    """Evaluate a literal, a package constant, or list()/tuple() of one."""
    match node:
        case ast.Name(id=name):
            return constants()[name]
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [resolve(item) for item in items]
        case ast.Call(func=ast.Name(id="list" | "tuple"), args=[arg]):
            return list(resolve(arg))
    return ast.literal_eval(node)


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    """Return the value of a keyword argument of a call, or None."""
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def call_name(call: ast.Call) -> str:
    """Return the called name: `x` for x(...) and for a.b.x(...)."""
    match call.func:
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name
    return ""


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Yield every call in a tree."""
    yield from (node for node in ast.walk(tree) if isinstance(node, ast.Call))


# --- Translation keys of entities, exceptions, issues and selectors ----------


def placeholder_keys(call: ast.Call) -> set[str]:
    """Return the keys of a call's translation_placeholders dict literal."""
    match keyword(call, "translation_placeholders"):
        case ast.Dict(keys=keys):
            return {resolve(key) for key in keys if key is not None}
        case None:
            return set()
    raise AssertionError(f"line {call.lineno}: translation_placeholders not a dict")


@cache
def scan_code() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Return the en.json keys the code's translation_key= uses need, by kind.

    Also return, per exception message and issue string, the placeholders
    the code passes.
    """
    keys: dict[str, set[str]] = {
        "entity": set(),
        "event_type": set(),
        "exception": set(),
        "issue": set(),
        "selector": set(),
        "unclassified": set(),
    }
    passed: dict[str, set[str]] = {}
    for platform, module in modules().items():
        for call in calls(module):
            if (key_node := keyword(call, "translation_key")) is None:
                continue
            key = resolve(key_node)
            name = call_name(call)
            if name.endswith("Description"):  # An entity description.
                keys["entity"].add(f"entity.{platform}.{key}")
                if (types := keyword(call, "event_types")) is not None:
                    keys["event_type"].update(
                        f"entity.event.{key}.state_attributes.event_type.state.{type_}"
                        for type_ in resolve(types)
                    )
            elif name == "SelectSelectorConfig":
                options = keyword(call, "options")
                keys["selector"].update(
                    f"selector.{key}.options.{option}"
                    for option in (resolve(options) if options else [])
                )
            elif name == "async_create_issue":
                for part in ("title", "description"):
                    keys["issue"].add(f"issues.{key}.{part}")
                    passed[f"issues.{key}.{part}"] = placeholder_keys(call)
            elif keyword(call, "translation_domain") is not None:  # An exception.
                keys["exception"].add(f"exceptions.{key}.message")
                passed[f"exceptions.{key}.message"] = placeholder_keys(call)
            else:
                keys["unclassified"].add(f"{platform}.py:{call.lineno}: {name}")
        for node in ast.walk(module):  # Entity classes may set it directly.
            match node:
                case ast.Assign(
                    targets=[ast.Name(id="_attr_translation_key")], value=value
                ):
                    keys["entity"].add(f"entity.{platform}.{resolve(value)}")
    return keys, passed


@cache
def scan_texts() -> dict[str, set[str]]:
    """Return, per texts.text("key", ...) use, its key and the placeholders passed.

    These are the notification and logbook texts (texts.py), kept in the
    `exceptions` category.
    """
    found: dict[str, set[str]] = {}
    for module in modules().values():
        for call in calls(module):
            match call:
                case ast.Call(
                    func=ast.Attribute(attr="text"), args=[ast.Constant(value=str(key))]
                ):
                    assert all(kw.arg for kw in call.keywords), call.lineno
                    found.setdefault(f"exceptions.{key}.message", set()).update(
                        str(kw.arg) for kw in call.keywords
                    )
    return found


# --- Config and options flows ------------------------------------------------


@cache
def exception_reasons() -> dict[str, set[str]]:
    """Return, per exception class, the values of its `reason`'s Literal type.

    Such as signature.py's InvalidKeyError (`self.reason: KeyErrorReason`).
    """
    literals: dict[str, set[str]] = {}
    for module in modules().values():
        for node in module.body:
            match node:
                case ast.TypeAlias(
                    name=ast.Name(id=name),
                    value=ast.Subscript(value=ast.Name(id="Literal"), slice=values),
                ):
                    literals[name] = set(resolve(values))
    reasons: dict[str, set[str]] = {}
    for module in modules().values():
        for cls in (node for node in module.body if isinstance(node, ast.ClassDef)):
            for node in ast.walk(cls):
                match node:
                    case ast.AnnAssign(
                        target=ast.Attribute(attr="reason"),
                        annotation=ast.Name(id=alias),
                    ) if alias in literals:
                        reasons[cls.name] = literals[alias]
    assert {"InvalidKeyError", "IceServerError"} <= set(reasons), reasons
    return reasons


def string_returns(function: Function) -> set[str]:
    """Return the string literals a function returns."""
    return {
        node.value.value
        for node in ast.walk(function)
        if isinstance(node, ast.Return)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def error_keys(function: Function, functions: Mapping[str, Function]) -> set[str]:
    """Return the error keys a function assigns into `errors[...]`."""
    bindings: dict[str, str] = {}  # error := await f(...) binds error to f
    caught: dict[str, str] = {}  # except InvalidKeyError as err binds err
    for node in ast.walk(function):
        match node:
            case ast.ExceptHandler(type=ast.Name(id=cls), name=str(name)):
                caught[name] = cls
            case (
                ast.NamedExpr(target=ast.Name(id=name), value=value)
                | ast.Assign(targets=[ast.Name(id=name)], value=value)
            ):
                if isinstance(value, ast.Await):
                    value = value.value
                if isinstance(value, ast.Call):
                    bindings[name] = call_name(value)
    found: set[str] = set()
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Assign)
            and isinstance(target := node.targets[0], ast.Subscript)
            and isinstance(target.value, ast.Name)
            and target.value.id == "errors"
        ):
            continue
        match node.value:
            case ast.Constant(value=str(key)):
                found.add(key)
            case ast.Attribute(value=ast.Name(id=name), attr="reason") if (
                caught.get(name) in exception_reasons()
            ):
                found |= exception_reasons()[caught[name]]
            case ast.Name(id=name) if bindings.get(name) in functions:
                found |= string_returns(functions[bindings[name]])
            case _:
                raise AssertionError(f"line {node.lineno}: unknown error key")
    return found


FLOW_MODULES = ("config_flow", "options_flow")


@cache
def flow_keys() -> dict[str, set[str]]:
    """Return the en.json keys each flow needs: steps, errors, abort reasons."""
    keys: dict[str, set[str]] = {}
    for name in FLOW_MODULES:
        keys |= _module_flow_keys(modules()[name])
    assert {"config steps", "options steps"} <= set(keys), keys
    return keys


def _module_flow_keys(module: ast.Module) -> dict[str, set[str]]:
    """Return the en.json keys of the flows one module defines."""
    helpers: dict[str, Function] = {
        node.name: node
        for node in module.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    keys: dict[str, set[str]] = {}
    for cls in (node for node in module.body if isinstance(node, ast.ClassDef)):
        bases = {getattr(base, "id", "") for base in cls.bases}
        if "ConfigFlow" in bases:
            flow = "config"
        elif any(base.startswith("OptionsFlow") for base in bases):
            flow = "options"
        else:
            continue
        methods = {
            node.name: node
            for node in cls.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        # The class's methods plus every module-level helper they reach.
        reached, todo = dict(methods), list(methods.values())
        while todo:
            for call in calls(todo.pop()):
                if (name := call_name(call)) in helpers and name not in reached:
                    reached[name] = helpers[name]
                    todo.append(helpers[name])
        steps = {
            name.removeprefix("async_step_")
            for name in methods
            if name.startswith("async_step_")
        }
        aborts: set[str] = set()
        for function in reached.values():
            for call in calls(function):
                if (step := keyword(call, "step_id")) is not None:
                    steps.add(resolve(step))
                name = call_name(call)
                if name == "_abort_if_unique_id_configured":
                    aborts.add("already_configured")
                elif name in {
                    "async_abort",
                    "async_update_and_abort",
                    "async_update_reload_and_abort",
                }:
                    # Without reason=, HA's default (this flow has no reauth).
                    reason = keyword(call, "reason")
                    aborts.add(resolve(reason) if reason else "reconfigure_successful")
        errors = set().union(*(error_keys(f, reached) for f in reached.values()))
        keys[f"{flow} steps"] = {f"{flow}.step.{step}" for step in steps}
        keys[f"{flow} errors"] = {f"{flow}.error.{error}" for error in errors}
        keys[f"{flow} aborts"] = {f"{flow}.abort.{reason}" for reason in aborts}
    return keys


# --- Services ----------------------------------------------------------------


def service_keys() -> set[str]:
    """Return the en.json keys services.yaml needs, selectors included."""
    keys: set[str] = set()
    for service, spec in load_services().items():
        keys |= {f"services.{service}.name", f"services.{service}.description"}
        for field, field_spec in (spec or {}).get("fields", {}).items():
            keys |= {
                f"services.{service}.fields.{field}.name",
                f"services.{service}.fields.{field}.description",
            }
            select = (field_spec.get("selector") or {}).get("select") or {}
            if "translation_key" in select:
                keys.update(
                    f"selector.{select['translation_key']}.options.{option}"
                    for option in select["options"]
                )
    return keys


def required_keys(kind: str) -> set[str]:
    """Return the en.json keys the code needs, of one kind."""
    if kind == "services":
        return service_keys()
    if kind == "texts":
        return set(scan_texts())
    if kind in (code_keys := scan_code()[0]):
        return code_keys[kind]
    return flow_keys()[kind]


# --- (a) Spanish matches English ---------------------------------------------


def test_languages_have_the_same_keys() -> None:
    """Every language has exactly the keys of en.json, no more, no fewer."""
    english = {key for key, _ in flatten(load_strings("en"))}
    for language in LANGUAGES[1:]:
        other = {key for key, _ in flatten(load_strings(language))}
        assert other - english == set(), f"{language}.json: keys not in en.json"
        assert english - other == set(), f"{language}.json: untranslated keys"


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_translations_keep_placeholders_and_tokens(language: str) -> None:
    """Each string keeps its {placeholders} and its technical tokens."""
    english = dict(flatten(load_strings("en")))
    mismatched: dict[str, Any] = {}
    for key, text in flatten(load_strings(language)):
        source = english.get(key, "")  # Extra keys fail the test above.
        if not isinstance(text, str) or not text.strip():
            mismatched[key] = "not a non-empty string"
        elif placeholders(text) != placeholders(source):
            mismatched[key] = (
                f"{sorted(placeholders(text))}, en: {placeholders(source)}"
            )
        elif lost := technical_tokens(source) - technical_tokens(text):
            mismatched[key] = f"lost {sorted(lost)}"
    assert mismatched == {}


# --- (b) Every key the code uses is in en.json -------------------------------

KINDS = [
    "entity",
    "event_type",
    "exception",
    "issue",
    "selector",
    "config steps",
    "config errors",
    "config aborts",
    "options steps",
    "options errors",
    "services",
    "texts",
]


@pytest.mark.parametrize("kind", KINDS)
def test_code_keys_exist_in_english(kind: str) -> None:
    """Each translation key the code uses, of this kind, is in en.json."""
    required = required_keys(kind)
    assert required, f"found no {kind} keys in the code: is the parser stale?"
    english = load_strings("en")
    assert sorted(key for key in required if lookup(english, key) is None) == []


def test_every_translation_key_use_is_understood() -> None:
    """A translation_key= this test cannot place would go unchecked."""
    assert scan_code()[0]["unclassified"] == set()


def test_code_passes_the_placeholders_english_uses() -> None:
    """Exceptions and issues pass every placeholder their en.json text uses."""
    english = load_strings("en")
    unfilled = {
        key: missing
        for key, passed in (scan_code()[1] | scan_texts()).items()
        if isinstance(text := lookup(english, key), str)
        and (missing := placeholders(text) - passed)
    }
    assert unfilled == {}


# --- (c) No unresolved references --------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_form_field_is_described(language: str) -> None:
    """Every field of the config, reconfigure and options steps says what it is for.

    Home Assistant's `config-flow` quality rule asks for a `data_description`
    per field (quality_scale.yaml claims it).
    """
    strings = load_strings(language)
    missing = [
        f"{flow}.step.{step}.data_description.{field}"
        for flow in ("config", "options")
        for step, texts in strings[flow]["step"].items()
        for field in texts.get("data", {})
        if field not in texts.get("data_description", {})
    ]
    assert not missing


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_key_references(language: str) -> None:
    """Custom integrations don't get [%key:...] references resolved."""
    assert [
        key for key, text in flatten(load_strings(language)) if "[%key:" in str(text)
    ] == []


# --- (d) Icons ---------------------------------------------------------------


def test_icons_refer_to_existing_keys() -> None:
    """Every icon belongs to a translated entity or a defined service."""
    icons = json.loads((PACKAGE / "icons.json").read_text("utf-8"))
    english = load_strings("en")
    services = load_services()
    unknown = [
        f"entity.{platform}.{key}"
        for platform, entities in icons.get("entity", {}).items()
        for key in entities
        if lookup(english, f"entity.{platform}.{key}") is None
    ]
    unknown += [
        f"services.{service}"
        for service in icons.get("services", {})
        if service not in services or lookup(english, f"services.{service}") is None
    ]
    assert unknown == []


def test_every_reason_reads_as_text() -> None:
    """Each refusal and end reason has a label for notifications and the logbook."""
    from custom_components.rtcc_share.models import (  # noqa: PLC0415
        EndReason,
        RefusalReason,
    )

    labels = lookup(
        load_strings("en"), "entity.event.activation.state_attributes.reason.state"
    )
    assert {*RefusalReason, *EndReason} <= set(labels)
