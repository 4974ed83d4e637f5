"""The one server on ``DOGMON_WS_PORT``: uvicorn (httptools for HTTP, h11 where it is missing; the
``websockets`` library for WebSocket) with Starlette routing.

Owns the listening socket, the route table, admission of every request (``Host``, ``Origin``, body type
and the wrong-credential limit checked first by :class:`edge.web.gate.Gate`; token and session cookie
judged once by ``AuthenticationMiddleware``, routes declaring whether they need them; the WebSocket
client limit), the answers to what no route takes (Starlette exception handlers: 401, 404, 405,
``HTTPException``, ``CommandError``, a client gone mid-body), the deadline of a request body, the
tablet app's static files and the log of refusals (one line per spell, not per request). The
sign-in routes are :class:`edge.web.login.SessionRoutes`. Every JSON body is an :class:`OrjsonResponse`.
Features see only :class:`WebHost`: ``add_route`` for HTTP and ``add_websocket`` for WebSocket paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import logging
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from edge.protocol.errors import ERROR_STATUS, CommandError
from edge.util.spell import Spell, Spells
from edge.web.auth import TOKEN_SCOPE, Auth, TokenBackend, authenticated
from edge.web.gate import Gate
from edge.web.login import SessionRoutes
from edge.web.origins import DeviceNames, is_loopback
from edge.web.pairing import Pairing
from edge.web.protocols import connection_of, http_protocol, with_connection
from edge.web.sessions import FILE_NAME as SESSIONS_FILE
from edge.web.sessions import SessionStore
from edge.web.static import GZIP_EXCLUDED, STATIC_DIR, AppFiles, service_worker
from edge.web.wsconn import WsConn

log = logging.getLogger(__name__)

HttpHandler = Callable[[Request], Awaitable[Response] | Response]
WsHandler = Callable[[WsConn], Awaitable[None]]

IDLE_TIMEOUT = 30.0            # a keep-alive connection with no request, or a body with no progress, for this long
SHUTDOWN_TIMEOUT = 1.0         # responses still being sent at shutdown get this long
MAX_CONNECTIONS = 256          # uvicorn answers 503 beyond this many connections and tasks
REFUSAL_SPELL_QUIET = 60.0     # refusals this far apart are separate spells (each logged once)
PING_INTERVAL = 20.0
BODY_TIMEOUT = 5.0             # a request body must have arrived this long after its headers
# Threads Starlette reads files in (media chunks, static files): asyncio's own default executor size. anyio's
# default is 40, and each new thread gets its own malloc arena holding 64 KiB chunks: 20 readers cost more.
FILE_THREADS = min(32, (os.cpu_count() or 1) + 4)
# uvicorn's HTTP parser: httptools took 40 % less loop CPU per request than h11 (docs/http.md); h11 (pure
# Python, always installed with uvicorn) only where no httptools wheel could be installed.
HTTP_IMPL = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


class WebHost(Protocol):
    """What a feature may do to the web server: add an HTTP route or a WebSocket path."""

    def add_route(self, path: str, handler: HttpHandler, methods: Sequence[str] = ("GET",),
                  needs_token: bool = True) -> None: ...

    def add_websocket(self, path: str, handler: WsHandler, needs_token: bool = True) -> None: ...


class SpellLog:
    """Refused requests logged once per spell (:class:`Spell`): the first one of a spell at INFO, the rest
    counted; a spell ends after ``quiet`` seconds without a refusal, and its count is logged when the next begins."""

    def __init__(self, quiet: float = REFUSAL_SPELL_QUIET, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.spell = Spell(quiet, clock)

    def refused(self, status: int, reason: str, peer: str, path: str) -> None:
        seen = self.spell.occur()
        self._log_count(seen.suppressed)
        if seen.first:
            log.info("refused %s from %s: %d %s (more refusals within %.0fs are counted, not logged)",
                     path, peer, status, reason, self.quiet)

    def flush(self) -> None:
        self._log_count(self.spell.end())

    @staticmethod
    def _log_count(suppressed: int) -> None:
        if suppressed:
            log.info("refused %d more requests in that spell", suppressed)


class RepeatFilter(logging.Filter):
    """On uvicorn's logger: a warning repeated by peers (``Invalid HTTP request received.`` for every
    garbage request) is logged once per spell of ``quiet`` seconds; errors with a traceback always pass."""

    def __init__(self, quiet: float = REFUSAL_SPELL_QUIET, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.spells = Spells(quiet, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or record.exc_info:
            return True
        return self.spells.occur(str(record.msg)).first


def peer_of(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "?"


class OrjsonResponse(JSONResponse):
    """A JSON body encoded by orjson (the bus's encoder)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON that is never cached."""
    return OrjsonResponse(body, status, {"Cache-Control": "no-store", **(headers or {})})


def error_response(code: str, message: str, status: int | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The REST refusal ``{"error": {"code", "message"}}``, its status the code's (``edge.protocol.errors``)."""
    return json_response({"error": {"code": code, "message": message}},
                         ERROR_STATUS[code] if status is None else status, dict(headers or {}))


async def _upgrade_required(request: Request) -> Response:
    return PlainTextResponse(f"{request.url.path} is a WebSocket: connect with a WebSocket client (ws://)\n", 426,
                             {"Upgrade": "websocket", "Cache-Control": "no-store"})


async def read_body(request: Request, limit: int, timeout: float = BODY_TIMEOUT) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (read no further: anyone may post).
    A body still arriving after ``timeout`` is answered 408 and its connection closed: a peer sending a
    byte every few seconds must not hold a connection (and a task) for minutes."""
    raw = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > limit:
                    return None
    except TimeoutError:
        raise HTTPException(408, f"the request body did not arrive within {timeout:g} s",
                            {"Connection": "close"}) from None
    return bytes(raw)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host``:``port`` (the first address ``host`` resolves to)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class WebServer:
    def __init__(self, host: str, port: int, token: str = "", origins: tuple[str, ...] = (),
                 max_message_bytes: int = 64 * 1024, static_dir: Path = STATIC_DIR,
                 data_dir: Path | None = None) -> None:
        """``token`` empty: no auth (loopback binds only); ``data_dir``: where sessions are kept and pairing
        codes read (None: sessions in memory, no pairing)."""
        self.host, self.requested_port = host, port
        self.auth = Auth(token, SessionStore(data_dir / SESSIONS_FILE if data_dir else None, token))
        self.names = DeviceNames(host, lambda: self.port if self.socket is not None else self.requested_port,
                                 origins)
        self.pairing = Pairing(data_dir) if data_dir is not None else None
        signin = SessionRoutes(self.auth, self.pairing, self.refuse, json_response, error_response, read_body,
                               peer_of)
        self.max_message_bytes = max_message_bytes
        self.static_dir = static_dir
        self._worker: bytes | None = None  # /sw.js as served: read at its first request
        self.ws_admit: Callable[[], str | None] = lambda: None  # a reason to refuse a new WebSocket (503), or None
        self.refused: Counter[int] = Counter()
        self.spells = SpellLog()
        self.app = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/sw.js", self._service_worker, methods=["GET"]),
                Route("/api/session", signin.session, methods=["GET"]),
                Route("/api/login", signin.login, methods=["POST"]),
                Route("/api/pair", signin.pair, methods=["POST"]),
                Route("/pair", signin.pair_link, methods=["GET"]),
                Route("/api/logout", signin.logout, methods=["POST"]),
                Mount("/static", app=GZipMiddleware(AppFiles(directory=static_dir, check_dir=False),
                                                    minimum_size=512, exclude_content_types=GZIP_EXCLUDED)),
                # Last, whatever is added later: Starlette's router closes an unknown WebSocket path (403
                # after the handshake); this refuses it with 404 like any unknown path.
                WebSocketRoute("/{path:path}", self._no_such_websocket),
            ],
            middleware=[Middleware(Gate, auth=self.auth, names=self.names, refuse=self.refuse),
                        Middleware(AuthenticationMiddleware, backend=TokenBackend(self.auth))],
            exception_handlers={401: self._unauthorized, 404: self._not_found, 405: self._wrong_method,
                                HTTPException: self._http_error, CommandError: self._command_error,
                                ClientDisconnect: self._client_left})
        self.server: uvicorn.Server | None = None
        self.socket: socket.socket | None = None
        self.ssl_context: ssl.SSLContext | None = None  # set before start: the port speaks HTTPS (edge/web/tls.py)

    # --- WebHost ---
    def add_route(self, path: str, handler: HttpHandler, methods: Sequence[str] = ("GET",),
                  needs_token: bool = True) -> None:
        """``path`` in Starlette's syntax (``/media/{media_id}``); GET routes answer HEAD too. Without the
        token (when ``needs_token``) the answer is 401; a handler may raise ``CommandError`` for a REST refusal."""
        async def endpoint(request: Request) -> Response:
            result = handler(request)
            return await result if inspect.isawaitable(result) else result

        self._add(Route(path, requires(TOKEN_SCOPE, status_code=401)(endpoint) if needs_token else endpoint,
                        methods=list(methods)))

    def add_websocket(self, path: str, handler: WsHandler, needs_token: bool = True) -> None:
        """A WebSocket path; a plain HTTP request there (no Upgrade) is told it needs a WebSocket client (426)."""
        async def endpoint(websocket: WebSocket) -> None:
            refusal = self._ws_refusal(websocket, needs_token)
            if refusal is not None:
                await websocket.send_denial_response(refusal)
                return
            await websocket.accept()
            conn = WsConn(websocket, connection_of(websocket.scope))
            try:
                await handler(conn)
            finally:
                await conn.close(1000)

        self._add(WebSocketRoute(path, endpoint), Route(path, _upgrade_required, methods=None))

    def _add(self, *routes: BaseRoute) -> None:
        table = self.app.router.routes
        table[len(table) - 1:len(table) - 1] = routes  # before the unknown-WebSocket catch-all

    # --- admission and refusals ---
    def _ws_refusal(self, websocket: WebSocket, needs_token: bool) -> Response | None:
        if needs_token and not authenticated(websocket):
            return self.refuse(websocket, "unauthorized", "missing or wrong token")
        full = self.ws_admit()
        if full is not None:
            return self.refuse(websocket, "busy", full)
        return None

    def refuse(self, conn: HTTPConnection, code: str, reason: str, status: int | None = None,
               headers: Mapping[str, str] | None = None) -> Response:
        """Counted and logged per spell; under ``/api/`` the REST error body ``code`` (status: the code's
        unless given), elsewhere plain text."""
        status = ERROR_STATUS[code] if status is None else status
        self.refused[status] += 1
        self.spells.refused(status, reason, peer_of(conn), conn.url.path)
        if conn.url.path.startswith("/api/") and conn.scope["type"] == "http":
            return error_response(code, reason, status, headers)
        return PlainTextResponse(reason + "\n", status, {"Cache-Control": "no-store", **(headers or {})})

    async def _unauthorized(self, conn: HTTPConnection, exc: Exception) -> Response:
        return self.refuse(conn, "unauthorized", "missing or wrong token")

    async def _not_found(self, conn: HTTPConnection, exc: Exception) -> Response:
        api = conn.url.path.startswith("/api/")
        return self.refuse(conn, "unknown_type", "no such path" + ("; see /api/openapi.json" if api else ""))

    async def _wrong_method(self, conn: HTTPConnection, exc: Exception) -> Response:
        allowed = exc.headers if isinstance(exc, HTTPException) else None
        method = conn.scope.get("method", "?")
        return self.refuse(conn, "unknown_type", f"{method} is not allowed on this path", 405, allowed)

    async def _no_such_websocket(self, websocket: WebSocket) -> None:
        raise HTTPException(404)

    async def _http_error(self, conn: HTTPConnection, exc: Exception) -> Response:
        """Any other ``HTTPException`` (Starlette's own): its status and detail, as a REST body under /api/."""
        assert isinstance(exc, HTTPException)
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        if conn.url.path.startswith("/api/"):
            return error_response("invalid_message", exc.detail, exc.status_code, exc.headers)
        return PlainTextResponse(exc.detail + "\n", exc.status_code, exc.headers)

    async def _command_error(self, conn: HTTPConnection, exc: Exception) -> Response:
        assert isinstance(exc, CommandError)
        return error_response(exc.code, exc.message)

    async def _client_left(self, conn: HTTPConnection, exc: Exception) -> None:
        # The peer went away while sending its body (an aborted upload or login): nobody to answer.
        log.debug("client %s left while sending %s %s", peer_of(conn), conn.scope.get("method"), conn.url.path)

    # --- the page and its session ---
    async def _index(self, request: Request) -> Response:
        index = self.static_dir / "index.html"
        if not index.is_file():
            return PlainTextResponse("the tablet app is not installed (edge/web/static/index.html)\n", 404)
        return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def _service_worker(self, request: Request) -> Response:
        # At the root so that its scope is the whole app; read once (the files do not change while running).
        if self._worker is None:
            self._worker = await anyio.to_thread.run_sync(service_worker, self.static_dir) or b""
        if not self._worker:
            return PlainTextResponse("the tablet app has no service worker\n", 404)
        return Response(self._worker, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})

    # --- lifecycle ---
    def _bind(self) -> socket.socket:
        return bind_socket(self.host, self.requested_port)

    async def start(self) -> None:
        if not self.auth.required and not is_loopback(self.host):
            raise ValueError(f"refusing to serve {self.host!r} with no token: auth off is for loopback binds only")
        anyio.to_thread.current_default_thread_limiter().total_tokens = FILE_THREADS
        config = uvicorn.Config(
            with_connection(self.app), interface="asgi3", http=http_protocol(HTTP_IMPL), ws="websockets-sansio",
            lifespan="off",
            log_config=None, access_log=False, server_header=False, date_header=False, proxy_headers=False,
            ws_max_size=self.max_message_bytes,
            ws_ping_interval=PING_INTERVAL, ws_ping_timeout=PING_INTERVAL, ws_per_message_deflate=False,
            timeout_keep_alive=int(IDLE_TIMEOUT), timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT) or 1,
            limit_concurrency=MAX_CONNECTIONS)
        config.load()
        config.ssl = self.ssl_context
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, RepeatFilter) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(RepeatFilter())
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self.socket = self._bind()
        await self.server.startup(sockets=[self.socket])

    @property
    def port(self) -> int:
        assert self.socket is not None
        return int(self.socket.getsockname()[1])

    async def stop(self) -> None:
        self.spells.flush()
        if self.server is None:
            return
        server, self.server = self.server, None
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(server.shutdown(), SHUTDOWN_TIMEOUT + 1.0)
