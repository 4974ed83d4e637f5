"""A stand-in for the device side of "one home, many devices" (issue 21), for the page's browser tests.

:class:`HomeRelay` sits in front of a real device process ("this device", the one the tablet opened) and
does for the page what that device does once it relays its peers, by the published contract, using
other real device processes as the peers:

* every plain HTTP GET and WebSocket goes to this device unchanged;
* ``get_peers`` on ``/ws/ui`` is answered with the peers' records, and ``{"type": "peers"}`` is pushed to
  every page on each change (a peer's state from its ``get_state``, polled every second; ``online``
  false as soon as its WebSocket drops, true again when it answers);
* a command with ``device`` naming a peer goes to that peer (``device`` removed) and its reply comes back
  under the page's request id; every event of a peer reaches every page live, with the peer's
  ``device_id`` and seq, as the broker relay delivers them;
* ``GET /peer/<id>/snapshot.jpg``, ``/peer/<id>/media/<media_id>`` and ``/peer/<id>/ws/video`` are the
  peer's own paths.

The page cannot tell it from the real thing, so the same tests pass against two real devices once the
device side lands (``test_app_home`` says how). :meth:`HomeRelay.block_pages` refuses and closes the
pages' ``/ws/ui`` for a while, a network blip the page must resume across.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from edge.protocol.messages import PROTOCOL_VERSION

KEPT_HEADERS = ("Content-Type", "Cache-Control", "ETag", "Content-Range", "Accept-Ranges", "Location")


@dataclass
class Peer:
    device_id: str
    name: str
    http_url: str              # http://host:port of the peer's own server
    online: bool | None = None
    last_seen: float | None = None
    state: dict[str, Any] = field(default_factory=dict)
    state_raw: dict[str, Any] = field(default_factory=dict)   # the peer's own get_state keys, merged
    health: str | None = None
    version: str | None = None
    ws: Any = None
    pending: dict[str, tuple[ServerConnection, Any]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "name": self.name, "version": self.version, "urls": [self.http_url],
                "online": self.online, "last_seen": self.last_seen, "state": self.state, "health": self.health}


def _peer_state(state: dict[str, Any]) -> dict[str, Any]:
    return {"dog_present": state.get("presence"), "posture": state.get("posture"),
            "zones": state.get("zones_occupied") or [], "absent_since": state.get("absent_since"),
            "present_since": state.get("present_since")}


class HomeRelay:
    def __init__(self, device_url: str, device_id: str, peers: list[Peer]) -> None:
        self.device_url, self.device_id = device_url, device_id
        self.peers = {p.device_id: p for p in peers}
        self.pages: set[ServerConnection] = set()
        self.blocked = False
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.relayed: list[dict[str, Any]] = []    # commands relayed to a peer, as the page sent them
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle ---
    def start(self) -> HomeRelay:
        self._thread.start()
        assert self._ready.wait(10), "the stand-in relay did not start"
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._ws, "127.0.0.1", 0, process_request=self._http, max_size=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            tasks = [asyncio.create_task(self._peer_link(p)) for p in self.peers.values()]
            self._ready.set()
            await self._stop.wait()
            for t in tasks:
                t.cancel()

    def block_pages(self, blocked: bool) -> None:
        """While blocked, the pages' /ws/ui is closed and refused (the page sees a network blip)."""
        async def go() -> None:
            self.blocked = blocked
            for ws in list(self.pages):
                await ws.close(1001, "network blip")
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    # --- HTTP ---
    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if self.blocked and path.startswith("/ws/ui"):
                return connection.respond(503, "blocked by the test\n")
            return None
        target = self._target(path)
        if target is None:
            return connection.respond(404, "unknown peer\n")
        return await asyncio.to_thread(self._fetch, target)

    def _target(self, path: str) -> str | None:
        """The URL a path of this device's origin stands for (a peer's own path under /peer/<id>/)."""
        if path.startswith("/peer/"):
            peer_id, _, rest = path[len("/peer/"):].partition("/")
            peer = self.peers.get(peer_id)
            return None if peer is None else f"{peer.http_url}/{rest}"
        return self.device_url + path

    @staticmethod
    def _fetch(url: str) -> Response:
        try:
            with urllib.request.urlopen(url, timeout=15) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        except OSError as e:
            status, headers, body = 502, {"Content-Type": "text/plain"}, f"peer unreachable: {e}\n".encode()
        out = Headers({k: headers[k] for k in KEPT_HEADERS if headers.get(k)})
        out["Content-Length"] = str(len(body))
        out["Connection"] = "close"
        return Response(status, "", out, body)

    # --- WebSockets ---
    async def _ws(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        if path.startswith("/ws/ui"):
            await self._ui(ws, path)
        else:
            target = self._target(path)
            if target is None:
                await ws.close(4404, "unknown peer")
                return
            async with connect("ws" + target[len("http"):], max_size=None) as up:
                await _pipe(ws, up)

    async def _ui(self, ws: ServerConnection, path: str) -> None:
        async with connect(f"ws{self.device_url[len('http'):]}{path}", max_size=None) as up:
            self.pages.add(ws)
            try:
                down = asyncio.create_task(_forward(up, ws))
                async for raw in ws:
                    await self._from_page(ws, up, raw)
                down.cancel()
            finally:
                self.pages.discard(ws)

    async def _from_page(self, ws: ServerConnection, up: Any, raw: str | bytes) -> None:
        m = orjson.loads(raw)
        device = m.get("device") if isinstance(m, dict) else None
        if isinstance(m, dict) and m.get("type") == "get_peers":
            await ws.send(self._envelope("reply", {"id": m.get("id"), "type": "get_peers", "peers": self._records()}))
        elif device in self.peers and device != self.device_id:
            peer = self.peers[device]
            self.relayed.append(m)
            if peer.ws is None:
                await ws.send(self._envelope("error", {"id": m.get("id"), "code": "unavailable",
                                                       "message": f"{device} is offline"}))
                return
            key = f"relay-{time.monotonic_ns()}"
            peer.pending[key] = (ws, m.get("id"))
            await peer.ws.send(_text({k: v for k, v in m.items() if k != "device"} | {"id": key}))
        else:
            if device == self.device_id:
                m.pop("device")
                raw = _text(m)
            await up.send(raw)

    def _envelope(self, kind: str, data: dict[str, Any]) -> str:
        return _text({"v": PROTOCOL_VERSION, "type": kind, "device_id": self.device_id,
                      "ts": round(time.time(), 3), "data": data})

    def _records(self) -> list[dict[str, Any]]:
        return [p.record() for p in self.peers.values()]

    async def _push_peers(self) -> None:
        message = self._envelope("peers", {"peers": self._records()})
        for ws in list(self.pages):
            with contextlib.suppress(Exception):
                await ws.send(message)

    async def _peer_link(self, peer: Peer) -> None:
        """Stay connected to a peer: its events to every page, its replies to the page that asked, its state
        polled; offline as soon as the connection drops."""
        url = f"ws{peer.http_url[len('http'):]}/ws/ui"
        while True:
            try:
                async with connect(url, open_timeout=3, max_size=None) as pws:
                    peer.ws = pws
                    poll = asyncio.create_task(_poll_state(pws))
                    try:
                        async for raw in pws:
                            await self._from_peer(peer, orjson.loads(raw), raw)
                    finally:
                        poll.cancel()
            except Exception:  # noqa: BLE001 - refused, reset, timed out: the peer is offline
                pass
            peer.ws = None
            if peer.online is not False:
                peer.online, peer.health = False, None
                await self._push_peers()
            await asyncio.sleep(0.5)

    async def _from_peer(self, peer: Peer, m: dict[str, Any], raw: str | bytes) -> None:
        kind, data = m.get("type"), m.get("data") or {}
        peer.last_seen = time.time()
        if kind == "connection":
            peer.version, peer.online = data.get("software_version"), True
            self._learn_state(peer, data.get("state") or {})
            await self._push_peers()
        elif kind == "event":
            for ws in list(self.pages):
                with contextlib.suppress(Exception):
                    await ws.send(raw)
        elif kind in ("reply", "error") and data.get("id") == "standin-state":
            if kind == "reply" and self._learn_state(peer, data.get("state") or {}):
                await self._push_peers()
        elif kind in ("reply", "error") and data.get("id") in peer.pending:
            ws, page_id = peer.pending.pop(data["id"])
            with contextlib.suppress(Exception):
                await ws.send(_text(m | {"data": data | {"id": page_id}}))

    @staticmethod
    def _learn_state(peer: Peer, state: dict[str, Any]) -> bool:
        peer.state_raw = {**peer.state_raw, **state}
        new = _peer_state(peer.state_raw)
        health = "degraded" if peer.state_raw.get("camera_online") is False else "ok"
        changed = new != peer.state or health != peer.health
        peer.state, peer.health = new, health
        return changed


def _text(message: dict[str, Any]) -> str:
    """JSON as a text frame (the page and the devices take JSON in text frames only)."""
    return orjson.dumps(message).decode()


async def _poll_state(ws: Any) -> None:
    while True:
        await ws.send(_text({"type": "get_state", "id": "standin-state"}))
        await asyncio.sleep(1.0)


async def _forward(src: Any, dst: Any) -> None:
    with contextlib.suppress(Exception):
        async for message in src:
            await dst.send(message)
    with contextlib.suppress(Exception):
        await dst.close()


async def _pipe(a: Any, b: Any) -> None:
    tasks = [asyncio.create_task(_forward(a, b)), asyncio.create_task(_forward(b, a))]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()


@contextlib.contextmanager
def home_relay(device_url: str, device_id: str, peers: list[Peer]) -> Iterator[HomeRelay]:
    relay = HomeRelay(device_url, device_id, peers).start()
    try:
        yield relay
    finally:
        relay.stop()
