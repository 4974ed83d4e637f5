"""The household's dog as the camera sees it: the size and shape of its boxes, learned from confirmed tracks.

Pure logic, no I/O and no clock of its own. Every real ``dog`` box on a confirmed track (at most one
per ``interval`` seconds, so a long visit does not crowd out the others) adds its area and its aspect
(height / width) in log scale; :meth:`HouseholdDog.fits` then says whether a box is the size and shape
this dog shows here. The ranges are the learned 5-95 % spread widened by ``area_margin`` and
``aspect_margin`` on each side, because a dog that curls up or lies flat is smaller and flatter than
the dog that walked in; below ``min_samples`` nothing fits (no guess before the dog was seen).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np

Box = tuple[float, float, float, float]


@dataclasses.dataclass
class HouseholdDog:
    min_samples: int = 10
    interval: float = 0.5          # seconds between two samples
    area_margin: float = 2.0       # a box may be this many times smaller or larger than the learned spread
    aspect_margin: float = 1.6     # and this many times flatter or taller
    samples: deque[tuple[float, float]] = dataclasses.field(default_factory=lambda: deque(maxlen=2000))
    _last: float = -math.inf
    _ranges: tuple[float, float, float, float] | None = None

    def learn(self, box: Box, now: float) -> None:
        width, height = box[2] - box[0], box[3] - box[1]
        if width <= 0 or height <= 0 or now - self._last < self.interval:
            return
        self._last = now
        self.samples.append((math.log(width * height), math.log(height / width)))
        self._ranges = None

    def ranges(self) -> tuple[float, float, float, float] | None:
        """(low, high) log area, (low, high) log aspect; None until ``min_samples`` were learned."""
        if len(self.samples) < self.min_samples:
            return None
        if self._ranges is None:
            data = np.asarray(self.samples)
            low, high = np.percentile(data, 5, axis=0), np.percentile(data, 95, axis=0)
            area, aspect = math.log(self.area_margin), math.log(self.aspect_margin)
            self._ranges = (float(low[0]) - area, float(high[0]) + area, float(low[1]) - aspect,
                            float(high[1]) + aspect)
        return self._ranges

    def fits(self, box: Box) -> bool:
        ranges = self.ranges()
        width, height = box[2] - box[0], box[3] - box[1]
        if ranges is None or width <= 0 or height <= 0:
            return False
        area, aspect = math.log(width * height), math.log(height / width)
        return ranges[0] <= area <= ranges[1] and ranges[2] <= aspect <= ranges[3]
