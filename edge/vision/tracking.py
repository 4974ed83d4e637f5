"""Dog tracks and presence: per-frame boxes in, track ids and dog_detected / dog_left decisions out.

Pure logic, no I/O and no clock of its own: every call takes ``now`` (monotonic seconds), so the same
code runs live and in tests. A track is *confirmed* after ``confirm_hits`` matches within
``confirm_window`` seconds, and survives ``max_coast`` seconds without a match (the detector misses
frames; presence must not flicker). Presence turns on at the first confirmed track and off when no
dog has been seen for ``absence_seconds``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from edge.core.frames import Track
from edge.vision.detector import Detection


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class TrackerUpdate:
    """What one frame changed: tracks that became confirmed, and the presence transition if any."""

    tracks: list[Track]
    newly_confirmed: list[Track]
    arrived: Track | None = None          # presence turned on with this track
    left: dict[str, Any] | None = None    # presence turned off: {"last_track_id", "present_seconds"}


class DogTracker:
    def __init__(self, absence_seconds: float = 10.0, confirm_hits: int = 3, confirm_window: float = 2.0,
                 max_coast: float = 2.0, match_iou: float = 0.2, smoothing: float = 0.5) -> None:
        self.absence_seconds = absence_seconds
        self.confirm_hits = confirm_hits
        self.confirm_window = confirm_window
        self.max_coast = max_coast
        self.match_iou = match_iou
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self.present = False
        self.present_since: float | None = None
        self.last_dog_seen: float | None = None
        self._last_confirmed_id: int | None = None
        self._next_id = 1

    def update(self, dogs: Sequence[Detection], now: float) -> TrackerUpdate:
        """Match this frame's dog boxes to tracks (greedy by IoU) and decide presence."""
        unmatched = list(range(len(dogs)))
        pairs = sorted(
            ((iou(t.box, (d.x1, d.y1, d.x2, d.y2)), ti, di)
             for ti, t in enumerate(self.tracks) for di, d in enumerate(dogs)),
            reverse=True,
        )
        used_tracks: set[int] = set()
        newly: list[Track] = []
        for overlap, ti, di in pairs:
            if overlap < self.match_iou or ti in used_tracks or di not in unmatched:
                continue
            used_tracks.add(ti)
            unmatched.remove(di)
            track, det = self.tracks[ti], dogs[di]
            a = self.smoothing
            track.box = tuple(a * n + (1 - a) * o for n, o in zip((det.x1, det.y1, det.x2, det.y2), track.box,
                                                                   strict=True))  # type: ignore[assignment]
            track.score = det.score
            track.best_score = max(track.best_score, det.score)
            track.last_seen = now
            track.hits += 1
            track.misses = 0
            if not track.confirmed and track.hits >= self.confirm_hits:
                track.confirmed = True
                newly.append(track)
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.misses += 1
        for di in unmatched:
            d = dogs[di]
            self.tracks.append(Track(self._next_id, (d.x1, d.y1, d.x2, d.y2), d.score, now, now,
                                     best_score=d.score))
            self._next_id += 1
        # Unconfirmed tracks must collect their hits quickly; confirmed ones coast through misses.
        self.tracks = [t for t in self.tracks if self._alive(t, now)]
        if dogs and any(t.confirmed for t in self.tracks):
            self.last_dog_seen = now
        return self._presence(now, newly)

    def _alive(self, track: Track, now: float) -> bool:
        if track.confirmed:
            return now - track.last_seen <= self.max_coast
        return now - track.first_seen <= self.confirm_window

    def tick(self, now: float) -> TrackerUpdate:
        """Advance time without a frame (camera slow or gone) so absence still ends presence."""
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_coast]
        return self._presence(now, [])

    def _presence(self, now: float, newly: list[Track]) -> TrackerUpdate:
        confirmed = [t for t in self.tracks if t.confirmed]
        if confirmed:
            self._last_confirmed_id = confirmed[0].track_id
        arrived = None
        left = None
        if not self.present and newly:
            self.present = True
            self.present_since = now
            self.last_dog_seen = now
            arrived = max(newly, key=lambda t: t.score)
        elif self.present and self.last_dog_seen is not None and now - self.last_dog_seen >= self.absence_seconds:
            self.present = False
            left = {
                "last_track_id": self._last_confirmed_id,
                "present_seconds": round(self.last_dog_seen - (self.present_since or self.last_dog_seen), 2),
                "absent_seconds": round(now - self.last_dog_seen, 2),
            }
            self.present_since = None
        return TrackerUpdate(tracks=list(self.tracks), newly_confirmed=newly, arrived=arrived, left=left)
