"""The one server on ``DOGMON_WS_PORT``: uvicorn (httptools for HTTP, h11 where it is missing; the
``websockets`` library for WebSocket) with Starlette routing.

Owns the listening socket, the route table, admission of every request (token, session cookie,
origin, WebSocket client limit), the login/session routes, the tablet app's static files and the
log of refusals (one line per spell, not per request). Features see only :class:`WebHost`:
``add_route`` for HTTP and ``add_websocket`` for WebSocket paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from edge.protocol.openapi import ERROR_STATUS
from edge.util.spell import Spell, Spells
from edge.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, Auth
from edge.web.protocols import http_protocol
from edge.web.static import GZIP_EXCLUDED, STATIC_DIR, AppFiles
from edge.web.wsconn import WsConn

log = logging.getLogger(__name__)

HttpHandler = Callable[[Request], Awaitable[Response] | Response]
WsHandler = Callable[[WsConn], Awaitable[None]]

IDLE_TIMEOUT = 30.0            # a keep-alive connection with no request, or a body with no progress, for this long
SHUTDOWN_TIMEOUT = 1.0         # responses still being sent at shutdown get this long
MAX_CONNECTIONS = 256          # uvicorn answers 503 beyond this many connections and tasks
REFUSAL_SPELL_QUIET = 60.0     # refusals this far apart are separate spells (each logged once)
PING_INTERVAL = 20.0
MAX_LOGIN_BODY = 4096          # bytes of a POST /api/login body (the token is at most 256 characters)
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


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with orjson (the bus's encoder), never cached."""
    return Response(orjson.dumps(body), status, {"Cache-Control": "no-store", **(headers or {})},
                    media_type="application/json")


