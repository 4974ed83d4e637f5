"""Where the dog has been (a coarse heat map) and how much it moves (activity level).

Pure logic, no I/O and no clock of its own (callers pass monotonic ``now`` and wall time).

:class:`HeatMap` adds, for each frame with a dog, the time since the previous frame (capped, so a
stalled camera adds nothing odd) to the grid cell under the dog's ground point. Memory is bounded:
one ``rows × cols`` float32 grid per minute in a ring of ``window_minutes`` buckets; the map is the
sum of the ring, so each cell reads as *seconds spent there in the window*.

:class:`ActivityMeter` measures movement without counting detector jitter: the ground point is
averaged over each whole second, and the distance between consecutive seconds' means (normalised
frame units, x by width and y by height) counts only above ``deadband``. ``movement_per_minute`` is
the sum over the last 60 s; a second whose movement counted is an *active second* (fed to analytics).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from edge.protocol.zones import Point

COLS, ROWS = 32, 18
MAX_STEP_SECONDS = 1.0
# movement_per_minute (frame widths/heights moved per minute) -> level
LEVELS = ((0.05, "resting"), (0.3, "low"), (1.5, "moderate"), (math.inf, "high"))


def activity_level(movement_per_minute: float) -> str:
    return next(name for limit, name in LEVELS if movement_per_minute < limit)


class HeatMap:
    def __init__(self, cols: int = COLS, rows: int = ROWS, window_minutes: int = 60) -> None:
        self.cols, self.rows = cols, rows
        self.window_minutes = window_minutes
        self.buckets: deque[tuple[int, np.ndarray]] = deque(maxlen=window_minutes)
        self.last_sample: float | None = None

    def cell(self, point: Point) -> tuple[int, int]:
        col = min(int(point[0] * self.cols), self.cols - 1)
        row = min(int(point[1] * self.rows), self.rows - 1)
        return row, col

    def add(self, points: list[Point], now: float) -> None:
        """One frame: ``points`` are the dogs' ground points (normalised); empty when none was seen."""
        step = 0.0 if self.last_sample is None else min(max(now - self.last_sample, 0.0), MAX_STEP_SECONDS)
        self.last_sample = now
        if not points or step <= 0:
            return
        grid = self._bucket(int(now // 60))
        for point in points:
            grid[self.cell(point)] += step

    def _bucket(self, minute: int) -> np.ndarray:
        if not self.buckets or self.buckets[-1][0] != minute:
            self.buckets.append((minute, np.zeros((self.rows, self.cols), np.float32)))
        return self.buckets[-1][1]

    def grid(self, now: float) -> np.ndarray:
        oldest = int(now // 60) - self.window_minutes + 1
        total = np.zeros((self.rows, self.cols), np.float32)
        for minute, grid in self.buckets:
            if minute >= oldest:
                total += grid
        return total

    def overlay_data(self, now: float) -> dict[str, Any]:
        grid = self.grid(now)
        return {"cols": self.cols, "rows": self.rows, "window_seconds": self.window_minutes * 60,
                "max_seconds": round(float(grid.max()), 1), "total_seconds": round(float(grid.sum()), 1),
                # row-major, seconds spent in each cell during the window
                "seconds": [round(float(v), 1) for v in grid.ravel()]}


class ActivityMeter:
    def __init__(self, deadband: float = 0.015) -> None:
        self.deadband = deadband
        self.second: int | None = None          # the wall second being averaged
        self.sum_x = self.sum_y = 0.0
        self.samples = 0
        self.previous_mean: Point | None = None
        self.previous_second: int | None = None
        self.recent: deque[tuple[int, float]] = deque(maxlen=60)   # (wall second, movement counted)

    def add(self, point: Point | None, wall: float) -> list[tuple[int, float]]:
        """One frame (``point`` None when no dog). Returns the seconds completed by this call as
        ``(wall second, movement)``; a movement above zero makes it an active second."""
        second = int(wall)
        done: list[tuple[int, float]] = []
        if self.second is not None and second != self.second:
            done = self._close()
        if point is not None:
            if self.second != second:
                self.second, self.sum_x, self.sum_y, self.samples = second, 0.0, 0.0, 0
            self.sum_x += point[0]
            self.sum_y += point[1]
            self.samples += 1
        return done

    def _close(self) -> list[tuple[int, float]]:
        assert self.second is not None
        mean = (self.sum_x / self.samples, self.sum_y / self.samples) if self.samples else None
        second, self.second, self.samples = self.second, None, 0
        if mean is None:
            return []
        moved = 0.0
        # movement is only judged between adjacent seconds: after a gap the dog may have been anywhere
        if self.previous_mean is not None and self.previous_second == second - 1:
            step = math.dist(mean, self.previous_mean)
            moved = step if step >= self.deadband else 0.0
        self.previous_mean, self.previous_second = mean, second
        self.recent.append((second, moved))
        return [(second, moved)]

    def movement_per_minute(self, wall: float) -> float:
        return sum(m for s, m in self.recent if s > wall - 60)

    def summary(self, wall: float) -> dict[str, Any]:
        movement = self.movement_per_minute(wall)
        return {"movement_per_minute": round(movement, 3), "level": activity_level(movement)}
