"""Media files over HTTP: streamed in chunks, one byte range (206), HEAD, ETag, bounded memory.

Owns :class:`FileStream` (an ASGI response) and :class:`StreamSlots`. A body is read CHUNK bytes at
a time off the event loop and each chunk is handed to uvicorn, whose flow control waits for the
socket to drain before the next: a response holds at most about CHUNK plus the transport's
high-water mark, whatever the file size or the reader's speed. At most ``StreamSlots.limit`` bodies
are sent at once (others get 503 with Retry-After), so the memory bound holds while bodies are
being sent. A slow but progressing reader has no deadline; one that takes no chunk for
IDLE_TIMEOUT seconds is cut off (the TCP connection is aborted: the buffer would never drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from edge.web.httprange import Unsatisfiable, parse_range

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
SOCKET_SEND_BUFFER = 256 * 1024  # the kernel's share per download (Linux would grow it to 4 MiB; the unit's
#                                  cgroup counts socket buffers against MemoryHigh)
IDLE_TIMEOUT = 30.0
MAX_STREAMS = 32  # bodies sent at once: ~32 x (64 KiB chunk + 64 KiB transport buffer) = 4 MiB at most


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


class FileStream(Response):
    """``path`` (of ``size`` bytes, immutable once named by ``etag``) with Range, HEAD and If-None-Match."""

    def __init__(self, path: Path, size: int, content_type: str, etag: str, request_headers: Any,
                 slots: StreamSlots, headers: dict[str, str] | None = None,
                 on_missing: Callable[[OSError], None] | None = None) -> None:
        self.path, self.size, self.content_type, self.etag = path, size, content_type, etag
        self.request_headers, self.slots, self.on_missing = request_headers, slots, on_missing
        self.extra = {"Accept-Ranges": "bytes", "ETag": etag, **(headers or {})}
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = scope.get("method") == "HEAD"
        if self.etag in [t.strip() for t in self.request_headers.get("if-none-match", "").split(",")]:
            await _send_whole(send, 304, self.extra, b"")
            return
        try:
            wanted = parse_range(self.request_headers.get("range"), self.size)
        except Unsatisfiable:
            await _send_whole(send, 416, {**self.extra, "Content-Range": f"bytes */{self.size}"}, b"")
            return
        first, last = wanted if wanted is not None else (0, self.size - 1)
        length = max(0, last - first + 1)
        headers = {**self.extra, "Content-Type": self.content_type, "Content-Length": str(length)}
        status = 200 if wanted is None else 206
        if wanted is not None:
            headers["Content-Range"] = f"bytes {first}-{last}/{self.size}"
        if head:  # the headers a GET would get, no body
            await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        if not self.slots.take():
            await _send_whole(send, 503, {"Retry-After": "2", "Content-Type": "text/plain"},
                              b"too many media downloads at once; retry\n")
            return
        try:
            await self._stream(scope, receive, send, status, headers, first, length)
        finally:
            self.slots.give()

    async def _stream(self, scope: Scope, receive: Receive, send: Send, status: int, headers: dict[str, str],
                      first: int, length: int) -> None:
        try:
            handle: IO[bytes] = await asyncio.to_thread(_open_at, self.path, first)
        except OSError as exc:
            if self.on_missing is not None:
                self.on_missing(exc)
            await _send_whole(send, 404, {"Content-Type": "text/plain", "Cache-Control": "no-store"},
                              b"no such media\n")
            return
        transport = scope.get("dogmon.transport")
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
            remaining = length
            while remaining > 0 and not gone.is_set():
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
                if not chunk:  # the file shrank under us: the promised length cannot be kept
                    _abort(scope)
                    return
                remaining -= len(chunk)
                try:
                    await asyncio.wait_for(send({"type": "http.response.body", "body": chunk,
                                                 "more_body": remaining > 0}), IDLE_TIMEOUT)
                except TimeoutError:
                    log.info("media download stalled for %.0fs; connection closed", IDLE_TIMEOUT)
                    _abort(scope)
                    return
            if gone.is_set() and remaining > 0:
                return  # the reader left; uvicorn has dropped the connection
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await asyncio.to_thread(handle.close)


def _open_at(path: Path, offset: int) -> IO[bytes]:
    handle = open(path, "rb")  # noqa: SIM115 - closed by the response when the body is sent
    handle.seek(offset)
    return handle


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


def _abort(scope: Scope) -> None:
    transport = scope.get("dogmon.transport")
    if transport is not None:
        transport.abort()


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _send_whole(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": _raw({**headers, "Content-Length": str(len(body))})})
    await send({"type": "http.response.body", "body": body})
