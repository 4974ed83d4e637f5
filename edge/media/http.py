"""The media feature's HTTP routes: ``/media/{id}`` (stored files, streamed with ranges) and ``/snapshot.jpg``.

``/media/{id}`` looks the id up in the index and streams the file (:class:`~edge.web.files.MediaFile`:
Starlette's ``FileResponse`` with one range, HEAD, ETag, a bounded number at once); a media id names
one file for good, so it is cached as immutable, and a row whose file has gone is dropped from the
index. ``/snapshot.jpg`` is the newest pre-roll frame, refused (503) before the first frame and when
the camera has been silent too long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from edge.media.index import MediaIndex, MediaRecord, file_of, valid_id
from edge.media.ring import FrameRing
from edge.media.worker import STALE_FRAME
from edge.util import clock
from edge.web.files import MediaFile, StreamSlots

log = logging.getLogger(__name__)

MEDIA_PREFIX = "/media/"
SNAPSHOT_PATH = "/snapshot.jpg"


class MediaHttp:
    def __init__(self, folder: Path, index: Callable[[], MediaIndex | None], ring: FrameRing) -> None:
        self.folder, self._index, self.ring = folder, index, ring
        self.streams = StreamSlots()

    def media(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        if not valid_id(media_id):
            return PlainTextResponse("invalid media id\n", 400)
        index = self._index()
        assert index is not None
        record = index.get(media_id)
        if record is None:
            return PlainTextResponse("no such media\n", 404)
        try:
            path = file_of(record, self.folder)
        except ValueError:
            return PlainTextResponse("no such media\n", 404)
        extension = record.file.rsplit(".", 1)[-1]
        # A media id names one file for good (a new file gets a new id): its bytes never change.
        return MediaFile(path, record.content_type, f'"{record.id}-{record.bytes}"', self.streams,
                         {"Cache-Control": "private, max-age=31536000, immutable"}, f"{record.id}.{extension}",
                         on_missing=lambda exc: self._unreadable(index, record, exc))

    @staticmethod
    def _unreadable(index: MediaIndex, record: MediaRecord, exc: OSError) -> None:
        log.warning("media %s listed but unreadable (%s); removing it from the index", record.id, exc)
        index.delete([record.id])

    def snapshot(self, request: Request) -> Response:
        newest = self.ring.newest()
        if newest is None:
            return PlainTextResponse("no camera frame yet\n", 503, {"Retry-After": "1", "Cache-Control": "no-store"})
        if clock.monotonic() - newest.captured > STALE_FRAME:
            return PlainTextResponse("no recent camera frame (camera offline?)\n", 503,
                                     {"Retry-After": "5", "Cache-Control": "no-store"})
        return Response(newest.jpeg, 200, {"X-Frame-Time": f"{newest.wall:.3f}", "Cache-Control": "no-store"},
                        media_type="image/jpeg")
