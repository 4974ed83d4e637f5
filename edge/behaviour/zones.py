"""Zones the owner draws on the tablet: their validation, geometry and the dog's membership in them.

Pure logic, no I/O, no clock of its own. A zone is a named polygon in normalised frame coordinates
(0–1 on both axes, so a zone survives a resolution change), with an optional dwell alert and role
flags (``return`` marks where a fetched toy is brought back to).

Membership follows Frigate's rule: the dog is in a zone when its *ground contact* is inside the
polygon — the bottom centre of its box, or the mean of its paws when keypoints exist — and a change
(in or out) is only believed after ``inertia`` consecutive frames agree, so a one-frame crossing or a
jittering box fires nothing. The time of a stay runs from the first frame of the streak that entered
to the first frame of the streak that left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from edge.protocol.zones import Point, Zone


def ground_point(box: Sequence[float], width: int, height: int,
                 paws: Iterable[Point] | None = None) -> Point:
    """Where the dog touches the ground, normalised: the mean of its paws (pixels) if any, else the
    bottom centre of its box (x1, y1, x2, y2 in pixels). Clamped to the frame."""
    pts = list(paws or ())
    if pts:
        x = sum(p[0] for p in pts) / len(pts)
        y = sum(p[1] for p in pts) / len(pts)
    else:
        x, y = (box[0] + box[2]) / 2, box[3]
    return min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0)


def paw_points(named: dict[str, tuple[float, float, float]], min_confidence: float = 0.3) -> list[Point]:
    """The paws among named keypoints (any name containing ``paw``, e.g. ``left_front_paw``), in pixels."""
    return [(x, y) for name, (x, y, c) in named.items() if "paw" in name.lower() and c >= min_confidence]


def paws_of(track: Any) -> list[Point] | None:
    """A track's paws when the pose stage attached them (``track.paws`` or ``track.pose.named()``)."""
    paws = getattr(track, "paws", None)
    if paws:
        return list(paws)
    pose = getattr(track, "pose", None)
    if pose is not None and hasattr(pose, "named"):
        return paw_points(pose.named()) or None
    return None


# --- membership with inertia ---

@dataclasses.dataclass
class ZoneStay:
    """Membership state of one zone."""

    inside: bool = False
    streak: int = 0                       # consecutive frames disagreeing with ``inside``
    streak_started: float | None = None   # monotonic time of the streak's first frame
    streak_started_wall: float | None = None
    entered: float | None = None          # monotonic time the current stay began
    entered_wall: float | None = None
    dwell_fired: bool = False
    track_id: int | None = None


@dataclasses.dataclass(frozen=True)
class ZoneChange:
    """One membership event: kind is ``enter``, ``exit`` or ``dwell``."""

    kind: str
    zone: str
    wall: float                  # when it happened (wall clock), for the event's timestamp
    data: dict[str, Any]


