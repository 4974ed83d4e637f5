"""What flows from the vision stages to every feature: a captured :class:`Frame`, a detector's
:class:`Detection` and a tracked dog (:class:`Track`). Plain data, no behaviour beyond geometry."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(slots=True)
class Frame:
    image: np.ndarray
    index: int
    captured: float  # clock.monotonic() when read (edge.util.clock: the system's, or a test clock)
    wall: float      # clock.now() when read
    motion: Any = None  # what the capture thread's ``analyse`` hook made of the image (motion gating)


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """A box in source-frame pixels (x1, y1, x2, y2)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    label: str

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclasses.dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    confirmed: bool = False
    best_score: float = 0.0
    misses: int = 0

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)
