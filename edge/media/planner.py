"""When to record: clip windows with pre-/post-roll, real-speed frame timing, best snapshot frames.

Pure logic, no I/O and no clock of its own: every call takes ``now`` (monotonic seconds).

- :class:`ClipPlanner`: a trigger at ``t`` opens a clip from ``t - pre`` to ``t + post``; while the
  dog stays active, or another trigger comes, the end moves out, but never past ``start + max``.
  Triggers during a clip join it (their ``seq`` and bookmark labels are listed on the clip).
- :class:`ConstantRate`: frames arrive at whatever rate inference runs; an MP4 has one fixed frame
  rate. Each output slot shows the newest frame captured at or before its time, so a clip plays at
  real speed and its timeline matches the event times.
- :class:`BestFramePicker`: for each young track, the frame where it scored best during its first
  seconds (the snapshot of a new dog is that frame, not whichever frame confirmed the track).
- :class:`ActivityGate`: "the dog is active" means a seen dog moves faster than a small fraction of
  the frame diagonal per second; a dog asleep on the sofa does not hold a clip open.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Trigger:
    seq: int | None     # the event the clip illustrates (None: no event, e.g. a plain request)
    at: float           # monotonic time of the moment
    reason: str         # event type, or "bookmark"
    label: str | None = None


@dataclasses.dataclass(slots=True)
class ClipPlan:
    start: float
    end: float
    limit: float
    triggers: list[Trigger]

    @property
    def first(self) -> Trigger:
        return self.triggers[0]

    @property
    def labels(self) -> list[str]:
        return [t.label for t in self.triggers if t.label]


class ClipPlanner:
    def __init__(self, pre: float, post: float, max_seconds: float) -> None:
        if pre < 0 or post <= 0 or max_seconds <= 0:
            raise ValueError("pre must be >= 0, post and max_seconds > 0")
        self.pre, self.post = pre, post
        self.max_seconds = max(max_seconds, post)
        self.active: ClipPlan | None = None

    def trigger(self, trigger: Trigger) -> ClipPlan | None:
        """Start a clip (returned: the caller sends its pre-roll) or join the running one (None)."""
        if self.active is not None:
            self.active.triggers.append(trigger)
            self._extend(trigger.at)
            return None
        start = trigger.at - self.pre
        limit = start + self.pre + self.max_seconds
        self.active = ClipPlan(start, min(trigger.at + self.post, limit), limit, [trigger])
        return self.active

    def activity(self, now: float) -> None:
        """The dog is still active at ``now``: keep recording until ``now + post`` (up to the limit)."""
        if self.active is not None:
            self._extend(now)

    def _extend(self, at: float) -> None:
        assert self.active is not None
        self.active.end = min(max(self.active.end, at + self.post), self.active.limit)

    def due(self, now: float) -> ClipPlan | None:
        """The clip that has ended by ``now`` (the caller closes its file), else None."""
        if self.active is not None and now >= self.active.end:
            done, self.active = self.active, None
            return done
        return None


class ConstantRate:
    """Slots at ``start + k / fps``; a frame captured at ``t`` is shown until the next frame's time."""

    def __init__(self, fps: float, start: float) -> None:
        self.period = 1.0 / fps
        self.start = start
        self.emitted = 0

    def slots_before(self, t: float) -> int:
        """How many not-yet-written slots fall before ``t`` (the held frame fills them)."""
        wanted = max(0, math.ceil((t - self.start) / self.period - 1e-9))
        count = max(0, wanted - self.emitted)
        self.emitted += count
        return count

    @property
    def duration(self) -> float:
        return self.emitted * self.period


@dataclasses.dataclass(slots=True)
class Candidate:
    score: float
    at: float
    first_seen: float
    payload: Any


class BestFramePicker:
    """Keeps, per young track, the best-scoring frame within ``window`` seconds of its first sighting."""

    def __init__(self, window: float, max_tracks: int = 8) -> None:
        self.window, self.max_tracks = window, max_tracks
        self.best: dict[int, Candidate] = {}

    def offer(self, track_id: int, first_seen: float, now: float, score: float, payload: Any) -> None:
        if now - first_seen > self.window:
            return
        current = self.best.get(track_id)
        if current is None or score > current.score:
            self.best[track_id] = Candidate(score, now, first_seen, payload)
            if len(self.best) > self.max_tracks:  # bound memory: forget the oldest young track
                del self.best[min(self.best, key=lambda k: self.best[k].first_seen)]

    def ready_at(self, track_id: int) -> float | None:
        """When the window of ``track_id`` closes (None: no frame of it was seen)."""
        found = self.best.get(track_id)
        return None if found is None else found.first_seen + self.window

    def take(self, track_id: int) -> Candidate | None:
        return self.best.pop(track_id, None)

    def expire(self, now: float, keep: set[int]) -> None:
        """Drop candidates whose window closed long ago and that nobody asked for."""
        for tid in [t for t, c in self.best.items() if now - c.first_seen > 3 * self.window and t not in keep]:
            del self.best[tid]


class ActivityGate:
    """Is a dog moving? Speed of the main track's centre, sampled over at least ``interval`` seconds."""

    def __init__(self, min_speed: float = 0.03, interval: float = 0.5) -> None:
        self.min_speed, self.interval = min_speed, interval
        self._sample: tuple[float, float, float] | None = None  # (t, x, y)
        self.active = False

    def update(self, now: float, centre: tuple[float, float] | None, diagonal: float) -> bool:
        if centre is None or diagonal <= 0:
            self._sample, self.active = None, False
            return False
        if self._sample is None:
            self._sample = (now, *centre)
            return self.active
        t0, x0, y0 = self._sample
        if now - t0 >= self.interval:
            speed = math.hypot(centre[0] - x0, centre[1] - y0) / diagonal / (now - t0)
            self.active = speed >= self.min_speed
            self._sample = (now, *centre)
        return self.active