class ZoneTracker:
    """Judges, frame by frame, which zones the dog is in.

    ``update`` takes the ground points of the dogs seen in this frame (``(track_id, point)``; an empty
    list when none was seen). A frame without a dog is no evidence either way — the detector misses
    frames — but when no dog has been seen for ``lost_seconds`` every stay ends at the last sighting.
    """

    def __init__(self, zones: Sequence[Zone] = (), inertia: int = 3, lost_seconds: float = 3.0) -> None:
        self.inertia = max(1, inertia)
        self.lost_seconds = lost_seconds
        self.zones: tuple[Zone, ...] = ()
        self.stays: dict[str, ZoneStay] = {}
        self.last_seen: float | None = None
        self.last_seen_wall: float | None = None
        self.set_zones(zones)

    def set_zones(self, zones: Sequence[Zone], now: float | None = None,
                  wall: float | None = None) -> list[ZoneChange]:
        """Replace the zone set; stays in zones that were removed end now (zone_exit, reason ``removed``)."""
        changes: list[ZoneChange] = []
        names = {z.name for z in zones}
        for name, stay in list(self.stays.items()):
            if name not in names:
                if stay.inside and now is not None and wall is not None:
                    changes.append(self._exit(name, stay, now, wall, wall, "removed"))
                del self.stays[name]
        self.zones = tuple(zones)
        for zone in self.zones:
            self.stays.setdefault(zone.name, ZoneStay())
        return changes

    def occupied(self) -> list[str]:
        return [z.name for z in self.zones if self.stays[z.name].inside]

    def occupancy(self) -> dict[str, dict[str, Any]]:
        return {z.name: self._occupancy(self.stays[z.name]) for z in self.zones}

    @staticmethod
    def _occupancy(stay: ZoneStay) -> dict[str, Any]:
        since = stay.entered_wall if stay.inside else None
        return {"occupied": stay.inside, "since": None if since is None else round(since, 3)}

    def update(self, dogs: Sequence[tuple[int | None, Point]], now: float, wall: float) -> list[ZoneChange]:
        changes: list[ZoneChange] = []
        if not dogs:
            if self.last_seen is not None and now - self.last_seen >= self.lost_seconds:
                for zone in self.zones:
                    stay = self.stays[zone.name]
                    if stay.inside:
                        changes.append(self._exit(zone.name, stay, self.last_seen, self.last_seen_wall or wall,
                                                  wall, "dog_lost"))
                    stay.streak, stay.streak_started = 0, None
            return changes + self._dwell(now, wall)
        self.last_seen, self.last_seen_wall = now, wall
        for zone in self.zones:
            stay = self.stays[zone.name]
            match = next(((tid, p) for tid, p in dogs if zone.contains(p)), None)
            inside_now = match is not None
            if inside_now == stay.inside:
                stay.streak, stay.streak_started = 0, None
                if match is not None:
                    stay.track_id = match[0]
                continue
            if stay.streak == 0:
                stay.streak_started, stay.streak_started_wall = now, wall
            stay.streak += 1
            if stay.streak < self.inertia:
                continue
            started = stay.streak_started if stay.streak_started is not None else now
            started_wall = stay.streak_started_wall if stay.streak_started_wall is not None else wall
            stay.streak, stay.streak_started = 0, None
            if match is not None:
                stay.inside, stay.entered, stay.entered_wall = True, started, started_wall
                stay.dwell_fired, stay.track_id = False, match[0]
                changes.append(ZoneChange("enter", zone.name, wall, {
                    "zone": zone.name, "track_id": match[0], "entered_at": round(started_wall, 3),
                    "point": [round(c, 4) for c in match[1]], "roles": sorted(zone.roles)}))
            else:
                changes.append(self._exit(zone.name, stay, started, started_wall, wall, "left"))
        return changes + self._dwell(now, wall)

    def _exit(self, name: str, stay: ZoneStay, at: float, at_wall: float, wall: float, reason: str) -> ZoneChange:
        """End a stay that really ended at ``at`` (monotonic) / ``at_wall``, noticed at ``wall``."""
        seconds = max(0.0, at - (stay.entered if stay.entered is not None else at))
        change = ZoneChange("exit", name, wall, {
            "zone": name, "track_id": stay.track_id, "seconds": round(seconds, 2),
            "entered_at": round(stay.entered_wall, 3) if stay.entered_wall is not None else None,
            "exited_at": round(at_wall, 3), "reason": reason})
        stay.inside, stay.entered, stay.entered_wall, stay.dwell_fired = False, None, None, False
        return change

    def _dwell(self, now: float, wall: float) -> list[ZoneChange]:
        out: list[ZoneChange] = []
        for zone in self.zones:
            stay = self.stays[zone.name]
            if (zone.dwell_alert_seconds is not None and stay.inside and not stay.dwell_fired
                    and stay.entered is not None and now - stay.entered >= zone.dwell_alert_seconds):
                stay.dwell_fired = True
                out.append(ZoneChange("dwell", zone.name, wall, {
                    "zone": zone.name, "track_id": stay.track_id, "seconds": round(now - stay.entered, 2),
                    "dwell_alert_seconds": zone.dwell_alert_seconds,
                    "entered_at": round(stay.entered_wall, 3) if stay.entered_wall is not None else None}))
        return out
