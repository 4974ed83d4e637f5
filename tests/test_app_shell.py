"""The app shell the service worker keeps, its version, the worker script as served, the manifest's fields
Chromium needs to install the app, and the committed keep-awake video (real files of edge/web/static)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import orjson
import pytest

from edge.tools import keepawake
from edge.web.static import STATIC_DIR, service_worker, shell_files, shell_version

pytestmark = pytest.mark.unit


def test_the_shell_is_the_page_its_style_modules_icons_and_manifest_only() -> None:
    shell = shell_files(STATIC_DIR)
    assert shell[0] == "/" and shell == ["/", *sorted(shell[1:])]
    assert {"/static/app.css", "/static/js/main.js", "/static/js/store.js", "/static/manifest.webmanifest",
            "/static/icons/icon-192.png", "/static/icons/icon-maskable-512.png"} <= set(shell)
    # the worker itself, the keep-awake video (plain http only, where no worker runs) and anything else stay out
    assert "/static/sw.js" not in shell and "/static/keepawake.webm" not in shell
    assert all(p == "/" or p.endswith((".css", ".js", ".webmanifest", ".png", ".svg")) for p in shell)


def test_a_changed_static_file_changes_the_version_and_so_the_worker(tmp_path: Path) -> None:
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    before, worker = shell_version(copy), service_worker(copy)
    assert before == shell_version(STATIC_DIR) and worker is not None
    text = worker.decode()
    assert f'const VERSION = "{before}";' in text and "__SHELL" not in text
    assert f"const SHELL = {orjson.dumps(shell_files(copy)).decode()};" in text
    (copy / "app.css").write_text((copy / "app.css").read_text() + "\n.x { color: red }\n")
    assert shell_version(copy) != before and service_worker(copy) != worker   # the browser installs anew
    (copy / "sw.js").unlink()
    assert service_worker(copy) is None


def test_the_manifest_has_what_installing_needs() -> None:
    manifest = orjson.loads((STATIC_DIR / "manifest.webmanifest").read_bytes())
    assert manifest["id"] == "/" and manifest["scope"] == "/" and manifest["start_url"].startswith("/")
    assert manifest["display"] == "standalone" and manifest["name"] and manifest["short_name"]
    assert manifest["theme_color"] and manifest["background_color"]
    purposes = {(i["sizes"], i["purpose"]) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= purposes
    for icon in manifest["icons"]:
        assert (STATIC_DIR / icon["src"].removeprefix("/static/")).is_file(), icon


def test_the_keep_awake_video_is_a_tiny_silent_vp8_loop(tmp_path: Path) -> None:
    committed = STATIC_DIR / "keepawake.webm"
    assert committed.stat().st_size < 4096
    with av.open(str(committed)) as container:
        assert not container.streams.audio      # an audio track would take the tablet's audio focus
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8" and (stream.width, stream.height) == keepawake.SIZE
        frames = list(container.decode(video=0))
    assert len(frames) == keepawake.FPS * keepawake.SECONDS
    # the generator makes it again (what to run after changing its parameters)
    made = keepawake.write(tmp_path / "again.webm")
    with av.open(str(made)) as container:
        assert len(list(container.decode(video=0))) == len(frames)
