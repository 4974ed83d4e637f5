"""The pre-roll ring buffer: already-encoded JPEG frames of the last few seconds, bounded twice.

Pure data structure, no I/O, no clock of its own (every frame carries its monotonic and wall time).
It holds at most ``max_frames`` frames *and* at most ``max_bytes`` of JPEG data, dropping the oldest
first, so its memory is known whatever the camera resolution: a frame that alone exceeds the byte
bound is refused (counted in ``refused``) rather than emptying the ring.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class EncodedFrame:
    jpeg: bytes
    captured: float   # clock.monotonic() of capture
    wall: float       # clock.now() of capture
    width: int
    height: int


class FrameRing:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("the ring needs room for at least one frame")
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self._frames: deque[EncodedFrame] = deque()
        self.bytes = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, frame: EncodedFrame) -> bool:
        size = len(frame.jpeg)
        if size > self.max_bytes:
            self.refused += 1
            return False
        self._frames.append(frame)
        self.bytes += size
        while len(self._frames) > self.max_frames or self.bytes > self.max_bytes:
            self.bytes -= len(self._frames.popleft().jpeg)
        return True

    def since(self, captured: float) -> list[EncodedFrame]:
        """Frames captured at or after ``captured`` (monotonic), oldest first."""
        return [f for f in self._frames if f.captured >= captured]

    def newest(self) -> EncodedFrame | None:
        return self._frames[-1] if self._frames else None

    def span(self) -> float:
        """Seconds between the oldest and newest frame held."""
        return self._frames[-1].captured - self._frames[0].captured if len(self._frames) > 1 else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    captured: float      # clock.monotonic() of the first sample
    rate: int

    @property
    def end(self) -> float:
        return self.captured + len(self.samples) / self.rate


class AudioRing:
    """The last ``seconds`` of microphone chunks beside the frame ring (the clip's sound pre-roll).

    Filled by the audio thread, read by the media thread: a lock guards the deque (both sides only
    append or copy references, so it is held for microseconds).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._chunks: deque[AudioChunk] = deque()
        self._lock = threading.Lock()

    def add(self, chunk: AudioChunk) -> None:
        with self._lock:
            self._chunks.append(chunk)
            while self._chunks and self._chunks[0].end < chunk.end - self.seconds:
                self._chunks.popleft()

    def since(self, captured: float) -> list[AudioChunk]:
        """Chunks that end after ``captured`` (monotonic), oldest first."""
        with self._lock:
            return [c for c in self._chunks if c.end > captured]

    def __len__(self) -> int:
        return len(self._chunks)
