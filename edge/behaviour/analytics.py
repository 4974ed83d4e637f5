"""Per-day analytics: time in each posture and zone, zone visits, activity and event counts.

Pure logic, fed from the event stream. Days are device-local calendar days (``tz`` None: the
system's local time zone). :meth:`DailyAnalytics.on_event` folds each outgoing event in:

- posture events (``sit``, ``stand``, ``lie``) start a posture interval at their ``since`` (when the
  posture began; the event fires once it has held) or else their timestamp, running until the next
  posture began, the dog's last sighting before ``dog_left`` (``ts - absent_seconds``) or
  ``camera_offline``;
- ``zone_enter`` counts a visit (on the day it began, from ``entered_at``) and opens a zone interval
  from ``entered_at``; ``zone_exit`` closes it at ``exited_at``;
- every event adds one to its type's count on the day of its timestamp.

Active seconds come from the activity meter (:meth:`add_active_second`). Intervals are split at
local midnight, so a stay across midnight counts on both days. :meth:`checkpoint` folds the open
intervals into the totals up to ``now`` (their starts move to ``now``), so what is persisted is
complete up to the last checkpoint; after a restart the totals are loaded back and an open interval
is not resumed (the dog's posture and zones are judged afresh), losing at most one checkpoint period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

POSTURES = ("sit", "stand", "lie")
POSTURE_ENDS = ("dog_left", "camera_offline")
MAX_DAYS_IN_MEMORY = 8


def _earlier(value: object, ts: float) -> float:
    """``value`` when it is a timestamp at or before ``ts`` (and not absurdly old), else ``ts``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and ts - 86400 <= value <= ts:
        return float(value)
    return ts


def empty_totals(day: str) -> dict[str, Any]:
    return {"day": day, "posture_seconds": {}, "zone_seconds": {}, "zone_visits": {},
            "activity_seconds": 0, "event_counts": {}}


