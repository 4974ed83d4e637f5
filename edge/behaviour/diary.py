"""The dog's day as a person reads it: episodes built from one day's event log, with their figures.

Pure logic, no I/O, no clock of its own: :func:`build_diary` takes the day's events (as stored: ``type``,
``ts``, ``seq``, ``data``) and the day's bounds, and returns the story in order. Rules, each from what the
device already reports (no detector work):

- **seen / out of view**: ``dog_detected`` opens a presence span, ``dog_left`` closes it at the moment the dog
  was last seen (``ts - absent_seconds``); gaps of at least ``MIN_AWAY_SECONDS`` between spans are "out of view".
- **posture**: each ``sit``/``stand``/``lie`` event starts a posture at its ``since``; it lasts until the next
  posture event or the end of presence. A lying span of at least ``MIN_REST_SECONDS`` is a "resting" episode,
  named with the zone the dog was in for most of it.
- **zones**: ``zone_enter``/``zone_exit`` give stays (a stay still open at the end of the data ends there);
  the zone totals are the stays' time within the day, and a stay of at least ``min_zone`` is a "zone" episode.
- **barking**: bark events (``bark``, ``howl``, ``whimper``; ``continuous_barking`` only marks an episode that
  went on) closer than ``BARK_GAP_SECONDS`` form one episode: "barked 12 times in 3 min".
- **fetch**: ``fetch_return`` events closer than ``FETCH_GAP_SECONDS`` form one play session.
- **bookmarks**: each ``bookmark_created`` with its label.
- **snapshots**: each episode gets its best ``snapshot_saved`` taken within it (2 s either side): one taken for
  the event that opened the episode (``event_type`` of the snapshot), else the one nearest its middle.
- **media**: ``highlights_saved`` / ``timelapse_saved`` events of the day (the media feature's reel and
  time-lapse) fill ``media = {"highlights": {"media_id", "url"} | None, "timelapse": {…} | None}``.
- **unusual**: the day's ``unusual_activity`` events, as they were sent.

The thresholds are a :class:`DiaryRules` (``DOGMON_DIARY_MIN_*`` on the device).

Spans that began the day before are clipped to the day's start by the caller passing ``day_start``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MIN_AWAY_SECONDS = 60.0
MIN_REST_SECONDS = 10 * 60.0
MIN_ZONE_SECONDS = 60.0
BARK_GAP_SECONDS = 120.0
FETCH_GAP_SECONDS = 300.0
POSTURES = ("sit", "stand", "lie")
BARK_TYPES = ("bark", "howl", "whimper")
MEDIA_TYPES = {"highlights_saved": "highlights", "timelapse_saved": "timelapse"}
# what the diary reads from the log (the rest of the log tells it nothing)
DIARY_TYPES = ("dog_detected", "dog_left", *POSTURES, "zone_enter", "zone_exit", *BARK_TYPES, "fetch_return",
               "bookmark_created", "snapshot_saved", "unusual_activity", *MEDIA_TYPES)
# the event a snapshot should illustrate for each episode kind (the best picture of it)
SNAPSHOT_OF = {"seen": ("dog_detected",), "resting": ("lie",), "zone": ("zone_enter", "zone_dwell"),
               "barking": BARK_TYPES, "fetch": ("fetch_return",), "bookmark": ("request", "bookmark_created")}


@dataclasses.dataclass(frozen=True, slots=True)
class DiaryRules:
    """How long a thing must last to be an episode of its own."""

    min_away: float = MIN_AWAY_SECONDS    # out of view between two presence spans
    min_rest: float = MIN_REST_SECONDS    # lying down
    min_zone: float = MIN_ZONE_SECONDS    # a stay in one zone


@dataclasses.dataclass(slots=True)
class Episode:
    kind: str            # seen, away, resting, barking, fetch, bookmark, zone
    start: float
    end: float
    text: str
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    snapshot: dict[str, Any] | None = None   # {"media_id", "thumb_url", "url"} of the episode's snapshot

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "seconds": round(self.end - self.start, 1), "figures": self.figures, "snapshot": self.snapshot}


def duration_text(seconds: float) -> str:
    """``2 h 20 min``, ``12 min``, ``40 s``: as a person says it, never more precise than it matters."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _spans(events: list[Mapping[str, Any]], day_start: float, day_end: float) -> list[tuple[float, float]]:
    """Presence spans (start, end) within the day."""
    spans: list[tuple[float, float]] = []
    opened: float | None = None
    for ev in events:
        if ev["type"] == "dog_detected" and opened is None:
            opened = float(ev["ts"])
        elif ev["type"] == "dog_left":
            last_seen = float(ev["ts"]) - float(ev["data"].get("absent_seconds") or 0.0)
            start = opened if opened is not None else max(day_start, last_seen - float(
                ev["data"].get("present_seconds") or 0.0))
            spans.append((max(start, day_start), max(min(last_seen, day_end), start)))
            opened = None
    if opened is not None:
        spans.append((opened, day_end))
    return spans


