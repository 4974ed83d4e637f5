"""WebSocket hub: ``ws://HOST:PORT/ws/ui`` for tablets, on the device's web server (:mod:`edge.web`).

Owns per-client delivery and inbound command reading; the web server admits the connection (path,
token or session cookie, origin, and this hub's client limit). Delivery per client: events and
replies go through a bounded queue and are never dropped (a client that lets it fill is closed with
1013 and told to resume with ``since``); overlays and telemetry keep only the newest payload per
kind, so a slow client gets the latest, not a backlog. The bytes sent are the bus's encoded payload,
shared by all clients. A client connecting with ``?since=SEQ`` (or sending ``resume``) first gets
every stored event after SEQ, then the live stream, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from edge.core.bus import Bus
from edge.core.commands import Command, CommandError, parse_command
from edge.protocol import messages
from edge.protocol.messages import Message, MessageType
from edge.util.ratelimit import RateLimiter
from edge.web.server import WebServer
from edge.web.wsconn import Closed, WsConn

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

class Client:
    """One connected tablet: its queues, replay cursor and sender task."""

    def __init__(self, ws: WsConn, max_pending: int, on_slow: Callable[[Client], None],
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

    async def send_loop(self, fetch: Callable[[int, int], list[tuple[int, bytes]]],
                        gap: Callable[[int, int], bytes] | None = None) -> None:
        """``gap(after, next)`` encodes the ``gap`` message sent when the log holds no seq between the two."""
        with contextlib.suppress(Closed):  # the reader sees the close too and cleans up
            await self._send_loop(fetch, gap)

    async def _send_loop(self, fetch: Callable[[int, int], list[tuple[int, bytes]]],
                         gap: Callable[[int, int], bytes] | None) -> None:
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
                        if gap is not None and seq > self.replay_after + 1:  # never silently skip a seq
                            await ws.send(gap(self.replay_after, seq), text=True)
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
    shows_peers = True  # the other devices' events (Bus.relay) reach the tablets too, with their own device_id

    def __init__(self, bus: Bus, host: str = "127.0.0.1", port: int = 0, token: str = "", max_clients: int = 16,
                 origins: tuple[str, ...] = (), connection_info: Callable[[], dict[str, Any]] | None = None,
                 max_message_bytes: int = 64 * 1024, max_pending: int = 512, rate: float = 20.0,
                 burst: float = 40.0, abuse_limit: int = 50, web: WebServer | None = None) -> None:
        self.bus = bus
        # The device passes its web server; a hub built alone (tests) gets one of its own.
        self.web = web or WebServer(host, port, token, origins, max_message_bytes)
        self.max_clients = max_clients
        self.connection_info = connection_info or (lambda: {})
        self.max_pending = max_pending
        self.rate, self.burst, self.abuse_limit = rate, burst, abuse_limit
        self.clients: set[Client] = set()
        self.slow_closed = 0
        self.web.ws_admit = self._admit
        self.web.add_websocket(UI_PATH, self._serve_ui)
        bus.attach(self)
        bus.handle("resume", self._cmd_resume)
        bus.handle("ping", self._cmd_ping)

    # --- lifecycle ---
    @property
    def port(self) -> int:
        return self.web.port

    async def stop(self) -> None:
        """Close every tablet with 1001 (quickly: a silent phone must not hold up the stop)."""
        for client in list(self.clients):
            client.closing = True
            client.ws.close_timeout = SHUTDOWN_CLOSE_TIMEOUT
            if client.sender:
                client.sender.cancel()
        await asyncio.gather(*(c.ws.close(CLOSE_GOING_AWAY, "device shutting down") for c in list(self.clients)),
                             return_exceptions=True)

    def _admit(self) -> str | None:
        """The client limit, for every WebSocket path (the web server answers 503 with this reason)."""
        return "too many clients" if len(self.clients) >= self.max_clients else None

    # --- fan-out (Transport) ---
    def deliver(self, message: Message, payload: bytes) -> None:
        if message.type is MessageType.RETAINED:
            return  # clients get retained state in the ``connection`` message and in replies (get_zones …)
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
    async def _serve_ui(self, ws: WsConn) -> None:
        client = Client(ws, self.max_pending, self._too_slow)
        sock = ws.socket()
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
        except Closed:
            self.clients.discard(client)
            return
        query = ws.query
        if "since" in query:
            try:
                since = int(query["since"][0])
                if since < 0:
                    raise ValueError
                self._start_replay(client, since)
            except ValueError:
                client.enqueue(self._encode(messages.error("invalid_field", "'since' must be an integer >= 0")))
        client.sender = asyncio.create_task(client.send_loop(self.bus.store.events, self._gap))
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
        except Closed:
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
            return messages.error(exc.code, exc.message, exc.request_id, exc.extra)
        except Exception as exc:  # defensive: the handler must never take the connection down
            log.exception("inbound message handling failed")
            return messages.error("internal", str(exc))
        return await self.bus.dispatch(command, {"transport": "ws", "client": client})

    def _encode(self, message: Message) -> bytes:
        return messages.encode(message, self.bus.device_id)

    def _gap(self, after: int, resumes_from: int) -> bytes:
        missing = f"{after + 1}" if resumes_from == after + 2 else f"{after + 1}-{resumes_from - 1}"
        return self._encode(Message(MessageType.GAP, {
            "requested_since": after, "resumes_from": resumes_from,
            "reason": f"events {missing} are not in the event log (removed or lost)"}))

    def _start_replay(self, client: Client, since: int) -> None:
        """Queue stored events after ``since``; called on the loop with no await, so no event slips by."""
        store = self.bus.store
        first = store.first_seq()
        if first is not None and since + 1 < first:
            client.enqueue(self._encode(Message(MessageType.GAP, {
                "requested_since": since, "resumes_from": first,
                "reason": "older events were removed by retention"})))
            since = first - 1  # said once: the replay starts at the first stored event
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