class DailyAnalytics:
    def __init__(self, tz: dt.tzinfo | None = None,
                 load: Callable[[str], dict[str, Any] | None] | None = None) -> None:
        self.tz = tz
        self.load = load or (lambda day: None)
        self.days: dict[str, dict[str, Any]] = {}
        self.dirty: set[str] = set()
        self.posture: tuple[str, float] | None = None     # (posture, interval start)
        self.zones: dict[str, float] = {}                  # zone -> interval start
        self.version = 0                                   # bumps on every change, for "send when changed"

    # --- days ---
    def day_of(self, ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, self.tz).date().isoformat()

    def next_midnight(self, ts: float) -> float:
        day = dt.datetime.fromtimestamp(ts, self.tz).date() + dt.timedelta(days=1)
        if self.tz is None:
            return dt.datetime.combine(day, dt.time()).timestamp()   # naive: local time
        return dt.datetime.combine(day, dt.time(), self.tz).timestamp()

    def totals(self, day: str) -> dict[str, Any]:
        if day not in self.days:
            loaded = self.load(day)
            self.days[day] = loaded if isinstance(loaded, dict) else empty_totals(day)
            for old in sorted(self.days)[:-MAX_DAYS_IN_MEMORY]:
                if old not in self.dirty:
                    del self.days[old]
        return self.days[day]

    def _touch(self, day: str) -> dict[str, Any]:
        self.dirty.add(day)
        self.version += 1
        return self.totals(day)

    def _accrue(self, section: str, key: str, start: float, end: float) -> None:
        """Add the interval [start, end) to ``section[key]``, split at local midnights.

        ``end`` before ``start`` takes the interval back out: an interval that a checkpoint already
        counted up to ``start`` may turn out to have ended earlier (a zone exit is only known once the
        dog has been missing for a while, and then dated back to its last sighting)."""
        sign = 1.0
        if end < start:
            start, end, sign = end, start, -1.0
        while end > start:
            cut = min(end, self.next_midnight(start))
            bucket = self._touch(self.day_of(start))[section]
            bucket[key] = round(max(0.0, bucket.get(key, 0.0) + sign * (cut - start)), 3)
            start = cut

    # --- inputs ---
    def on_event(self, event_type: str, data: dict[str, Any], ts: float) -> None:
        counts = self._touch(self.day_of(ts))["event_counts"]
        counts[event_type] = counts.get(event_type, 0) + 1
        if event_type in POSTURES:
            # the posture began at ``since`` (it has to hold a while before its event fires)
            start = _earlier(data.get("since"), ts)
            self._end_posture(start)
            self.posture = (event_type, start)
        elif event_type in POSTURE_ENDS:
            # dog_left comes absence_seconds after the last sighting: the posture ended then
            absent = data.get("absent_seconds")
            self._end_posture(ts - absent if isinstance(absent, int | float) and absent > 0 else ts)
        elif event_type == "zone_enter":
            zone = str(data.get("zone"))
            start = float(data.get("entered_at") or ts)
            if zone in self.zones:
                self._accrue("zone_seconds", zone, self.zones.pop(zone), start)
            visits = self._touch(self.day_of(start))["zone_visits"]
            visits[zone] = visits.get(zone, 0) + 1
            self.zones[zone] = start
        elif event_type == "zone_exit":
            zone = str(data.get("zone"))
            if zone in self.zones:
                self._accrue("zone_seconds", zone, self.zones.pop(zone), float(data.get("exited_at") or ts))

    def _end_posture(self, ts: float) -> None:
        if self.posture is not None:
            name, start = self.posture
            self._accrue("posture_seconds", name, start, ts)
            self.posture = None

    def add_active_second(self, second: float, seconds: float = 1.0) -> None:
        totals = self._touch(self.day_of(second))
        totals["activity_seconds"] = round(totals["activity_seconds"] + seconds, 3)

    def checkpoint(self, now: float) -> None:
        """Fold open intervals into the totals up to ``now`` (call before persisting)."""
        if self.posture is not None and now > self.posture[1]:
            self._accrue("posture_seconds", self.posture[0], self.posture[1], now)
            self.posture = (self.posture[0], now)
        for zone, start in list(self.zones.items()):
            if now > start:
                self._accrue("zone_seconds", zone, start, now)
                self.zones[zone] = now

    def take_dirty(self) -> dict[str, dict[str, Any]]:
        """The days changed since the last call, to persist."""
        out = {day: self.totals(day) for day in sorted(self.dirty)}
        self.dirty.clear()
        return out

    # --- output ---
    def report(self, day: str, now: float | None = None) -> dict[str, Any]:
        """The day's figures, including still-open intervals up to ``now``; nothing is changed."""
        base = self.totals(day)
        postures = dict(base["posture_seconds"])
        zones = dict(base["zone_seconds"])
        if now is not None:
            def add_open(target: dict[str, float], key: str, start: float) -> None:
                lo = max(start, self._day_start(day))
                hi = min(now, self.next_midnight(lo))
                if hi > lo and self.day_of(lo) == day:
                    target[key] = target.get(key, 0.0) + (hi - lo)
            if self.posture is not None:
                add_open(postures, *self.posture)
            for zone, start in self.zones.items():
                add_open(zones, zone, start)
        return {
            "day": day,
            "posture_seconds": {k: round(v, 1) for k, v in sorted(postures.items())},
            "posture_minutes": {k: round(v / 60, 2) for k, v in sorted(postures.items())},
            "zone_seconds": {k: round(v, 1) for k, v in sorted(zones.items())},
            "zone_minutes": {k: round(v / 60, 2) for k, v in sorted(zones.items())},
            "zone_visits": dict(sorted(base["zone_visits"].items())),
            "activity_seconds": round(base["activity_seconds"], 1),
            "activity_minutes": round(base["activity_seconds"] / 60, 2),
            "event_counts": dict(sorted(base["event_counts"].items())),
        }

    def _day_start(self, day: str) -> float:
        date = dt.date.fromisoformat(day)
        if self.tz is None:
            return dt.datetime.combine(date, dt.time()).timestamp()
        return dt.datetime.combine(date, dt.time(), self.tz).timestamp()
