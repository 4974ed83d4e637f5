"""The layout ARCHITECTURE.md promises, checked on the source as it is.

Layers point one way (util, protocol, config, web, core, features, transports, the device, the command line, the
tools); no import circle, lazy and type-checking imports included; no runtime module imports a tool; no module is
over the size a reader takes in at once; each feature module imports first in a fresh interpreter; no feature
imports the device or reaches into the hub, the store's connection or the MQTT bridge's hooks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edge"
# The layer of each top-level part of the package (ARCHITECTURE.md, "Layers"); an import may only go to the
# same part or a lower layer. Features (vision … system) are peers of one another.
LAYERS = {"util": 0, "protocol": 1, "config": 2, "web": 3, "core": 4,
          "vision": 5, "behaviour": 5, "audio": 5, "media": 5, "system": 5,
          "transports": 6, "device": 7, "cli": 8, "watch": 8, "tools": 9, "__main__": 10}
FEATURE_MODULES = ["edge.core.feature", "edge.behaviour.feature", "edge.behaviour.posture_feature",
                   "edge.audio.feature", "edge.media.feature", "edge.system.systemd"]
FEATURE_PARTS = ("behaviour", "audio", "media", "vision", "system")
FORBIDDEN_ATTRIBUTES = {"connect_hooks", "ws_routes", "hub", "db"}
MAX_LINES = 450


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of the package this file imports, wherever the import stands (functions and
    ``if TYPE_CHECKING`` included); ``from pkg import mod`` counts as importing ``pkg.mod``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("edge"))
    return {name for name in found if name in known and name != "edge"}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


def test_imports_point_down_the_layers(graph: dict[str, set[str]]) -> None:
    wrong = []
    for module, targets in graph.items():
        if part(module) == "__init__":
            continue
        assert part(module) in LAYERS, f"{module}: a new top-level part needs its layer in LAYERS and ARCHITECTURE.md"
        for target in targets:
            if part(target) != part(module) and LAYERS.get(part(target), 0) > LAYERS[part(module)]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components over the module graph; a package's face is not a node of its own.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_no_runtime_module_imports_a_tool(graph: dict[str, set[str]]) -> None:
    offenders = [f"{m} -> {t}" for m, targets in graph.items() if part(m) != "tools"
                 for t in targets if part(t) == "tools"]
    assert offenders == []
    assert not [p for p in PACKAGE.rglob("*bench*.py") if "tools" not in p.parts]


def test_protocol_imports_nothing_above_it(graph: dict[str, set[str]]) -> None:
    assert {t for m, ts in graph.items() if part(m) == "protocol" for t in ts
            if part(t) not in ("protocol", "util")} == set()


def test_no_module_is_too_long_to_read() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_each_feature_module_imports_first_on_its_own(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_no_feature_imports_the_device_or_reaches_into_transports_and_store(graph: dict[str, set[str]]) -> None:
    found = []
    for module, path in modules().items():
        if part(module) not in FEATURE_PARTS:
            continue
        if "edge.device" in graph[module]:
            found.append(f"{module} imports edge.device")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES \
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} reaches .{node.attr}")
    assert found == []


def test_one_module_enumerates_the_interface_addresses() -> None:
    # edge/web/netnames.py (ifaddr) is the one lister; DeviceNames and reach both ask it (psutil lists none).
    listers = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
               if any(call in p.read_text() for call in ("get_adapters(", "net_if_addrs(", "getifaddrs("))}
    assert listers == {"edge/web/netnames.py"}
