"""uvicorn's HTTP protocol with a deadline for a request's headers (uvicorn has none).

Owns :func:`http_protocol`. uvicorn arms its keep-alive timeout only after a response, so a peer that
connects and sends nothing, or half a request line, would hold a connection (and one of
``limit_concurrency``'s places) for ever; the ``websockets`` server this replaced closed such a peer
after 10 s. Here every connection, and every next request on a kept-alive one, must complete its
headers within HEADER_TIMEOUT; a body then has no deadline (the idle timeout of ``edge.web.files``).
"""

from __future__ import annotations

import asyncio
from typing import Any

HEADER_TIMEOUT = 10.0


def http_protocol(name: str) -> type[asyncio.Protocol]:
    """uvicorn's ``httptools`` or ``h11`` protocol class with the header deadline added."""
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class WithHeaderDeadline(Base):
        _deadline: asyncio.TimerHandle | None = None
        _deadline_cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            between = self.cycle is None or self.cycle.response_complete
            if between and (self._deadline is None or self._deadline_cycle is not self.cycle):
                self._arm()  # the first bytes of a next request on a kept-alive connection
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
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
            transport = self.transport
            if transport is None or transport.is_closing() or transport.get_protocol() is not self:
                return  # closed, or upgraded to a WebSocket: not ours any more
            if self.cycle is self._deadline_cycle and (self.cycle is None or self.cycle.response_complete):
                transport.close()  # no request started since the deadline was armed

    WithHeaderDeadline.__name__ = f"{Base.__name__}WithHeaderDeadline"
    return WithHeaderDeadline
