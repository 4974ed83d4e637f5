"""The day's highlight reel and time-lapse, planned: which moments, which seconds of which clip, how long.

Pure logic, no I/O and no clock of its own (wall times in, plans out); :mod:`edge.media.reelmaker` does the
cutting and :mod:`edge.media.daily` decides when.

- :func:`moments_of`: the day's events as stored (``event_type``, ``ts``, ``seq``, ``data``) → moments: arrivals
  (``dog_detected``), bookmarks, barking episodes (bark events closer than ``BARK_GAP`` are one moment, at the
  episode's start), fetch returns and zone dwell alerts, each with a priority for when the reel is full.
- :func:`plan_cuts`: each moment that a saved clip covers becomes ``LEAD`` s before to ``TAIL`` s after it in
  that clip; the start moves back to the clip's keyframe at or before it (so the cut is copied without
  re-encoding: a decoder can start there); cuts that overlap in one clip are joined; while the total is over
  ``max_seconds`` moments are added greedily by priority (bookmarks, fetch, zone dwell, barking, arrivals) and
  a moment that does not fit is left out. The reel plays in time order.
- :func:`timelapse_picks`: which of the day's frames make a time-lapse of at most ``max_seconds``.
- :func:`day_bounds`, :func:`next_run`: a day in device local time, and the next ``HH:MM``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LEAD, TAIL = 2.0, 4.0      # seconds of a moment's cut before and after it
BARK_GAP = 60.0             # bark events closer than this are one barking episode (one moment)
JOIN_GAP = 0.5              # cuts of one clip closer than this are one cut
MAX_MOMENTS = 200           # the highest-priority moments considered (a day of barking stays cheap to plan)
# event type -> (moment kind, priority: lower is kept first when the reel is full)
MOMENT_TYPES: dict[str, tuple[str, int]] = {
    "bookmark_created": ("bookmark", 0), "fetch_return": ("fetch", 1), "zone_dwell": ("zone", 2),
    "bark": ("barking", 3), "continuous_barking": ("barking", 3), "howl": ("barking", 3),
    "whimper": ("barking", 3), "dog_detected": ("arrival", 4)}


@dataclasses.dataclass(frozen=True, slots=True)
class Moment:
    at: float           # wall time (unix s)
    kind: str           # arrival, bookmark, barking, fetch, zone
    seq: int
    priority: int
    label: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": round(self.at, 3), "seq": self.seq, "label": self.label}


@dataclasses.dataclass(frozen=True, slots=True)
class ClipSpan:
    media_id: str
    file: str
    start: float        # wall time of the clip's first frame
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclasses.dataclass(slots=True)
class Cut:
    clip: ClipSpan
    begin: float        # seconds into the clip (a keyframe when the clip's keyframes were given)
    end: float
    moments: list[Moment]

    @property
    def length(self) -> float:
        return self.end - self.begin

    @property
    def wall(self) -> float:
        return self.clip.start + self.begin


def moments_of(events: Iterable[Mapping[str, Any]]) -> list[Moment]:
    """The day's moments in time order; a barking episode is one moment however many bark events it has."""
    out: list[Moment] = []
    last_bark: float | None = None
    for event in sorted(events, key=lambda e: e["ts"]):
        kind, priority = MOMENT_TYPES.get(event["event_type"], ("", -1))
        if not kind:
            continue
        data = event.get("data") or {}
        at = float(event["ts"])
        if kind == "barking":
            start = data.get("start")
            at = float(start) if isinstance(start, int | float) else at
            joined = last_bark is not None and at - last_bark < BARK_GAP
            last_bark = max(at, float(event["ts"]))
            if joined:
                continue
        label = data.get("label") if kind == "bookmark" else data.get("zone") if kind == "zone" else None
        out.append(Moment(at, kind, int(event["seq"]), priority, label or None))
    return sorted(out, key=lambda m: m.at)


def covering(moment: Moment, clips: Sequence[ClipSpan]) -> ClipSpan | None:
    """The clip that shows the moment best: it covers it, with the most room around it."""
    inside = [c for c in clips if c.start <= moment.at <= c.end]
    return max(inside, key=lambda c: min(moment.at - c.start, c.end - moment.at), default=None)


def _keyframe_at(begin: float, keyframes: Sequence[float] | None) -> float:
    if not keyframes:
        return begin
    earlier = [k for k in keyframes if k <= begin + 1e-6]
    return max(earlier) if earlier else min(keyframes)


def _cuts(chosen: Iterable[tuple[Moment, ClipSpan]], keyframes: Mapping[str, Sequence[float]],
          lead: float, tail: float) -> list[Cut]:
    cuts: list[Cut] = []
    for moment, clip in sorted(chosen, key=lambda mc: (mc[1].start, mc[0].at)):
        offset = moment.at - clip.start
        begin = _keyframe_at(max(0.0, offset - lead), keyframes.get(clip.media_id))
        end = min(clip.duration, offset + tail)
        if end <= begin:
            continue
        previous = cuts[-1] if cuts else None
        if previous is not None and previous.clip.media_id == clip.media_id and begin <= previous.end + JOIN_GAP:
            previous.end = max(previous.end, end)
            previous.moments.append(moment)
        else:
            cuts.append(Cut(clip, begin, end, [moment]))
    return sorted(cuts, key=lambda c: c.wall)


def plan_cuts(moments: Sequence[Moment], clips: Sequence[ClipSpan], max_seconds: float,
              keyframes: Mapping[str, Sequence[float]] | None = None,
              lead: float = LEAD, tail: float = TAIL) -> list[Cut]:
    """The reel's cuts in time order, at most ``max_seconds`` in all (see the module docstring)."""
    keyframes = keyframes or {}
    shown = [(m, c) for m in moments if (c := covering(m, clips)) is not None]
    ranked = sorted(shown, key=lambda mc: (mc[0].priority, mc[0].at))[:MAX_MOMENTS]
    kept: list[tuple[Moment, ClipSpan]] = []
    plan: list[Cut] = []
    for candidate in ranked:
        trial = _cuts([*kept, candidate], keyframes, lead, tail)
        if sum(c.length for c in trial) <= max_seconds + 1e-6:
            kept.append(candidate)
            plan = trial
    if not plan and ranked:  # even the best moment alone is longer than the bound: it is trimmed
        plan = _cuts(ranked[:1], keyframes, lead, tail)[:1]
        if plan:
            plan[0].end = min(plan[0].end, plan[0].begin + max_seconds)
    return plan


def timelapse_picks(count: int, max_seconds: float, fps: float) -> list[int]:
    """Indexes of the frames (of ``count``, in time order) a time-lapse at ``fps`` of at most ``max_seconds`` shows:
    all of them when they fit, else evenly spread ones, always the first and the last."""
    room = max(1, int(max_seconds * fps))
    if count <= room:
        return list(range(count))
    if room == 1:
        return [0]
    return sorted({round(i * (count - 1) / (room - 1)) for i in range(room)})


def day_bounds(day: str) -> tuple[float, float]:
    """A day (``YYYY-MM-DD``, device local time) as unix seconds [start, end)."""
    date = dt.date.fromisoformat(day)
    start = dt.datetime.combine(date, dt.time())
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def day_of(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall).date().isoformat()


def next_run(now: float, at: str) -> float:
    """The next wall time (unix s, after ``now``) at local ``HH:MM``."""
    hour, minute = (int(part) for part in at.split(":"))
    today = dt.datetime.fromtimestamp(now).replace(hour=hour, minute=minute, second=0, microsecond=0)
    run = today if today.timestamp() > now else today + dt.timedelta(days=1)
    return run.timestamp()
