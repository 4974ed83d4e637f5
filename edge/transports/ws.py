"""WebSocket hub: ``ws://HOST:PORT/ws/ui`` for tablets, plus small HTTP GETs on the same port.

Owns client admission (path, token, origin, client limit), per-client delivery and inbound command
reading. Delivery per client: events and replies go through a bounded queue and are never dropped
(a client that lets it fill is closed with 1013 and told to resume with ``since``); overlays and
telemetry keep only the newest payload per kind, so a slow client gets the latest, not a backlog.
The bytes sent are the bus's encoded payload, shared by all clients. A client connecting with
``?since=SEQ`` (or sending ``resume``) first gets every stored event after SEQ, then the live stream,
with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import logging
import socket
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from edge import messages
from edge.bus import Bus
from edge.commands import Command, CommandError, parse_command
from edge.messages import Message, MessageType
from edge.ratelimit import RateLimiter

log = logging.getLogger(__name__)

UI_PATH = "/ws/ui"
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
REPLAY_BATCH = 200
SOCKET_SEND_BUFFER = 256 * 1024
SLOW_CLOSE_TIMEOUT = 10.0
SHUTDOWN_CLOSE_TIMEOUT = 0.5
MAX_PENDING_BYTES = 8 * 2**20  # what one client may have queued, whatever the message count

HttpRoute = Callable[[ServerConnection, Request], Response | Awaitable[Response]]


def binary_response(status: int, body: bytes, content_type: str,
                    extra: dict[str, str] | None = None) -> Response:
    """An HTTP response for the small GET routes served on the WebSocket port."""
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)),
                       "Cache-Control": "no-store", **(extra or {})})
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


class Client:
    """One connected tablet: its queues, replay cursor and sender task."""

    def __init__(self, ws: ServerConnection, max_pending: int, on_slow: Callable[[Client], None],
                 max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.ws = ws
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.on_slow = on_slow
        # events (with their seq), replies and errors (seq None): never dropped; bounded in count and bytes
        self.pending: deque[tuple[int | None, bytes]] = deque()
        self.pending_bytes = 0
        self.latest: dict[str, bytes] = {}      # overlays/telemetry: newest wins
        self.wake = asyncio.Event()
        self.replay_after: int | None = None    # stored events after this seq …
        self.replay_until = 0                   # … up to this one are sent before anything queued
        self.replay_generation = 0              # a new resume restarts a replay in progress
        self.sender: asyncio.Task | None = None
        self.closing = False
        self.sent = 0

    def offer(self, message: Message, payload: bytes) -> None:
        if self.closing:
            return
        if message.type in (MessageType.OVERLAY, MessageType.TELEMETRY):
            self.latest[f"{message.type}:{message.overlay_type}"] = payload
        else:
            self.enqueue(payload, message.seq if message.is_event else None)
            return
        self.wake.set()

    def enqueue(self, payload: bytes, seq: int | None = None) -> None:
        if self.closing:
            return
        if len(self.pending) >= self.max_pending or self.pending_bytes + len(payload) > self.max_pending_bytes:
            self.on_slow(self)
            return
        self.pending.append((seq, payload))
        self.pending_bytes += len(payload)
        self.wake.set()

    def replay(self, since: int, until: int) -> None:
        """Send stored events ``since < seq <= until`` before anything queued; queued copies are dropped."""
        kept = deque((seq, p) for seq, p in self.pending if seq is None or seq > until)
        self.pending_bytes = sum(len(p) for _, p in kept)
        self.pending = kept
        self.replay_after, self.replay_until = since, until
        self.replay_generation += 1
        self.wake.set()

    async def send_loop(self, fetch: Callable[[int, int], list[tuple[int, bytes]]]) -> None:
        ws = self.ws
        while True:
            await self.wake.wait()
            self.wake.clear()
            while True:  # replay first, then the queue, then the newest overlays; re-checked after every send
                if self.replay_after is not None:
                    generation = self.replay_generation
                    rows = [r for r in fetch(self.replay_after, REPLAY_BATCH) if r[0] <= self.replay_until]
                    if not rows:
                        self.replay_after = None
                        continue
                    for seq, payload in rows:
                        await ws.send(payload, text=True)
                        self.sent += 1
                        if generation != self.replay_generation:
                            break  # a new resume arrived: start over from its cursor
                        self.replay_after = seq
                elif self.pending:
                    _, payload = self.pending.popleft()
                    self.pending_bytes -= len(payload)
                    await ws.send(payload, text=True)
                    self.sent += 1
                elif self.latest:
                    key = next(iter(self.latest))
                    await ws.send(self.latest.pop(key), text=True)
                    self.sent += 1
                else:
                    break


class WebSocketHub:
    def __init__(self, bus: Bus, host: str, port: int, token: str = "", max_clients: int = 16,
                 origins: tuple[str, ...] = (), connection_info: Callable[[], dict[str, Any]] | None = None,
                 max_message_bytes: int = 64 * 1024, max_pending: int = 512, rate: float = 20.0,
                 burst: float = 40.0, abuse_limit: int = 50) -> None:
        self.bus, self.host, self.requested_port = bus, host, port
        self.token = token.encode()
        self.max_clients, self.origins = max_clients, origins
        self.connection_info = connection_info or (lambda: {})
        self.max_message_bytes, self.max_pending = max_message_bytes, max_pending
        self.rate, self.burst, self.abuse_limit = rate, burst, abuse_limit
        self.clients: set[Client] = set()
        self.routes: dict[str, tuple[HttpRoute, bool]] = {}  # path -> (handler, needs token)
        self.prefix_routes: dict[str, tuple[HttpRoute, bool]] = {}  # "/media/" -> (handler, needs token)
        self.ws_routes: dict[str, Callable[[ServerConnection], Any]] = {UI_PATH: self._serve_ui}
        self.server: Server | None = None
        self.slow_closed = 0
        self.refused = Counter()
        bus.attach(self)
        bus.handle("resume", self._cmd_resume)
        bus.handle("ping", self._cmd_ping)

    # --- lifecycle ---
    async def start(self) -> None:
        self.server = await serve(
            self._dispatch, self.host, self.requested_port, process_request=self._process_request,
            max_size=self.max_message_bytes, ping_interval=20, ping_timeout=20, close_timeout=2,
            write_limit=64 * 1024, server_header=None,
        )

    @property
    def port(self) -> int:
        assert self.server is not None
        return next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close(close_connections=False)
        for client in list(self.clients):
            client.closing = True
            client.ws.close_timeout = SHUTDOWN_CLOSE_TIMEOUT  # a silent phone must not hold up the stop
            if client.sender:
                client.sender.cancel()
        await asyncio.gather(*(c.ws.close(CLOSE_GOING_AWAY, "device shutting down") for c in list(self.clients)),
                             return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), SHUTDOWN_CLOSE_TIMEOUT)

    # --- admission ---
    def authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        query = parse_qs(urlsplit(request.path).query)
        offered = query.get("token", [""])[0]
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            offered = header[7:].strip()
        return hmac.compare_digest(offered.encode(), self.token)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        route = self.routes.get(path) or self._prefix_route(path)
        if route is not None:
            handler, needs_token = route
            if needs_token and not self.authorised(request):
                return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "missing or wrong token")
            return handler(connection, request)
        if path not in self.ws_routes:
            return self._refuse(connection, http.HTTPStatus.NOT_FOUND, "no such path")
        if not self.authorised(request):
            return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "missing or wrong token")
        origin = request.headers.get("Origin")
        if self.origins and origin is not None and origin not in self.origins:
            return self._refuse(connection, http.HTTPStatus.FORBIDDEN, "origin not allowed")
        if len(self.clients) >= self.max_clients:
            return self._refuse(connection, http.HTTPStatus.SERVICE_UNAVAILABLE, "too many clients")
        return None

    def _refuse(self, connection: ServerConnection, status: http.HTTPStatus, reason: str) -> Response:
        self.refused[status.value] += 1
        return connection.respond(status, reason + "\n")

    def add_route(self, path: str, handler: HttpRoute, needs_token: bool = True) -> None:
        self.routes[path] = (handler, needs_token)

    def add_prefix_route(self, prefix: str, handler: HttpRoute, needs_token: bool = True) -> None:
        """Serve every path under ``prefix`` (which ends with ``/``; exact routes win). The handler gets the
        raw, still percent-encoded path and must validate the rest itself; it may return an awaitable
        Response (websockets awaits it), so file reads can run off the loop."""
        if not prefix.endswith("/"):
            raise ValueError("a prefix route ends with '/'")
        self.prefix_routes[prefix] = (handler, needs_token)

    def _prefix_route(self, path: str) -> tuple[HttpRoute, bool] | None:
        for prefix, route in self.prefix_routes.items():
            if path.startswith(prefix):
                return route
        return None

    @staticmethod
    def json_response(connection: ServerConnection, body: dict[str, Any], status: int = 200) -> Response:
        return binary_response(status, orjson.dumps(body), "application/json")

    # --- fan-out (Transport) ---
    def deliver(self, message: Message, payload: bytes) -> None:
        for client in tuple(self.clients):  # offer() may drop a slow client from the set
            client.offer(message, payload)

    def _too_slow(self, client: Client) -> None:
        if client.closing:
            return
        client.closing = True
        self.clients.discard(client)  # it gets nothing more, whatever the close handshake takes
        self.slow_closed += 1
        log.warning("closing slow client %s: %d events pending", client.ws.remote_address, len(client.pending))
        if client.sender:
            client.sender.cancel()
        client.pending.clear()
        client.pending_bytes = 0
        client.latest.clear()
        # What is already in the socket buffers (bounded by SO_SNDBUF + write_limit) still reaches a client
        # that wakes up, then the 1013; give it time to read that before the connection is aborted.
        client.ws.close_timeout = SLOW_CLOSE_TIMEOUT
        asyncio.get_running_loop().create_task(
            client.ws.close(CLOSE_TRY_AGAIN, "too slow to take events; reconnect with ?since=<last seq>"))

    # --- connections ---
    async def _dispatch(self, ws: ServerConnection) -> None:
        await self.ws_routes[urlsplit(ws.request.path).path](ws)

    async def _serve_ui(self, ws: ServerConnection) -> None:
        client = Client(ws, self.max_pending, self._too_slow)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            # A fixed kernel send buffer bounds what one stalled client can pin in memory
            # (Linux would otherwise grow it to megabytes); events beyond it wait in `pending`.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
        # Registered before the first await: events published while the connection message is on its way
        # wait in the client's queue (its sender starts after that message) instead of being missed.
        self.clients.add(client)
        try:
            await ws.send(messages.encode(messages.connection(self.connection_info()), self.bus.device_id),
                          text=True)
        except ConnectionClosed:
            self.clients.discard(client)
            return
        query = parse_qs(urlsplit(ws.request.path).query)
        if "since" in query:
            try:
                since = int(query["since"][0])
                if since < 0:
                    raise ValueError
                self._start_replay(client, since)
            except ValueError:
                client.enqueue(self._encode(messages.error("invalid_field", "'since' must be an integer >= 0")))
        client.sender = asyncio.create_task(client.send_loop(self.bus.store.events))
        client.wake.set()
        limiter = RateLimiter(self.rate, self.burst)
        violations = 0
        try:
            async for raw in ws:
                if not limiter.allow():
                    violations += 1
                    if violations >= self.abuse_limit:
                        await ws.close(CLOSE_POLICY, "message rate limit exceeded")
                        break
                    client.enqueue(self._encode(messages.error(
                        "rate_limited", f"more than {self.rate:g} messages per second; slow down")))
                    continue
                client.enqueue(self._encode(await self.handle_raw(raw, client)))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            client.closing = True
            if client.sender:
                client.sender.cancel()

    async def handle_raw(self, raw: bytes | str, client: Client | None) -> Message:
        """Validate and run one inbound message; never raises (errors become ``error`` replies)."""
        try:
            command = parse_command(raw)
        except CommandError as exc:
            return messages.error(exc.code, exc.message, exc.request_id)
        except Exception as exc:  # defensive: the handler must never take the connection down
            log.exception("inbound message handling failed")
            return messages.error("internal", str(exc))
        return await self.bus.dispatch(command, {"transport": "ws", "client": client})

    def _encode(self, message: Message) -> bytes:
        return messages.encode(message, self.bus.device_id)

    def _start_replay(self, client: Client, since: int) -> None:
        """Queue stored events after ``since``; called on the loop with no await, so no event slips by."""
        store = self.bus.store
        first = store.first_seq()
        if first is not None and since + 1 < first:
            client.enqueue(self._encode(Message(MessageType.GAP, {
                "requested_since": since, "resumes_from": first,
                "reason": "older events were removed by retention"})))
        elif first is None and since < store.last_seq:
            client.enqueue(self._encode(Message(MessageType.GAP, {
                "requested_since": since, "resumes_from": store.last_seq + 1, "reason": "event log is empty"})))
        client.replay(since, store.last_seq)

    async def _cmd_resume(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        client = context.get("client")
        if not isinstance(client, Client):
            raise CommandError("unsupported", "resume is a WebSocket command")
        self._start_replay(client, command.args["since"])
        return {"since": command.args["since"], "until": client.replay_until}

    async def _cmd_ping(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "last_seq": self.bus.store.last_seq}
