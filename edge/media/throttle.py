"""Snapshots on zone entry, rate-limited per zone: a dog pacing a zone's edge does not fill the disk.

Pure logic on the caller's clock (monotonic seconds): :class:`PerKeyInterval` allows an action at most once
per key per ``interval`` seconds; the media feature asks it for ``zone_enter`` snapshots, keyed by the zone
(``DOGMON_ZONE_SNAPSHOT_INTERVAL``). Entries refused this way still are events (and may start clips).
"""

from __future__ import annotations

from collections.abc import Hashable


class PerKeyInterval:
    """At most one action per key in any ``interval`` seconds (0: every time)."""

    def __init__(self, interval: float, max_keys: int = 256) -> None:
        self.interval, self.max_keys = interval, max_keys
        self.last: dict[Hashable, float] = {}

    def allow(self, key: Hashable, now: float) -> bool:
        """True (and counted) when ``key`` had no allowed action in the last ``interval`` seconds."""
        last = self.last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if key not in self.last and len(self.last) >= self.max_keys:  # zones come and go: keep it bounded
            self.last.pop(next(iter(self.last)))
        self.last[key] = now
        return True
