"""Zones as the protocol declares them: the :class:`Zone` value, its limits, geometry checks and
:func:`parse_zones`, which validates a client's ``set_zones`` list and names the zone and field at fault.

Pure logic, no I/O. Membership and stays (where the dog is) are :mod:`edge.behaviour.zones`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

Point = tuple[float, float]

MAX_ZONES = 16
MIN_POINTS, MAX_POINTS = 3, 32
NAME_PATTERN = re.compile(r"[A-Za-z0-9 _-]{1,40}")
ROLE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,19}")
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
MAX_ROLES = 8
MAX_DWELL_SECONDS = 7 * 24 * 3600
EPSILON = 1e-9
ZONE_FIELDS = ("name", "points", "dwell_alert_seconds", "roles", "color")  # a ZoneError's ``field``


class ZoneError(ValueError):
    """A set_zones request that cannot be accepted; the message names the zone and the problem for
    people, ``index`` (position in the list) and ``field`` (``name``, ``points`` …) for programs. Both
    are None when the list as a whole is at fault."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index, self.field = index, field


@dataclasses.dataclass(frozen=True)
class Zone:
    name: str
    points: tuple[Point, ...]
    dwell_alert_seconds: float | None = None
    roles: frozenset[str] = frozenset()
    color: str | None = None

    def contains(self, point: Point) -> bool:
        """``point`` in normalised coordinates; points on an edge or vertex are inside."""
        return point_in_polygon(point, self.points)

    def contains_pixel(self, x: float, y: float, width: int, height: int) -> bool:
        return self.contains((x / width, y / height))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "points": [[round(x, 5), round(y, 5)] for x, y in self.points],
                               "dwell_alert_seconds": self.dwell_alert_seconds, "roles": sorted(self.roles)}
        if self.color is not None:
            out["color"] = self.color
        return out


# --- geometry ---

def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def on_segment(p: Point, a: Point, b: Point, tolerance: float = 1e-7) -> bool:
    if abs(_cross(a, b, p)) > tolerance * max(1.0, abs(b[0] - a[0]) + abs(b[1] - a[1])):
        return False
    return (min(a[0], b[0]) - tolerance <= p[0] <= max(a[0], b[0]) + tolerance
            and min(a[1], b[1]) - tolerance <= p[1] <= max(a[1], b[1]) + tolerance)


def point_in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting (concave polygons work); a point on an edge counts as inside."""
    n = len(polygon)
    inside = False
    x, y = p
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if on_segment(p, a, b):
            return True
        if (a[1] > y) != (b[1] > y):
            x_cross = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if x < x_cross:
                inside = not inside
    return inside


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when the closed segments share any point (crossing, touching or overlapping)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > EPSILON and d2 < -EPSILON) or (d1 < -EPSILON and d2 > EPSILON)) and \
            ((d3 > EPSILON and d4 < -EPSILON) or (d3 < -EPSILON and d4 > EPSILON)):
        return True
    return (on_segment(p1, q1, q2) or on_segment(p2, q1, q2) or on_segment(q1, p1, p2) or on_segment(q2, p1, p2))


def polygon_area(polygon: Sequence[Point]) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(polygon, (*polygon[1:], polygon[0]), strict=True))) / 2


def self_intersection(polygon: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of edges (by index; edge i joins point i to point i+1) that meet, or None."""
    n = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                # neighbours share a vertex; they only count when they fold back onto each other
                a, b = edges[i]
                c, d = edges[j]
                shared, far_i, far_j = (b, a, d) if j == i + 1 else (a, b, c)
                if abs(_cross(shared, far_i, far_j)) <= EPSILON and \
                        (far_i[0] - shared[0]) * (far_j[0] - shared[0]) + (far_i[1] - shared[1]) * (
                            far_j[1] - shared[1]) > 0:
                    return i, j
                continue
            if segments_intersect(*edges[i], *edges[j]):
                return i, j
    return None


