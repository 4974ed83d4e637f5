"""Media files over HTTP: Starlette's ``FileResponse`` with the device's bounds.

Owns :class:`MediaFile` and :class:`StreamSlots`. ``FileResponse`` does the HTTP: HEAD, one byte range
(206, ``Content-Range``), 416 with ``Content-Range: bytes */size``, If-Range, and a body read
CHUNK bytes at a time off the event loop, each chunk handed to uvicorn, whose flow control waits for
the socket to drain before the next: a response holds at most about CHUNK plus the transport's
high-water mark, whatever the file size or the reader's speed. Added here:

- ``If-None-Match`` with the file's ETag answers 304 (a media id names one file for good);
- one range only: several ranges, another unit or a malformed header get the whole file (200; RFC 9110
  lets a server ignore Range), a range ending before it starts is a 416, and a number longer than 18
  digits (``int()`` refuses more than 4300) means beyond any file: a 416 as a start, "to the end" as an end;
- at most ``StreamSlots.limit`` bodies are sent at once (others get 503 with Retry-After), so the
  memory bound holds while bodies are being sent, and each download's kernel send buffer is fixed;
- no deadline for a slow but progressing reader; one that takes no chunk for IDLE_TIMEOUT seconds is
  cut off (the TCP connection is aborted: its send buffer would never drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, MalformedRangeHeader, PlainTextResponse, RangeNotSatisfiable, Response
from starlette.types import Message, Receive, Scope, Send

from edge.web.protocols import connection_of

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
SOCKET_SEND_BUFFER = 256 * 1024  # the kernel's share per download (Linux would grow it to 4 MiB; the unit's
#                                  cgroup counts socket buffers against MemoryHigh)
IDLE_TIMEOUT = 30.0
MAX_STREAMS = 32  # bodies sent at once: ~32 x (64 KiB chunk + 64 KiB transport buffer) = 4 MiB at most
LONG_NUMBER = re.compile(r"\d{19,}")  # more digits than any file's size has
BEYOND_ANY_FILE = str(10**18)


class StreamSlots:
    """Counts bodies being sent; a response that finds none free answers 503."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.active = 0
        self.peak = 0
        self.refused = 0

    def take(self) -> bool:
        if self.active >= self.limit:
            self.refused += 1
            return False
        self.active += 1
        self.peak = max(self.peak, self.active)
        return True

    def give(self) -> None:
        self.active -= 1


class MediaFile(FileResponse):
    """``path``, immutable once named by ``etag``: ``FileResponse`` plus 304, one range, slots and the idle cut-off.

    ``on_missing`` is told when the file cannot be read (the answer is then 404 ``no such media``).
    """

    chunk_size = CHUNK
    max_ranges = 1

    def __init__(self, path: Path, media_type: str, etag: str, slots: StreamSlots,
                 headers: dict[str, str] | None = None, filename: str | None = None,
                 on_missing: Callable[[OSError], None] | None = None) -> None:
        super().__init__(path, headers={**(headers or {}), "ETag": etag}, media_type=media_type,
                         filename=filename, content_disposition_type="inline")
        self.etag, self.slots, self.on_missing = etag, slots, on_missing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        offered = Headers(scope=scope).get("if-none-match", "")
        if self.etag in [tag.strip() for tag in offered.split(",")]:
            kept = ("etag", "cache-control", "accept-ranges", "content-disposition")
            await Response(status_code=304, headers={k: v for k, v in self.headers.items() if k in kept})(
                scope, receive, send)
            return
        try:
            self.stat_result = await asyncio.to_thread(os.stat, self.path)
        except OSError as exc:
            if self.on_missing is not None:
                self.on_missing(exc)
            await PlainTextResponse("no such media\n", 404, {"Cache-Control": "no-store"})(scope, receive, send)
            return
        self.set_stat_headers(self.stat_result)
        if scope["method"] == "HEAD":  # the headers a GET would get, no body: no slot needed
            await super().__call__(scope, receive, send)
            return
        if not self.slots.take():
            await PlainTextResponse("too many media downloads at once; retry\n", 503, {"Retry-After": "2"})(
                scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, self._watched(scope, send))
        finally:
            self.slots.give()

    def _watched(self, scope: Scope, send: Send) -> Send:
        """``send`` with a fixed kernel buffer, aborting the connection when a chunk waits IDLE_TIMEOUT to go."""
        connection = connection_of(scope)
        sock = connection.socket if connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)

        async def watched(message: Message) -> None:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    await send(message)
            except TimeoutError:
                if connection is None:
                    raise
                log.info("media download stalled for %.0fs; connection closed", IDLE_TIMEOUT)
                connection.abort()  # uvicorn then sees the disconnect: the response ends, later sends are dropped

        return watched

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(LONG_NUMBER.sub(BEYOND_ANY_FILE, http_range), file_size)
        except MalformedRangeHeader:
            return []  # another unit, or no range in it: the whole file

    @classmethod
    def _parse_ranges(cls, range_: str, file_size: int) -> list[tuple[int, int]]:
        ranges = super()._parse_ranges(range_, file_size)
        if any(start >= end for start, end in ranges):  # the last byte before the first
            raise RangeNotSatisfiable(file_size)
        return ranges
