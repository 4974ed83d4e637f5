"""The fetch_return rule: a dog carries a toy back to a return zone or towards the camera.

Pure logic, no I/O and no clock of its own. The rule, frame by frame, per confirmed dog track
(boxes in pixels, ``x1, y1, x2, y2``; ``w``, ``h`` the dog box's width and height):

1. **Held.** A toy (a ``sports ball`` or ``frisbee`` detection) is *held* by a dog in a frame when
   the toy box's centre lies in the dog's *mouth region*: ``x1 - 0.1·w ≤ cx ≤ x2 + 0.1·w`` and
   ``y1 - 0.1·h ≤ cy ≤ y1 + 0.6·h`` (the top 60 % of the box — a dog's head, whichever way it faces,
   with a margin for a toy that sticks out), and the toy box is smaller than half the dog box. A toy
   held by several dogs goes to the dog whose box top-centre is nearest.
2. **Carry.** A carry starts when the same dog holds a toy in ``carry_frames`` consecutive frames in
   which the dog was seen. Its start time and start box area are those of the first of these frames.
   Frames where the dog is seen without the toy are tolerated for ``drop_seconds``; after that, or
   when the track is gone, the carry ends.
3. **Return.** While carrying, the carry fires ``fetch_return`` when the dog *reaches* a zone flagged
   ``return`` (membership as judged by the zone tracker, with its inertia; a return zone the dog was
   already in when the carry started only counts after the dog has left it and come back), or when
   its box area has grown to ``growth`` × the start area (the dog came towards the camera).
4. **Once per carry.** After firing, the carry is spent: nothing more fires until it ends (the toy
   not held for ``drop_seconds``) and a new carry starts.

The event carries the toy label (the label held most often during the carry), the carry duration
(start of the carry to the return), the reason (``return_zone`` or ``growth``), the zone if any and
the growth reached.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edge.vision.detector import Detection
from edge.vision.tracking import Track

TOY_LABELS = ("sports ball", "frisbee")
Box = tuple[float, float, float, float]


def box_area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def held_by(toy: Box, dog: Box) -> bool:
    """The toy box's centre is in the dog box's mouth region and the toy is smaller than half the dog."""
    x1, y1, x2, y2 = dog
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0 or box_area(toy) >= 0.5 * w * h:
        return False
    cx, cy = (toy[0] + toy[2]) / 2, (toy[1] + toy[3]) / 2
    return x1 - 0.1 * w <= cx <= x2 + 0.1 * w and y1 - 0.1 * h <= cy <= y1 + 0.6 * h


def assign_toys(toys: Iterable[Detection], dogs: Sequence[Track]) -> dict[int, str]:
    """track_id -> label of the toy it holds this frame (a toy goes to the nearest holding dog)."""
    held: dict[int, str] = {}
    for toy in toys:
        tbox = (toy.x1, toy.y1, toy.x2, toy.y2)
        holders = [d for d in dogs if held_by(tbox, d.box)]
        if not holders:
            continue
        cx, cy = (tbox[0] + tbox[2]) / 2, (tbox[1] + tbox[3]) / 2
        nearest = min(holders, key=lambda d: ((d.box[0] + d.box[2]) / 2 - cx) ** 2 + (d.box[1] - cy) ** 2)
        held.setdefault(nearest.track_id, toy.label)
    return held


@dataclasses.dataclass
class Carry:
    """What the rule remembers about one dog track."""

    streak: int = 0                       # consecutive seen frames holding a toy, before a carry starts
    streak_started: float | None = None
    streak_started_wall: float | None = None
    streak_area: float = 0.0
    carrying: bool = False
    started: float = 0.0
    started_wall: float = 0.0
    start_area: float = 0.0
    last_held: float = 0.0
    fired: bool = False
    zones_at_start: set[str] = dataclasses.field(default_factory=set)
    labels: Counter[str] = dataclasses.field(default_factory=Counter)


@dataclasses.dataclass(frozen=True)
class FetchReturn:
    track_id: int
    wall: float
    data: dict[str, Any]


class FetchDetector:
    def __init__(self, carry_frames: int = 3, growth: float = 1.5, drop_seconds: float = 1.5) -> None:
        self.carry_frames = max(1, carry_frames)
        self.growth = growth
        self.drop_seconds = drop_seconds
        self.carries: dict[int, Carry] = {}

    def carrying(self) -> list[int]:
        return [tid for tid, c in self.carries.items() if c.carrying]

    def update(self, dogs: Sequence[Track], detections: Iterable[Detection],
               return_zones: Mapping[int, Sequence[str]], now: float, wall: float) -> list[FetchReturn]:
        """``dogs``: confirmed tracks seen this frame; ``return_zones``: track_id -> the zones flagged
        ``return`` that dog is in now (by the zone tracker). Returns this frame's fetch_return decisions."""
        seen_ids = {d.track_id for d in dogs}
        for tid in [t for t in self.carries if t not in seen_ids]:
            # a track not seen this frame keeps its carry until drop_seconds pass (the detector misses frames)
            carry = self.carries[tid]
            if not carry.carrying or now - carry.last_held > self.drop_seconds:
                del self.carries[tid]
        held = assign_toys([d for d in detections if d.label in TOY_LABELS], dogs)
        out: list[FetchReturn] = []
        for dog in dogs:
            carry = self.carries.setdefault(dog.track_id, Carry())
            area = box_area(dog.box)
            in_zones = list(return_zones.get(dog.track_id, ()))
            label = held.get(dog.track_id)
            if label is not None:
                carry.last_held = now
                carry.labels[label] += 1
                if not carry.carrying:
                    if carry.streak == 0:
                        carry.streak_started, carry.streak_started_wall, carry.streak_area = now, wall, area
                    carry.streak += 1
                    if carry.streak >= self.carry_frames:
                        carry.carrying, carry.fired = True, False
                        carry.started = carry.streak_started if carry.streak_started is not None else now
                        carry.started_wall = carry.streak_started_wall or wall
                        carry.start_area = carry.streak_area or area
                        carry.zones_at_start = set(in_zones)
            elif not carry.carrying:
                carry.streak, carry.streak_started = 0, None
                carry.labels.clear()
            elif now - carry.last_held > self.drop_seconds:
                self.carries[dog.track_id] = Carry()
                continue
            if not carry.carrying or carry.fired:
                continue
            carry.zones_at_start &= set(in_zones)  # once left, a zone counts when reached again
            reached = [z for z in in_zones if z not in carry.zones_at_start]
            grown = area / carry.start_area if carry.start_area > 0 else 1.0
            reason = "return_zone" if reached else "growth" if grown >= self.growth else None
            if reason is None:
                continue
            carry.fired = True
            out.append(FetchReturn(dog.track_id, wall, {
                "track_id": dog.track_id,
                "toy": carry.labels.most_common(1)[0][0] if carry.labels else TOY_LABELS[0],
                "carry_seconds": round(now - carry.started, 2),
                "carry_started_at": round(carry.started_wall, 3),
                "reason": reason,
                "zone": reached[0] if reached else None,
                "growth": round(grown, 2),
            }))
        return out
