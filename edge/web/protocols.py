"""uvicorn's HTTP protocol with a deadline for a request's headers (uvicorn has none), and the
connection under each request as an ASGI scope extension.

Owns :func:`http_protocol` and :class:`Connection`. uvicorn arms its keep-alive timeout only after a
response, so a peer that connects and sends nothing, or half a request line, would hold a connection
(and one of ``limit_concurrency``'s places) for ever; the ``websockets`` server this replaced closed such a peer
after 10 s. Here every connection, and every next request on a kept-alive one, must complete its
headers within HEADER_TIMEOUT; a body then has ``edge.web.server.read_body``'s deadline.

One peer address may hold at most ``MAX_PER_ADDRESS`` connections (HTTP and WebSocket alike), well
below uvicorn's global ``limit_concurrency``: a further one is answered 503 and closed at once, so one
slow or hostile address can never take the places ``/healthz`` and the owner's tablet need.

ASGI has no way to abort a connection or size its socket buffers, and a peer that stops reading
needs both (a graceful close waits for a send buffer that never drains). The protocol learns its
transport from asyncio's ``connection_made`` and marks the bytes it parses with it (a context
variable, which the request's task, or the WebSocket's after an upgrade, inherits);
:func:`with_connection` puts it in the scope as ``extensions["dogmon.connection"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

HEADER_TIMEOUT = 10.0
MAX_PER_ADDRESS = 64
EXTENSION = "dogmon.connection"
_TOO_MANY_BODY = b"too many connections from your address\n"
TOO_MANY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 10\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(_TOO_MANY_BODY), _TOO_MANY_BODY))


class PerAddress:
    """Open transports by peer address; a transport counts until it is closing (an upgraded WebSocket
    keeps counting: its transport is the same)."""

    def __init__(self, limit: int = MAX_PER_ADDRESS) -> None:
        self.limit = limit
        self.open: dict[str, set[asyncio.BaseTransport]] = {}

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else "?"
        held = {t for t in self.open.get(address, ()) if not t.is_closing()}
        if len(held) >= self.limit:
            self.open[address] = held
            return False
        held.add(transport)
        self.open[address] = held
        return True

    def forget(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else "?"
        held = self.open.get(address)
        if held is not None:
            held.discard(transport)
            if not held:
                del self.open[address]


class Connection:
    """The TCP connection under a request or WebSocket: its socket and a hard abort."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    @property
    def socket(self) -> Any:
        return self._transport.get_extra_info("socket")

    def abort(self) -> None:
        """Drop the connection now, whatever is still buffered for the peer (an RST, not a FIN)."""
        with contextlib.suppress(Exception):
            self._transport.abort()

    def close(self) -> None:
        """Close after what is buffered has gone (a FIN)."""
        self._transport.close()

    def served_by(self, protocol: asyncio.BaseProtocol) -> bool:
        """Open and still ``protocol``'s (not closing, not upgraded to a WebSocket)."""
        return not self._transport.is_closing() and self._transport.get_protocol() is protocol


_current: ContextVar[Connection | None] = ContextVar("dogmon_connection", default=None)


def with_connection(app: ASGIApp) -> ASGIApp:
    """``app`` with the connection under each request in ``scope["extensions"]["dogmon.connection"]``."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), EXTENSION: _current.get()}
        await app(scope, receive, send)

    return wrapped


def connection_of(scope: Scope) -> Connection | None:
    extensions = scope.get("extensions") or {}
    connection = extensions.get(EXTENSION)
    return connection if isinstance(connection, Connection) else None


def http_protocol(name: str, per_address: PerAddress | None = None) -> type[asyncio.Protocol]:
    """uvicorn's ``httptools`` or ``h11`` protocol class with the header deadline and the per-address
    connection cap added."""
    limits = per_address or PerAddress()
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class WithHeaderDeadline(Base):
        _deadline: asyncio.TimerHandle | None = None
        _deadline_cycle: Any = None
        _connection: Connection | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._connection = Connection(transport)
            super().connection_made(transport)
            if not limits.admit(transport):
                transport.write(TOO_MANY)
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            # Tasks started while these bytes are parsed (the request's, a WebSocket's) inherit it.
            _current.set(self._connection)
            between = self.cycle is None or self.cycle.response_complete
            if between and (self._deadline is None or self._deadline_cycle is not self.cycle):
                self._arm()  # the first bytes of a next request on a kept-alive connection
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            limits.forget(self.transport)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline_cycle = self.cycle
            self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            self._deadline = None
            connection = self._connection
            if connection is None or not connection.served_by(self):
                return  # closed, or upgraded to a WebSocket: not ours any more
            if self.cycle is self._deadline_cycle and (self.cycle is None or self.cycle.response_complete):
                connection.close()  # no request started since the deadline was armed

    WithHeaderDeadline.__name__ = f"{Base.__name__}WithHeaderDeadline"
    return WithHeaderDeadline
