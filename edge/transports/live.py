"""The live view: ``ws://HOST:PORT/ws/video`` sends binary JPEG frames, newest only, to each viewer.

Owns the viewers (event-loop thread). The media thread encodes one JPEG per live tick for all
viewers together and only while :attr:`LiveView.watching` is true; with nobody watching nothing is
encoded at all. A viewer connected with ``?meta=1`` gets before each JPEG a text message
``{"type": "frame", "frame_ts", "width", "height"}`` (``LiveFrame`` in edge/protocol), encoded once per frame,
so the tablet can draw the overlay of that very frame; other viewers get the JPEGs alone, as before.
Each viewer keeps just the newest frame, so a slow tablet skips frames instead of
building a backlog, and one slow viewer never delays another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from edge.web.wsconn import Closed, WsConn

log = logging.getLogger(__name__)

LIVE_PATH = "/ws/video"
MAX_VIEWERS = 8  # each costs one send per frame; more tablets than this watching one camera is a mistake


class Viewer:
    def __init__(self, ws: WsConn, meta: bool = False) -> None:
        self.ws = ws
        self.meta = meta
        self.latest: bytes | None = None
        self.latest_meta: bytes | None = None
        self.wake = asyncio.Event()
        self.sent = 0
        self.skipped = 0

    def offer(self, jpeg: bytes, meta: bytes | None) -> None:
        if self.latest is not None:
            self.skipped += 1
        self.latest, self.latest_meta = jpeg, meta
        self.wake.set()

    async def send_loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            frame, meta, self.latest = self.latest, self.latest_meta, None
            if frame is not None:
                if self.meta and meta is not None:
                    await self.ws.send(meta, text=True)
                await self.ws.send(frame, text=False)
                self.sent += 1


class LiveView:
    path = LIVE_PATH

    def __init__(self) -> None:
        self.viewers: set[Viewer] = set()
        self.frames_sent = 0
        self.frames_skipped = 0
        self.connections = 0
        self.refused = 0

    @property
    def watching(self) -> bool:
        """Read by the media thread; a stale read costs at most one encode."""
        return bool(self.viewers)

    def offer(self, jpeg: bytes, frame_ts: float | None = None, width: int = 0, height: int = 0) -> None:
        """Loop thread: hand the newest encoded frame (captured at wall time ``frame_ts``) to every viewer."""
        meta = None
        if frame_ts is not None and any(v.meta for v in self.viewers):
            meta = orjson.dumps({"type": "frame", "frame_ts": round(frame_ts, 3), "width": width, "height": height})
        for viewer in self.viewers:
            viewer.offer(jpeg, meta)

    async def serve(self, ws: WsConn) -> None:
        """Handler for the web server's ``/ws/video`` (admission already checked token and client limit)."""
        if len(self.viewers) >= MAX_VIEWERS:
            self.refused += 1
            await ws.close(1013, f"at most {MAX_VIEWERS} live viewers; try again later")
            return
        viewer = Viewer(ws, ws.query.get("meta", [""])[0] == "1")
        self.viewers.add(viewer)
        self.connections += 1
        sender = asyncio.create_task(viewer.send_loop())
        try:
            async for _ in ws:  # viewers send nothing we act on; reading notices the close
                pass
        except Closed:
            pass
        finally:
            self.viewers.discard(viewer)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Closed):
                await sender
            self.frames_sent += viewer.sent
            self.frames_skipped += viewer.skipped

    async def close_all(self) -> None:
        await asyncio.gather(*(v.ws.close(1001, "device shutting down") for v in list(self.viewers)),
                             return_exceptions=True)

    def telemetry(self) -> dict[str, int]:
        return {"viewers": len(self.viewers), "connections": self.connections, "refused": self.refused,
                "frames_sent": self.frames_sent + sum(v.sent for v in self.viewers),
                "frames_skipped": self.frames_skipped + sum(v.skipped for v in self.viewers)}