def _zone_stays(events: list[Mapping[str, Any]], day_end: float) -> list[tuple[str, float, float]]:
    stays: list[tuple[str, float, float]] = []
    open_zones: dict[str, float] = {}
    for ev in events:
        data = ev["data"]
        if ev["type"] == "zone_enter":
            open_zones[str(data["zone"])] = float(data.get("entered_at") or ev["ts"])
        elif ev["type"] == "zone_exit":
            zone = str(data["zone"])
            start = open_zones.pop(zone, data.get("entered_at"))
            if start is not None:
                stays.append((zone, float(start), float(data.get("exited_at") or ev["ts"])))
    stays += [(zone, start, day_end) for zone, start in open_zones.items()]
    return sorted(stays, key=lambda s: s[1])


def _postures(events: list[Mapping[str, Any]], spans: list[tuple[float, float]],
              day_end: float) -> list[tuple[str, float, float]]:
    """(posture, start, end): each posture lasts until the next one or the end of its presence span."""
    changes = [(str(ev["type"]), float(ev["data"].get("since") or ev["ts"])) for ev in events
               if ev["type"] in POSTURES]
    out = []
    for i, (posture, start) in enumerate(changes):
        end = changes[i + 1][1] if i + 1 < len(changes) else day_end
        span_end = next((e for s, e in spans if s <= start <= e), None)
        if span_end is not None:
            end = min(end, span_end)
        if end > start:
            out.append((posture, start, end))
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _groups(events: Iterable[Mapping[str, Any]], gap: float) -> list[list[Mapping[str, Any]]]:
    groups: list[list[Mapping[str, Any]]] = []
    for ev in events:
        if groups and float(ev["ts"]) - float(groups[-1][-1]["ts"]) <= gap:
            groups[-1].append(ev)
        else:
            groups.append([ev])
    return groups


def _sorted(events: Iterable[Mapping[str, Any]], day_start: float, day_end: float) -> list[Mapping[str, Any]]:
    return sorted((e for e in events if day_start - 86400 <= float(e["ts"]) < day_end),
                  key=lambda e: (float(e["ts"]), e.get("seq") or 0))


def build_diary(events: Iterable[Mapping[str, Any]], day: str, day_start: float, day_end: float,
                clock: Callable[[float], str] | None = None, rules: DiaryRules = DiaryRules()) -> dict[str, Any]:
    """The diary of ``day`` from its events (in seq order); ``clock(ts) -> "HH:MM"`` formats times.

    ``day_end`` may be "now" for today so far: open spans end there."""
    evs = _sorted(events, day_start, day_end)
    fmt = clock or _hhmm
    spans = _spans(evs, day_start, day_end)
    in_day = [e for e in evs if float(e["ts"]) >= day_start]
    stays = _zone_stays(evs, day_end)
    postures = _postures(evs, spans, day_end)
    episodes: list[Episode] = []

    for start, end in spans:
        episodes.append(Episode("seen", start, end, f"{fmt(start)}–{fmt(end)} in view ({duration_text(end - start)})",
                                {"seconds": round(end - start, 1)}))
    for (_, prev_end), (next_start, _) in zip(spans, spans[1:], strict=False):
        if next_start - prev_end >= rules.min_away:
            episodes.append(Episode("away", prev_end, next_start,
                                    f"{fmt(prev_end)}–{fmt(next_start)} out of view"))
    for posture, start, end in postures:
        if posture == "lie" and end - start >= rules.min_rest:
            zone = max(((z, _overlap(start, end, s, e)) for z, s, e in stays), key=lambda x: x[1], default=(None, 0))
            where = f" in {zone[0]}" if zone[0] and zone[1] > 0 else ""
            episodes.append(Episode("resting", start, end, f"{fmt(start)}–{fmt(end)} lying down{where} "
                                    f"({duration_text(end - start)})", {"zone": zone[0] if where else None}))
    for name, start, end in stays:
        if end - start >= rules.min_zone and end > day_start:
            start = max(start, day_start)
            episodes.append(Episode("zone", start, end, f"{fmt(start)}–{fmt(end)} in {name} "
                                    f"({duration_text(end - start)})", {"zone": name}))
    barks = [e for e in in_day if e["type"] in BARK_TYPES]
    for group in _groups(barks, BARK_GAP_SECONDS):
        start = float(group[0]["data"].get("start") or group[0]["ts"])
        end = max(_bark_end(e) for e in group)
        count = sum(int(e["data"].get("barks") or 1) for e in group)
        episodes.append(Episode("barking", start, end, f"{fmt(start)} barked {count} times in "
                                f"{duration_text(max(end - start, 1))}", {"barks": count, "episodes": len(group)}))
    fetches = [e for e in in_day if e["type"] == "fetch_return"]
    for group in _groups(fetches, FETCH_GAP_SECONDS):
        start, end = float(group[0]["ts"]), float(group[-1]["ts"])
        n = len(group)
        episodes.append(Episode("fetch", start, end, f"{fmt(start)} {n} fetch return{'s' if n != 1 else ''}",
                                {"returns": n}))
    for ev in (e for e in in_day if e["type"] == "bookmark_created"):
        label = str(ev["data"].get("label") or "")
        episodes.append(Episode("bookmark", float(ev["ts"]), float(ev["ts"]),
                                f"{fmt(float(ev['ts']))} bookmark" + (f": {label}" if label else ""),
                                {"label": label}))
    _attach_snapshots(episodes, [e for e in in_day if e["type"] == "snapshot_saved"])
    episodes.sort(key=lambda ep: (ep.start, ep.kind))
    media: dict[str, Any] = {"highlights": None, "timelapse": None}
    for ev in (e for e in in_day if e["type"] in MEDIA_TYPES):
        media[MEDIA_TYPES[str(ev["type"])]] = {"media_id": ev["data"].get("media_id"), "url": ev["data"].get("url")}
    return {"day": day, "episodes": [ep.as_dict() for ep in episodes],
            "totals": _totals(spans, stays, postures, barks, fetches, in_day, day_start, day_end),
            "media": media,
            "unusual": [{"ts": float(e["ts"]), "seq": e.get("seq"), **e["data"]}
                        for e in in_day if e["type"] == "unusual_activity"]}


