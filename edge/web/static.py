"""The tablet app's files: ``GET /`` is ``static/index.html``, ``GET /static/{path}`` the files beside it.

Owns the folder and the content types. Served by Starlette's ``StaticFiles`` (it refuses paths that
leave the folder, ``..`` or symlinks out, and answers ETag/If-None-Match), gzipped for text types.
No token is needed: the page must load before it can ask for one. The types are set here because
Python's ``mimetypes`` (and ``/etc/mime.types``) differ between versions and lack ``.webmanifest``.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"

TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".svg": "image/svg+xml", ".webmanifest": "application/manifest+json", ".json": "application/json",
    ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain",
}
# Already compressed: gzip would spend CPU for nothing.
GZIP_EXCLUDED = ("image/png", "image/jpeg", "image/webp", "image/x-icon", "font/woff2", "video/mp4",
                 "text/event-stream")

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
