"""The package's structure: no import cycle, and Home Assistant internals listed.

Home Assistant does not export everything the share needs from its
components' root modules (mypy's strict re-export rule shows which). Those
few internal imports are listed here, each by the module allowed to make it
(only the two HLS modules, `stream_share.py` and `live_hls.py`, reach into
`stream` internals), so a Home Assistant upgrade that moves one fails here,
by name.
"""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "custom_components" / "rtcc_share"

# module of ours -> {internal Home Assistant module: names it takes from it}
INTERNAL: dict[str, dict[str, set[str]]] = {
    "live_hls.py": {
        "homeassistant.components.camera.prefs": {"DynamicStreamSettings"},
        "homeassistant.components.stream.const": {
            "ATTR_STREAMS",
            "FORMAT_CONTENT_TYPE",
            "SEGMENT_DURATION_ADJUSTER",
            "SOURCE_TIMEOUT",
        },
        "homeassistant.components.stream.core": {
            "Segment",
            "StreamOutput",
            "StreamSettings",
        },
        "homeassistant.components.stream.fmp4utils": {"get_codec_string"},
        "homeassistant.components.stream.hls": {
            "HlsMasterPlaylistView",
            "HlsPlaylistView",
            "HlsStreamOutput",
        },
    },
    "stream_share.py": {
        "homeassistant.components.camera.helper": {"get_camera_from_entity_id"},
        "homeassistant.components.camera.prefs": {
            "DynamicStreamSettings",
            "get_dynamic_camera_stream_settings",
        },
        "homeassistant.components.stream.const": {"ATTR_STREAMS", "AUDIO_CODECS"},
        "homeassistant.components.stream.core": {"StreamOutput", "StreamView"},
        "homeassistant.components.stream.hls": {
            "HlsInitView",
            "HlsPartView",
            "HlsSegmentView",
        },
    },
    "whep.py": {
        "homeassistant.components.camera.const": {"StreamType"},
        "homeassistant.components.camera.helper": {"get_camera_from_entity_id"},
    },
    "whep_views.py": {
        "homeassistant.components.camera.webrtc": {
            "WebRTCAnswer",
            "WebRTCCandidate",
            "WebRTCError",
            "WebRTCMessage",
        },
    },
    "camera.py": {"homeassistant.components.camera.const": {"CameraEntityFeature"}},
    "logbook.py": {
        "homeassistant.components.logbook.const": {
            "LOGBOOK_ENTRY_ENTITY_ID",
            "LOGBOOK_ENTRY_MESSAGE",
            "LOGBOOK_ENTRY_NAME",
        },
        "homeassistant.components.logbook.models": {"LazyEventPartialState"},
    },
}


def _imports(path: Path) -> list[ast.ImportFrom]:
    return [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
    ]


def _internal(node: ast.ImportFrom) -> bool:
    return (
        bool(node.module)
        and str(node.module).startswith("homeassistant.components.")
        and str(node.module).count(".") > 2
    )


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_internal_imports_are_the_listed_ones(path: Path) -> None:
    """Each module takes from HA's internals only what is listed for it."""
    taken: dict[str, set[str]] = {}
    for node in _imports(path):
        if _internal(node):
            taken.setdefault(str(node.module), set()).update(a.name for a in node.names)
    assert taken == INTERNAL.get(path.name, {})


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (module, names)
        for modules in INTERNAL.values()
        for module, names in modules.items()
    ],
)
def test_internal_names_still_exist(module: str, names: set[str]) -> None:
    """Fails loudly, by name, when a Home Assistant upgrade moves one of them."""
    imported = importlib.import_module(module)
    missing = {name for name in names if not hasattr(imported, name)}
    assert not missing, f"Home Assistant moved {sorted(missing)} out of {module}"


def test_no_import_cycle() -> None:
    """The package's modules import each other without a cycle."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        deps = graph.setdefault(path.stem, set())
        for node in _imports(path):
            if node.level != 1:
                continue
            if node.module:
                deps.add(node.module.split(".")[0])
            else:
                deps.update(alias.name for alias in node.names)
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*visiting, name])
        visiting.append(name)
        for dep in sorted(graph.get(name, ())):
            visit(dep)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_http_status_only_at_the_http_edge() -> None:
    """Only the webhook and the share's own endpoints (HLS, WHEP) choose statuses."""
    users = {
        path.name
        for path in PACKAGE.glob("*.py")
        if "HTTPStatus" in path.read_text(encoding="utf-8")
    }
    assert users <= {"webhook.py", "stream_share.py", "live_hls.py", "whep_views.py"}