def _bark_end(event: Mapping[str, Any]) -> float:
    """When the barking stopped: its start plus its length where the event says them (the event itself is
    sent a little later, once the quiet after it is sure), else the event's time."""
    data = event["data"]
    if isinstance(data.get("start"), int | float) and isinstance(data.get("duration_s"), int | float):
        return float(data["start"]) + float(data["duration_s"])
    return float(event["ts"])


def _attach_snapshots(episodes: list[Episode], snapshots: list[Mapping[str, Any]]) -> None:
    for ep in episodes:
        middle = (ep.start + ep.end) / 2
        best: tuple[int, float] | None = None
        for snap in snapshots:
            taken = float(snap["data"].get("captured") or snap["ts"])
            # out of view: only a picture from before the return (whose snapshot shows a dog that was not there)
            inside = ep.start <= taken < ep.end if ep.kind == "away" else ep.start - 2.0 <= taken <= ep.end + 2.0
            if not inside:
                continue
            rank = (0 if snap["data"].get("event_type") in SNAPSHOT_OF.get(ep.kind, ()) else 1, abs(taken - middle))
            if best is None or rank < best:
                best, data = rank, snap["data"]
                ep.snapshot = {"media_id": data.get("media_id"), "url": data.get("url"),
                               "thumb_url": data.get("thumb_url")}


def figures_until(events: Iterable[Mapping[str, Any]], day_start: float, until: float) -> dict[str, float]:
    """What the day held from its start up to ``until``: minutes seen and lying, barking episodes (as the
    diary groups them) and zone visits; the baseline of "unusual for her" compares these."""
    evs = _sorted(events, day_start, until)
    spans = _spans(evs, day_start, until)
    postures = _postures(evs, spans, until)
    in_day = [e for e in evs if float(e["ts"]) >= day_start]
    barks = [e for e in in_day if e["type"] in BARK_TYPES]
    return {
        "seen_minutes": round(sum(_overlap(s, e, day_start, until) for s, e in spans) / 60, 1),
        "lying_minutes": round(sum(_overlap(s, e, day_start, until) for p, s, e in postures if p == "lie") / 60, 1),
        "bark_episodes": float(len(_groups(barks, BARK_GAP_SECONDS))),
        "zone_visits": float(sum(1 for e in in_day if e["type"] == "zone_enter")),
    }


def _totals(spans: list[tuple[float, float]], stays: list[tuple[str, float, float]],
            postures: list[tuple[str, float, float]], barks: list[Mapping[str, Any]],
            fetches: list[Mapping[str, Any]], in_day: list[Mapping[str, Any]],
            day_start: float, day_end: float) -> dict[str, Any]:
    def clip(s: float, e: float) -> float:
        return _overlap(s, e, day_start, day_end)

    zone_seconds: dict[str, float] = {}
    for zone, s, e in stays:
        zone_seconds[zone] = round(zone_seconds.get(zone, 0.0) + clip(s, e), 1)
    posture_seconds: dict[str, float] = {}
    for posture, s, e in postures:
        posture_seconds[posture] = round(posture_seconds.get(posture, 0.0) + clip(s, e), 1)
    bark_seconds = sum(float(e["data"].get("duration_s") or 0.0) for e in barks)
    return {
        "seen_seconds": round(sum(clip(s, e) for s, e in spans), 1),
        "zone_seconds": zone_seconds,
        "posture_seconds": posture_seconds,
        "barking_minutes": round(bark_seconds / 60.0, 1),
        "barks": sum(int(e["data"].get("barks") or 1) for e in barks),
        "fetch_returns": len(fetches),
        "bookmarks": [str(e["data"].get("label") or "") for e in in_day if e["type"] == "bookmark_created"],
    }


def _hhmm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M")
