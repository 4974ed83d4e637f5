"""The tablet app's files: ``GET /`` is ``static/index.html``, ``GET /static/{path}`` the files beside it,
``GET /sw.js`` its service worker.

Owns the folder, the content types and the app shell: the files the service worker keeps
(:func:`shell_files`, never camera data) and the version that names its cache (:func:`shell_version`, a
hash of every static file, so a release that changes any of them replaces the cache). Served by
Starlette's ``StaticFiles`` (it refuses paths that leave the folder, ``..`` or symlinks out, and answers
ETag/If-None-Match), gzipped for text types.
No token is needed: the page must load before it can ask for one. The types are set here because
Python's ``mimetypes`` (and ``/etc/mime.types``) differ between versions and lack ``.webmanifest``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path

import orjson
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"

TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".svg": "image/svg+xml", ".webmanifest": "application/manifest+json", ".json": "application/json",
    ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain",
    ".webm": "video/webm",
}
# Already compressed: gzip would spend CPU for nothing.
GZIP_EXCLUDED = ("image/png", "image/jpeg", "image/webp", "image/x-icon", "font/woff2", "video/mp4",
                 "video/webm", "text/event-stream")

for _suffix, _type in TYPES.items():
    mimetypes.add_type(_type, _suffix)


class AppFiles(StaticFiles):
    """``StaticFiles`` whose answers are revalidated on every load (``no-cache`` + ETag: a 304 costs a
    round trip, and a tablet never keeps running yesterday's app after an update)."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


SERVICE_WORKER = "sw.js"
# What the app needs to open with no device: the page, its style, modules, icons and manifest. Not the
# keep-awake video (plain HTTP only, where there is no service worker) nor the worker itself.
SHELL_SUFFIXES = (".css", ".js", ".webmanifest", ".png", ".svg")


def shell_files(static_dir: Path) -> list[str]:
    """The URLs the service worker caches: ``/`` and the shell's files under ``/static/``, sorted."""
    files = sorted(p.relative_to(static_dir).as_posix() for p in static_dir.rglob("*")
                   if p.is_file() and p.suffix in SHELL_SUFFIXES and p.name != SERVICE_WORKER)
    return ["/", *(f"/static/{name}" for name in files)]


def shell_version(static_dir: Path) -> str:
    """A hash of every file in the folder (names and contents): changes with any release that changes one."""
    digest = hashlib.sha256()
    for path in sorted(p for p in static_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(static_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def service_worker(static_dir: Path) -> bytes | None:
    """``static/sw.js`` with its version and shell list filled in (None when the app has no worker)."""
    source = static_dir / SERVICE_WORKER
    if not source.is_file():
        return None
    text = source.read_text(encoding="utf-8")
    text = text.replace('"__SHELL_VERSION__"', orjson.dumps(shell_version(static_dir)).decode())
    text = text.replace('["__SHELL_FILES__"]', orjson.dumps(shell_files(static_dir)).decode())
    return text.encode()
