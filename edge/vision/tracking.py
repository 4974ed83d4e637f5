"""Dog tracks and presence: per-frame boxes in, track ids and dog_detected / dog_left decisions out.

Pure logic, no I/O and no clock of its own: every call takes ``now`` (monotonic seconds), so the same
code runs live and in tests. A track is *confirmed* after ``confirm_hits`` matches within
``confirm_window`` seconds, and survives ``max_coast`` seconds without a match (the detector misses
frames; presence must not flicker). Presence turns on at the first confirmed track and off when no
dog has been seen for ``absence_seconds``.

*Candidates* are boxes the model gives a dog it does not call ``dog`` (``cat``, ``bear``, ``sheep``,
``teddy bear`` for a curled or sleeping dog; a second look's boxes). They never start a track and never
bring ``dog_detected`` on their own: a candidate only counts where a dog is already known, i.e. it
keeps a confirmed track (live, or lost less than ``absence_seconds`` ago while the dog is still
present) when it overlaps it by ``match_iou``, and it adds a hit to an unconfirmed track a real ``dog``
box started when its size and shape fit the household's dog (:class:`HouseholdDog`, learned from the
real dog boxes of confirmed tracks). A candidate overlapping a ``dog`` box of the same frame is the
same animal and is dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from edge.core.frames import Track
from edge.vision.detector import Detection
from edge.vision.household import HouseholdDog

SAME_ANIMAL_IOU = 0.5  # a candidate box this close to a dog box is that dog, scored under another class


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
        self.household = HouseholdDog()
        self.lost: list[Track] = []   # confirmed tracks that stopped coasting while the dog is still present

    def update(self, dogs: Sequence[Detection], now: float, candidates: Sequence[Detection] = ()) -> TrackerUpdate:
        """Match this frame's dog boxes to tracks (greedy by IoU), then the candidates, and decide presence."""
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
            track.score = det.score
            track.best_score = max(track.best_score, det.score)
            self._hit(track, det, now, newly)
            if track.confirmed:
                self.household.learn(track.box, now)
        extended = self._candidates(candidates, dogs, used_tracks, now, newly)
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.misses += 1
        for di in unmatched:
            d = dogs[di]
            self.tracks.append(Track(self._next_id, (d.x1, d.y1, d.x2, d.y2), d.score, now, now,
                                     best_score=d.score))
            self._next_id += 1
        # Unconfirmed tracks must collect their hits quickly; confirmed ones coast through misses.
        self._retire([t for t in self.tracks if not self._alive(t, now)])
        if (dogs or extended) and any(t.confirmed for t in self.tracks):
            self.last_dog_seen = now
        return self._presence(now, newly)

    def _hit(self, track: Track, det: Detection, now: float, newly: list[Track]) -> None:
        a = self.smoothing
        track.box = tuple(a * n + (1 - a) * o for n, o in zip((det.x1, det.y1, det.x2, det.y2), track.box,
                                                               strict=True))  # type: ignore[assignment]
        track.last_seen = now
        track.hits += 1
        track.misses = 0
        if not track.confirmed and track.hits >= self.confirm_hits:
            track.confirmed = True
            newly.append(track)

    def _candidates(self, candidates: Sequence[Detection], dogs: Sequence[Detection], used: set[int], now: float,
                    newly: list[Track]) -> bool:
        """Let candidates keep known dogs (see the module doc); True when one did. Marks used tracks."""
        boxes = [(c, (c.x1, c.y1, c.x2, c.y2)) for c in candidates]
        boxes = [(c, b) for c, b in boxes if all(iou(b, (d.x1, d.y1, d.x2, d.y2)) < SAME_ANIMAL_IOU for d in dogs)]
        if not boxes:
            return False
        self.lost = [t for t in self.lost if self.present and now - t.last_seen < self.absence_seconds]
        known = [(t, ti) for ti, t in enumerate(self.tracks) if ti not in used] + [(t, None) for t in self.lost]
        pairs = sorted(((iou(t.box, b), k, ci) for k, (t, _) in enumerate(known) for ci, (_, b) in enumerate(boxes)),
                       key=lambda p: p[0], reverse=True)
        taken: set[int] = set()
        extended = False
        for overlap, k, ci in pairs:
            track, ti = known[k]
            if overlap < self.match_iou or ci in taken or (ti is not None and ti in used):
                continue
            if ti is None and not any(t is track for t in self.lost):
                continue   # a lost track already revived by a better candidate
            if not track.confirmed and not self.household.fits(boxes[ci][1]):
                continue   # an unconfirmed track only takes a candidate shaped like the household's dog
            taken.add(ci)
            if ti is None:
                self.lost = [t for t in self.lost if t is not track]
                self.tracks.append(track)
                used.add(len(self.tracks) - 1)
            else:
                used.add(ti)
            self._hit(track, boxes[ci][0], now, newly)
            extended = extended or track.confirmed
        return extended

    def _retire(self, dead: list[Track]) -> None:
        """Drop tracks that stopped; confirmed ones are kept aside while presence lasts (candidates may revive them)."""
        if not dead:
            return
        gone = {id(t) for t in dead}
        self.tracks = [t for t in self.tracks if id(t) not in gone]
        self.lost += [t for t in dead if t.confirmed]

    def expected(self) -> list[tuple[float, float, float, float]]:
        """Where a known dog should be: confirmed tracks, live or lost while present, last seen first."""
        known = [t for t in self.tracks if t.confirmed] + (self.lost if self.present else [])
        return [t.box for t in sorted(known, key=lambda t: t.last_seen, reverse=True)]

    def _alive(self, track: Track, now: float) -> bool:
        if track.confirmed:
            return now - track.last_seen <= self.max_coast
        return now - track.first_seen <= self.confirm_window

    def tick(self, now: float) -> TrackerUpdate:
        """Advance time without a frame (camera slow or gone) so absence still ends presence."""
        self._retire([t for t in self.tracks if now - t.last_seen > self.max_coast])
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
            self.lost = []
        return TrackerUpdate(tracks=list(self.tracks), newly_confirmed=newly, arrived=arrived, left=left)
