"""The package's structure: no import cycle, and Home Assistant internals listed.

Home Assistant does not export everything the share needs from its
components' root modules (mypy's strict re-export rule shows which). Those
few internal imports are listed here, each by the module allowed to make it
(only the live view, `live/`, reaches into `stream` and the camera's
WebRTC internals), so a Home Assistant upgrade that moves one fails here,
by name.
"""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "custom_components" / "rtcc_share"

# module of ours -> {internal Home Assistant module: names it takes from it}
INTERNAL: dict[str, dict[str, set[str]]] = {
    "live/hls_stream.py": {
        "homeassistant.components.camera.prefs": {"DynamicStreamSettings"},
        "homeassistant.components.stream.const": {
            "ATTR_STREAMS",
            "SEGMENT_DURATION_ADJUSTER",
        },
        "homeassistant.components.stream.core": {
            "Segment",
            "StreamOutput",
            "StreamSettings",
        },
        "homeassistant.components.stream.exceptions": {"StreamWorkerError"},
        "homeassistant.components.stream.hls": {"HlsStreamOutput"},
    },
    "live/hls_worker.py": {
        "homeassistant.components.stream.const": {"AUDIO_CODECS", "SOURCE_TIMEOUT"},
        "homeassistant.components.stream.core": {
            "STREAM_SETTINGS_NON_LL_HLS",
            "KeyFrameConverter",
            "StreamOutput",
            "StreamSettings",
        },
        "homeassistant.components.stream.diagnostics": {"Diagnostics"},
        "homeassistant.components.stream.exceptions": {
            "StreamEndedError",
            "StreamWorkerError",
        },
        "homeassistant.components.stream.hls": {"HlsStreamOutput"},
        "homeassistant.components.stream.worker": {
            "PeekIterator",
            "StreamMuxer",
            "StreamState",
            "TimestampValidator",
            "closing_stream_worker",
            "get_audio_bitstream_filter",
            "repair_initial_missing_dts",
        },
    },
    "live/hls_reload.py": {"homeassistant.components.stream.hls": {"HlsStreamOutput"}},
    "live/hls_playlists.py": {
        "homeassistant.components.stream.const": {
            "FORMAT_CONTENT_TYPE",
            "SOURCE_TIMEOUT",
        },
        "homeassistant.components.stream.core": {"Segment", "StreamOutput"},
        "homeassistant.components.stream.fmp4utils": {"get_codec_string"},
        "homeassistant.components.stream.hls": {
            "HlsMasterPlaylistView",
            "HlsPartView",
            "HlsPlaylistView",
            "HlsSegmentView",
            "HlsStreamOutput",
        },
    },
    "live/hls_share.py": {
        "homeassistant.components.camera.helper": {"get_camera_from_entity_id"},
        "homeassistant.components.camera.prefs": {
            "DynamicStreamSettings",
            "get_dynamic_camera_stream_settings",
        },
        "homeassistant.components.stream.const": {"ATTR_STREAMS", "AUDIO_CODECS"},
        "homeassistant.components.stream.core": {"StreamOutput"},
    },
    "live/hls_view.py": {
        "homeassistant.components.stream.core": {"StreamView"},
        "homeassistant.components.stream.hls": {"HlsInitView"},
    },
    "live/masked_view.py": {
        "homeassistant.components.camera.helper": {"get_camera_from_entity_id"},
        "homeassistant.components.camera.prefs": {"DynamicStreamSettings"},
        "homeassistant.components.stream.const": {"ATTR_STREAMS"},
    },
    "live/webrtc_share.py": {
        "homeassistant.components.camera.const": {"StreamType"},
        "homeassistant.components.camera.helper": {"get_camera_from_entity_id"},
        "homeassistant.components.camera.webrtc": {"WebRTCSendMessage"},
    },
    "live/webrtc_view.py": {
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


# The live view's HTTP edges, which answer the city's players themselves.
HTTP_EDGES: set[str] = {
    "live/http.py",
    "live/hls_view.py",
    "live/hls_playlists.py",
    "live/webrtc_view.py",
    # The loopback HTTP servers of stream sources inside the home.
    "live/loopback.py",
    "live/masked_source.py",
    "live/prebuffer.py",
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


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=_name)
def test_internal_imports_are_the_listed_ones(path: Path) -> None:
    """Each module takes from HA's internals only what is listed for it."""
    taken: dict[str, set[str]] = {}
    for node in _imports(path):
        if _internal(node):
            taken.setdefault(str(node.module), set()).update(a.name for a in node.names)
    assert taken == INTERNAL.get(_name(path), {})


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
    for path in PACKAGE.rglob("*.py"):
        # Dotted module name in the package ("live.hls_share"); a package is
        # its __init__ ("live").
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = graph.setdefault(name, set())
        # The package a relative import starts from.
        here = parts[:-1]
        for node in _imports(path):
            if node.level == 0:
                continue
            module = [*here[: len(here) - (node.level - 1)]]
            if node.module:
                module += node.module.split(".")
                deps.add(".".join(module))
            # `from .live import hls_share` imports the submodule too.
            deps.update(".".join([*module, alias.name]) for alias in node.names)
    # Names that are not modules (`from .const import DOMAIN`) lead nowhere.
    graph = {name: deps & graph.keys() for name, deps in graph.items()}
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
        _name(path)
        for path in PACKAGE.rglob("*.py")
        if "HTTPStatus" in path.read_text(encoding="utf-8")
    }
    assert users <= {"webhook.py", *HTTP_EDGES}
