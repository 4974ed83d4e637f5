"""The WebSocket as a handler sees it: send bytes or text, read until the close, ``close(code, reason)``.

Owns :class:`WsConn`, the adapter between the ASGI WebSocket (uvicorn's ``websockets`` protocol under
Starlette) and the device's handlers (``/ws/ui``, ``/ws/video``). A close that cannot be sent within
``close_timeout`` (the peer stopped reading, so the send buffer never drains) aborts the TCP
connection (:class:`edge.web.protocols.Connection`) instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from starlette.websockets import WebSocket, WebSocketDisconnect

from edge.web.protocols import Connection

CLOSE_TIMEOUT = 2.0


class Closed(Exception):
    """The connection is closed (by either side); nothing more can be sent."""


class WsConn:
    def __init__(self, websocket: WebSocket, connection: Connection | None) -> None:
        self.websocket = websocket
        self.connection = connection
        self.close_timeout = CLOSE_TIMEOUT
        self.closed = False
        self.close_code: int | None = None
        self._send = websocket.send  # the ASGI send: one dict per message, no per-client encoding here

    @property
    def remote_address(self) -> tuple[str, int] | None:
        client = self.websocket.client
        return (client.host, client.port) if client else None

    @property
    def path(self) -> str:
        return str(self.websocket.scope.get("path", ""))

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.websocket.scope.get("query_string", b"").decode("latin-1"))

    def socket(self) -> Any:
        return self.connection.socket if self.connection is not None else None

    async def send(self, data: bytes | str, text: bool = True) -> None:
        """One message; ``text`` bytes must be UTF-8 (the bus's encoded payloads are)."""
        if self.closed:
            raise Closed
        message: dict[str, Any]
        if text:
            message = {"type": "websocket.send", "text": data.decode() if isinstance(data, bytes) else data}
        else:
            message = {"type": "websocket.send", "bytes": data.encode() if isinstance(data, str) else data}
        try:
            await self._send(message)
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            self.closed = True
            raise Closed from exc

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        while not self.closed:
            try:
                message = await self.websocket.receive()
            except (RuntimeError, OSError):
                self.closed = True
                return
            if message["type"] == "websocket.disconnect":
                self.closed = True
                self.close_code = message.get("code")
                return
            text = message.get("text")
            yield text if text is not None else message.get("bytes") or b""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.websocket.close(code, reason), self.close_timeout)
        except TimeoutError:
            self.abort()
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass

    def abort(self) -> None:
        if self.connection is not None:
            self.connection.abort()