def error_response(code: str, message: str, status: int | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The REST refusal ``{"error": {"code", "message"}}``, its status from the one map of error codes."""
    return json_response({"error": {"code": code, "message": message}},
                         ERROR_STATUS.get(code, 400) if status is None else status, headers)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (read no further: anyone may post)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            return None
    return bytes(raw)


class WebServer:
    def __init__(self, host: str, port: int, token: str = "", origins: tuple[str, ...] = (),
                 max_message_bytes: int = 64 * 1024, static_dir: Path = STATIC_DIR) -> None:
        self.host, self.requested_port = host, port
        self.auth = Auth(token)
        self.origins = origins
        self.max_message_bytes = max_message_bytes
        self.static_dir = static_dir
        self.ws_admit: Callable[[], str | None] = lambda: None  # a reason to refuse a new WebSocket (503), or None
        self.refused: Counter[int] = Counter()
        self.spells = SpellLog()
        self.app = Starlette(routes=[
            Route("/", self._index, methods=["GET"]),
            Route("/api/session", self._session, methods=["GET"]),
            Route("/api/login", self._login, methods=["POST"]),
            Route("/api/logout", self._logout, methods=["POST"]),
            Mount("/static", app=GZipMiddleware(AppFiles(directory=static_dir, check_dir=False),
                                                minimum_size=512, exclude_content_types=GZIP_EXCLUDED)),
        ])
        self.app.router.default = self._not_found
        self.server: uvicorn.Server | None = None
        self.socket: socket.socket | None = None

    # --- WebHost ---
    def add_route(self, path: str, handler: HttpHandler, methods: Sequence[str] = ("GET",),
                  needs_token: bool = True) -> None:
        """``path`` in Starlette's syntax (``/media/{media_id}``); GET routes answer HEAD too."""
        async def endpoint(request: Request) -> Response:
            if needs_token and not self.auth.authorised(request):
                return self.refuse(request, 401, "missing or wrong token")
            result = handler(request)
            return await result if inspect.isawaitable(result) else result

        self.app.router.routes.append(Route(path, endpoint, methods=list(methods)))

    def add_websocket(self, path: str, handler: WsHandler, needs_token: bool = True) -> None:
        async def endpoint(websocket: WebSocket) -> None:
            reason = self._ws_refusal(websocket, needs_token)
            if reason is not None:
                status, text = reason
                await websocket.send_denial_response(self.refuse(websocket, status, text))
                return
            await websocket.accept()
            conn = WsConn(websocket, websocket.scope.get("dogmon.transport"))
            try:
                await handler(conn)
            finally:
                await conn.close(1000)

        self.app.router.routes.append(WebSocketRoute(path, endpoint))

    # --- admission ---
    def _ws_refusal(self, websocket: WebSocket, needs_token: bool) -> tuple[int, str] | None:
        if needs_token and not self.auth.authorised(websocket):
            return 401, "missing or wrong token"
        origin = websocket.headers.get("origin")
        if self.origins and origin is not None and origin not in self.origins:
            return 403, "origin not allowed"
        full = self.ws_admit()
        if full is not None:
            return 503, full
        return None

    def refuse(self, conn: HTTPConnection, status: int, reason: str) -> Response:
        """Counted and logged per spell; under ``/api/`` the REST error body, elsewhere plain text."""
        self.refused[status] += 1
        self.spells.refused(status, reason, peer_of(conn), conn.url.path)
        if conn.url.path.startswith("/api/") and conn.scope["type"] == "http":
            code = {401: "unauthorized", 404: "unknown_type", 429: "rate_limited"}.get(status, "invalid_message")
            return error_response(code, reason, status)
        return PlainTextResponse(reason + "\n", status, {"Cache-Control": "no-store"})

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive, send)
            await websocket.send_denial_response(self.refuse(websocket, 404, "no such path"))
        elif scope["type"] == "http":
            request = Request(scope, receive)
            reason = "no such path" + ("; see /api/openapi.json" if request.url.path.startswith("/api/") else "")
            await self.refuse(request, 404, reason)(scope, receive, send)

    # --- the page and its session ---
    async def _index(self, request: Request) -> Response:
        index = self.static_dir / "index.html"
        if not index.is_file():
            return PlainTextResponse("the tablet app is not installed (edge/web/static/index.html)\n", 404)
        return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def _session(self, request: Request) -> Response:
        return json_response({"auth_required": self.auth.required, "authenticated": self.auth.authorised(request)})

    async def _login(self, request: Request) -> Response:
        peer = peer_of(request)
        if not self.auth.required:
            response = json_response({"authenticated": True, "auth_required": False})
            self._set_cookie(response, "open")
            return response
        if not self.auth.login_allowed(peer):
            self.refuse(request, 429, "too many wrong logins")
            return error_response("rate_limited", "too many wrong logins; wait a minute", headers={"Retry-After": "60"})
        raw = await read_body(request, MAX_LOGIN_BODY)  # anyone may post here: a token's worth, never more
        if raw is None:
            return error_response("too_large", "a login body is a token")
        try:
            body = orjson.loads(raw)
            offered = body.get("token") if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            offered = None
        if not isinstance(offered, str) or not self.auth.token_ok(offered):
            self.auth.login_failed(peer)
            self.refuse(request, 401, "wrong token at login")
            return error_response("unauthorized", "wrong token")
        response = json_response({"authenticated": True, "auth_required": True})
        self._set_cookie(response, self.auth.session)
        return response

    async def _logout(self, request: Request) -> Response:
        response = json_response({"authenticated": False, "auth_required": self.auth.required})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @staticmethod
    def _set_cookie(response: Response, value: str) -> None:
        response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, path="/", httponly=True,
                            samesite="strict")

    # --- lifecycle ---
    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's send is a bound method of the connection's protocol object: its transport is how a
        # stalled peer is aborted (ASGI has no abort) and how the WebSocket's send buffer is sized.
        scope["dogmon.transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)

    def _bind(self) -> socket.socket:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host or None, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
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

    async def start(self) -> None:
        config = uvicorn.Config(
            self._asgi, interface="asgi3", http=http_protocol(HTTP_IMPL), ws="websockets-sansio", lifespan="off",
            log_config=None, access_log=False, server_header=False, date_header=False, proxy_headers=False,
            ws_max_size=self.max_message_bytes,
            ws_ping_interval=PING_INTERVAL, ws_ping_timeout=PING_INTERVAL, ws_per_message_deflate=False,
            timeout_keep_alive=int(IDLE_TIMEOUT), timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT) or 1,
            limit_concurrency=MAX_CONNECTIONS)
        config.load()
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