def _parse_point(raw: Any, where: str, index: int) -> Point:
    if isinstance(raw, dict):
        raw = [raw.get("x"), raw.get("y")]
    if not isinstance(raw, list | tuple) or len(raw) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        raise ZoneError(f"{where} must be [x, y] or {{\"x\": x, \"y\": y}} with numbers", index, "points")
    x, y = float(raw[0]), float(raw[1])
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also rejects NaN
        raise ZoneError(f"{where} ({raw[0]}, {raw[1]}) is outside 0..1: zone points are normalised "
                        "(x / frame width, y / frame height)", index, "points")
    return x, y


def parse_zone(raw: Any, index: int) -> Zone:
    if not isinstance(raw, dict):
        raise ZoneError(f"zones[{index}] must be an object with 'name' and 'points'", index)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or not name.strip():
        raise ZoneError(f"zones[{index}] name {str(name)[:60]!r} must be 1 to 40 characters from "
                        "letters, digits, space, '_' and '-'", index, "name")
    label = f"zone {name!r}"
    points_raw = raw.get("points")
    if not isinstance(points_raw, list):
        raise ZoneError(f"{label}: 'points' must be a list of [x, y] pairs", index, "points")
    if not MIN_POINTS <= len(points_raw) <= MAX_POINTS:
        raise ZoneError(f"{label}: polygon has {len(points_raw)} points; it needs {MIN_POINTS} to {MAX_POINTS}",
                        index, "points")
    points = tuple(_parse_point(p, f"{label} point {i}", index) for i, p in enumerate(points_raw))
    for i in range(len(points)):
        if points[i] == points[(i + 1) % len(points)]:
            raise ZoneError(f"{label}: points {i} and {(i + 1) % len(points)} are the same point", index, "points")
    if all(abs(_cross(points[0], points[1], p)) <= EPSILON for p in points[2:]):
        raise ZoneError(f"{label}: polygon has no area (its points lie on one line)", index, "points")
    crossing = self_intersection(points)
    if crossing is not None:
        raise ZoneError(f"{label}: polygon crosses itself (edge {crossing[0]} meets edge {crossing[1]}); "
                        "draw the outline without crossing lines", index, "points")
    if polygon_area(points) < 1e-6:
        raise ZoneError(f"{label}: polygon has no area", index, "points")
    dwell = raw.get("dwell_alert_seconds")
    if dwell is not None and (isinstance(dwell, bool) or not isinstance(dwell, int | float)
                              or not 1 <= dwell <= MAX_DWELL_SECONDS):
        raise ZoneError(f"{label}: 'dwell_alert_seconds' must be a number from 1 to {MAX_DWELL_SECONDS} or null",
                        index, "dwell_alert_seconds")
    roles_raw = raw.get("roles", [])
    if not isinstance(roles_raw, list) or len(roles_raw) > MAX_ROLES or not all(
            isinstance(r, str) and ROLE_PATTERN.fullmatch(r) for r in roles_raw):
        raise ZoneError(f"{label}: 'roles' must be a list of up to {MAX_ROLES} lower-case flags such as \"return\"",
                        index, "roles")
    color = raw.get("color")
    if color is not None and (not isinstance(color, str) or not COLOR_PATTERN.fullmatch(color)):
        raise ZoneError(f"{label}: 'color' must be \"#rrggbb\" or absent", index, "color")
    return Zone(name, points, float(dwell) if dwell is not None else None, frozenset(roles_raw), color)


def parse_zones(raw: Any) -> tuple[Zone, ...]:
    """Validate the whole list (a request replaces every zone; an empty list deletes them all)."""
    if not isinstance(raw, list):
        raise ZoneError("'zones' must be a list of zones (an empty list deletes every zone)")
    if len(raw) > MAX_ZONES:
        raise ZoneError(f"{len(raw)} zones given; at most {MAX_ZONES} are allowed")
    zones = tuple(parse_zone(z, i) for i, z in enumerate(raw))
    seen: set[str] = set()
    for index, zone in enumerate(zones):
        key = zone.name.casefold()
        if key in seen:
            raise ZoneError(f"zone name {zone.name!r} is used twice; names must be unique", index, "name")
        seen.add(key)
    return zones
