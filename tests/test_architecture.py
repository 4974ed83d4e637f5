"""The shape issue 11 asked for: features see a ``Host``, not the ``Device``; media stays off the WebSocket transport.

Checked on the source as it is: each feature module imports first in a fresh interpreter (an import cycle with
``edge.app`` would fail there), and no feature module imports ``edge.app`` or reaches into the hub, the store's
connection or the MQTT bridge's hooks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FEATURE_MODULES = ["edge.features", "edge.host", "edge.behaviour.feature", "edge.behaviour.posture_feature",
                   "edge.audio.feature", "edge.media.feature", "edge.transports.ha_feature",
                   "edge.transports.mqtt_commands", "edge.systemd"]
FEATURE_FILES = [*sorted((ROOT / "edge" / "behaviour").glob("*.py")), *sorted((ROOT / "edge" / "audio").glob("*.py")),
                 *[p for p in sorted((ROOT / "edge" / "media").glob("*.py")) if not p.name.endswith("bench.py")],
                 ROOT / "edge/transports/ha_feature.py", ROOT / "edge/transports/mqtt_commands.py",
                 ROOT / "edge/systemd.py", ROOT / "edge/features.py", ROOT / "edge/host.py"]
FORBIDDEN_ATTRIBUTES = {"connect_hooks", "ws_routes", "hub", "db"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_each_feature_module_imports_first_on_its_own(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_no_feature_imports_the_device_or_reaches_into_transports_and_store() -> None:
    found = []
    for path in FEATURE_FILES:
        assert path.exists(), path
        if "edge.app" in imported(path):
            found.append(f"{path.relative_to(ROOT)} imports edge.app")
        if path.name != "host.py":  # the host is where the store's connection is named once (media_index)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES \
                        and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} reaches .{node.attr}")
    assert found == []


def test_media_does_not_import_the_websocket_transport() -> None:
    media = sorted((ROOT / "edge" / "media").glob("*.py"))
    assert len(media) > 10
    assert [p.name for p in media if any(m.startswith("edge.transports") for m in imported(p))] == []
