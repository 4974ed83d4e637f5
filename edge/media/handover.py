"""What crosses threads in the media feature: a frame's media view, a snapshot request, the one-slot hand-over.

:class:`FrameInfo` is what the media thread needs of a frame (the image, its times, the boxes to draw, the
dogs to pick best frames of); :class:`LatestInfo` hands the newest one over from the inference thread
(newest wins); :class:`SnapshotRequest` travels from the loop to the media thread and its result back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Protocol

import numpy as np

from edge.media import render
from edge.protocol.messages import Message
from edge.util import clock
from edge.web.wsconn import WsConn


@dataclasses.dataclass(frozen=True, slots=True)
class FrameInfo:
    image: np.ndarray
    captured: float
    wall: float
    boxes: tuple[render.Box, ...]
    dogs: tuple[tuple[int, float, float, tuple[float, float]], ...]  # (track_id, first_seen, score, centre)


@dataclasses.dataclass(slots=True)
class SnapshotRequest:
    seq: int | None
    reason: str                     # event type, or "request"
    at: float                       # monotonic moment it illustrates
    track_id: int | None = None     # a new dog: its best frame is wanted
    future: asyncio.Future | None = None
    made: float = dataclasses.field(default_factory=clock.monotonic)


class LatestInfo:
    """One-slot hand-over from the inference thread: the media thread takes the newest frame only."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._info: FrameInfo | None = None
        self.dropped = 0

    def put(self, info: FrameInfo) -> None:
        with self._cond:
            if self._info is not None:
                self.dropped += 1
            self._info = info
            self._cond.notify()

    def take(self, timeout: float) -> FrameInfo | None:
        with self._cond:
            if self._info is None:
                self._cond.wait(timeout)
            info, self._info = self._info, None
            return info


def mono_of(message: Message) -> float:
    """The monotonic moment a message describes (its frame's capture time, else its wall ``ts``)."""
    if message.captured is not None:
        return message.captured
    return clock.monotonic() - max(0.0, clock.now() - message.ts)


class LiveSink(Protocol):
    """The live view as the media thread feeds it (``edge.transports.live.LiveView``): the device builds the
    transport and hands it in, so media imports no transport."""

    path: str

    @property
    def watching(self) -> bool: ...

    def offer(self, jpeg: bytes, frame_ts: float | None = None, width: int = 0, height: int = 0) -> None: ...

    async def serve(self, ws: WsConn) -> None: ...

    async def close_all(self) -> None: ...

    def telemetry(self) -> dict[str, int]: ...
