"""Another device's pictures through this one: ``/peer/{id}/snapshot.jpg``, ``/peer/{id}/media/{media_id}``
and ``/peer/{id}/ws/video``, so a tablet talks to one origin and signs in once.

Owns the HTTP and WebSocket relay to a verified peer (``lookup`` answers None for anyone else: 404).
The peer is reached at the base URLs its signed ``info`` names, first that answers, with the token the
home secret derives (:func:`edge.util.homesig.peer_token`), which the peer takes like its own. Media
is streamed in chunks (a byte range asked for is passed on, and the peer's 206/416 and headers come
back); the live view relays the peer's ``/ws/video?meta=1`` messages as they come (its viewer keeps the
newest frame only, so a slow tablet makes the peer skip frames, not this device buffer them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from edge.web.server import WebHost
from edge.web.wsconn import Closed, WsConn

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
MEDIA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PASSED_HEADERS = ("content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified",
                  "cache-control")


class KnownPeer(Protocol):
    device_id: str
    urls: list[str]


class PeerProxy:
    def __init__(self, web: WebHost, lookup: Callable[[str], KnownPeer | None], token: str) -> None:
        self.lookup, self.token = lookup, token
        self.requests = 0
        self.failures = 0
        self.live_frames = 0
        web.add_route("/peer/{peer_id}/snapshot.jpg", self._snapshot)
        web.add_route("/peer/{peer_id}/media/{media_id}", self._media)
        web.add_websocket("/peer/{peer_id}/ws/video", self._video)

    def _peer(self, peer_id: str) -> KnownPeer | None:
        peer = self.lookup(peer_id)
        return peer if peer is not None and peer.urls else None

    def _open(self, peer: KnownPeer, path: str, headers: dict[str, str]) -> Any:
        """The peer's response (any thread): the first of its URLs that answers; HTTP errors are answers too."""
        failure: Exception | None = None
        for base in peer.urls:
            request = urllib.request.Request(base.rstrip("/") + path,
                                             headers={**headers, "Authorization": f"Bearer {self.token}"})
            try:
                return urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT)
            except urllib.error.HTTPError as exc:
                return exc
            except OSError as exc:
                failure = exc
        raise ConnectionError(f"{peer.device_id} did not answer at {', '.join(peer.urls)}: {failure}")

    async def _fetch(self, request: Request, path: str) -> Response:
        self.requests += 1
        peer = self._peer(request.path_params["peer_id"])
        if peer is None:
            return PlainTextResponse("no such peer\n", 404, {"Cache-Control": "no-store"})
        asked = {k: v for k, v in request.headers.items() if k in ("range", "if-none-match", "if-range")}
        try:
            upstream = await asyncio.to_thread(self._open, peer, path, asked)
        except ConnectionError as exc:
            self.failures += 1
            return PlainTextResponse(f"{exc}\n", 502, {"Cache-Control": "no-store"})
        headers = {k: v for k, v in upstream.headers.items() if k.lower() in PASSED_HEADERS}
        if request.method == "HEAD":
            upstream.close()
            return Response(None, upstream.status, headers)
        return StreamingResponse(_chunks(upstream), upstream.status, headers)

    async def _snapshot(self, request: Request) -> Response:
        return await self._fetch(request, "/snapshot.jpg")

    async def _media(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        if MEDIA_ID.fullmatch(media_id) is None:
            return PlainTextResponse("no such media\n", 404)
        return await self._fetch(request, f"/media/{media_id}")

    async def _video(self, ws: WsConn) -> None:
        peer = self._peer(ws.path.split("/")[2])
        if peer is None:
            await ws.close(4404, "no such peer")
            return
        for base in peer.urls:
            url = re.sub(r"^http", "ws", base.rstrip("/")) + "/ws/video?meta=1"
            try:
                async with connect(url, additional_headers={"Authorization": f"Bearer {self.token}"},
                                   open_timeout=CONNECT_TIMEOUT, max_size=None, compression=None) as upstream:
                    await self._pipe(upstream, ws)
                    return
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                log.info("live view of %s at %s: %s", peer.device_id, url, exc)
        self.failures += 1
        await ws.close(1011, f"{peer.device_id} did not answer")

    async def _pipe(self, upstream: Any, ws: WsConn) -> None:
        async def down() -> None:
            with contextlib.suppress(ConnectionClosed, Closed):
                async for message in upstream:
                    await ws.send(message, text=isinstance(message, str))
                    self.live_frames += isinstance(message, bytes)

        async def up() -> None:
            with contextlib.suppress(Closed):
                async for _ in ws:  # the viewer sends nothing we act on; reading notices the close
                    pass

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def telemetry(self) -> dict[str, int]:
        return {"requests": self.requests, "failures": self.failures, "live_frames": self.live_frames}


async def _chunks(upstream: Any) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await asyncio.to_thread(upstream.read, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        upstream.close()
