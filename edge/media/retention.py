"""Which media to delete: oldest first, by age and by total size. Pure logic, no I/O.

Items are grouped (a snapshot's clean and overlay files go together). A group older than
``max_age`` goes; then the oldest groups go until the total fits in ``max_bytes``. The newest group
is always kept, so the media an event just announced is never deleted by that event's own save.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    media_id: str
    group: str
    created: float
    size: int


def plan_retention(items: Iterable[Item], max_bytes: int, max_age: float, now: float) -> list[str]:
    """Media ids to delete, oldest first."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    ordered = sorted(groups.values(), key=lambda g: (min(i.created for i in g), g[0].group))
    total = sum(i.size for g in ordered for i in g)
    doomed: list[str] = []
    for position, group in enumerate(ordered):
        if position == len(ordered) - 1:
            break
        too_old = now - max(i.created for i in group) > max_age
        if not too_old and total <= max_bytes:
            break
        doomed += [i.media_id for i in group]
        total -= sum(i.size for i in group)
    return doomed
