"""The diary feature: the dog's day from the event log, stored per finished day, and "unusual for her".

I/O around the pure :mod:`edge.behaviour.diary` and :mod:`edge.behaviour.unusual`, on the event loop:

- ``get_diary`` (WebSocket, MQTT, ``GET /api/diary?day=``): today is built live from the log up to now;
  a finished day is built once and kept in the store's meta (``diary:YYYY-MM-DD``), then served from there.
- Once after each local midnight the day that ended is built, stored and published as retained state
  ``diary`` (MQTT ``{prefix}/{id}/diary``); at start the last finished day is published the same way.
- At the end of every hour the day's figures so far (``figures_until`` from the log, active minutes
  from the day's analytics) are kept in meta (``figures:YYYY-MM-DD``, hour -> figures), judged against
  the same weekdays before, and each finding is an ``unusual_activity`` event (dated just before the
  hour's end, so it belongs to the day it judges). Raised findings are kept in meta (``unusual:DAY``).

The log is read in pages of :data:`PAGE` with a yield to the loop between pages; the diary itself is
built on a worker thread. The diary's ``media`` field is filled by the media feature's events
(``highlights_saved``, ``timelapse_saved`` with ``media_id`` and ``url``), read from the log like the rest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

import orjson

from edge.behaviour import unusual
from edge.behaviour.diary import DIARY_TYPES, DiaryRules, build_diary, figures_until
from edge.config import Config
from edge.core.commands import Command
from edge.core.feature import Feature
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.util import clock

if TYPE_CHECKING:
    from edge.core.feature import Host

log = logging.getLogger(__name__)

PAGE = 500
LOOKBACK = 12 * 3600.0   # a span that began before midnight: read this much of the day before
FIRST_DAY_KEY = "figures:first"


def day_start(day: str) -> float:
    """Local midnight at the start of ``day`` (device local time, as the analytics count days)."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time()).timestamp()


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).date().isoformat()


def shift(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def next_hour(ts: float) -> float:
    here = dt.datetime.fromtimestamp(ts).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    return here.timestamp()


class DiaryFeature(Feature):
    name = "diary"

    def __init__(self, config: Config) -> None:
        self.rules = DiaryRules(min_away=config.diary_min_away_seconds, min_rest=config.diary_min_rest_seconds,
                                min_zone=config.diary_min_zone_seconds)
        self._tasks: list[asyncio.Task] = []
        self.built = 0          # diaries built from the log (telemetry)
        self.findings = 0       # unusual_activity events raised

    def attach(self, host: Host) -> None:
        self.host = host
        host.handle("get_diary", self._cmd_get_diary)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    # --- reading the log ---
    async def _events(self, start: float, end: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.host.store.events_between(start, end, DIARY_TYPES, after_seq=after, limit=PAGE)
            out += page
            if len(page) < PAGE:
                return out
            after = page[-1]["seq"]
            await asyncio.sleep(0)   # other work on the loop goes first between pages

    async def diary(self, day: str, now: float | None = None) -> dict[str, Any]:
        """The diary of ``day``: stored when it is a finished day already built, else built now."""
        now = clock.now() if now is None else now
        start, end = day_start(day), day_start(shift(day, 1))
        final = end <= now
        stored = self.host.store.get_meta(f"diary:{day}") if final else None
        if isinstance(stored, dict):
            return stored
        events = await self._events(start - LOOKBACK, min(end, now))
        diary = await asyncio.to_thread(build_diary, events, day, start, max(start, min(end, now)), None, self.rules)
        diary |= {"final": final, "computed_at": round(now, 3)}
        self.built += 1
        if final:
            try:
                self.host.store.set_meta(f"diary:{day}", diary)
            except sqlite3.Error as exc:   # a full disk: answered all the same, stored another time
                log.warning("diary of %s not stored: %s", day, exc)
        return diary

    # --- commands ---
    async def _cmd_get_diary(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        now = clock.now()
        day = command.args["day"] or day_of(now)
        diary = await self.diary(day, now)
        first = self.host.store.get_meta(FIRST_DAY_KEY)
        return {"diary": {**diary, "baseline": {
            "learning_days_left": unusual.learning_days_left(day, first if isinstance(first, str) else None),
            "rule": unusual.RULE}}}

    # --- the clock: hours and midnights ---
    async def _run(self) -> None:
        try:
            await self._publish_last_finished(clock.now())
        except Exception:
            log.exception("diary: the last finished day could not be published")
        while True:
            boundary = next_hour(clock.now())
            await asyncio.sleep(clock.real_seconds(max(0.0, boundary - clock.now()) + 1.0))
            try:
                await self.hour_ended(boundary)
            except Exception:
                log.exception("diary: the hour's figures could not be judged")

    async def _publish_last_finished(self, now: float) -> None:
        yesterday = shift(day_of(now), -1)
        diary = await self.diary(yesterday, now)
        self.host.publish_retained("diary", orjson.dumps(diary))

    async def hour_ended(self, boundary: float) -> None:
        """Figures up to ``boundary`` (an hour's end), judged; at midnight the day is built and published."""
        day = day_of(boundary - 1.0)
        hour = dt.datetime.fromtimestamp(boundary - 1.0).hour
        figures = await self.figures(day, boundary)
        stored = self.host.store.get_meta(f"figures:{day}") or {}
        stored[str(hour)] = figures
        self.host.store.set_meta(f"figures:{day}", stored)
        if not isinstance(self.host.store.get_meta(FIRST_DAY_KEY), str):
            self.host.store.set_meta(FIRST_DAY_KEY, day)
        for finding in self.judge(day, hour, figures):
            self.host.publish(messages.event(EventType.UNUSUAL_ACTIVITY, finding.data(), ts=boundary - 0.001))
        if day_of(boundary) != day:   # midnight: the day is over
            await self._publish_last_finished(boundary + 1.0)

    async def figures(self, day: str, until: float) -> dict[str, float]:
        start = day_start(day)
        figures = figures_until(await self._events(start - LOOKBACK, until), start, until)
        analytics = self.host.store.get_meta(f"analytics:{day}")
        if isinstance(analytics, dict) and isinstance(analytics.get("activity_seconds"), int | float):
            figures["active_minutes"] = round(analytics["activity_seconds"] / 60, 1)
        return figures

    def judge(self, day: str, hour: int, figures: dict[str, float]) -> list[unusual.Finding]:
        first = self.host.store.get_meta(FIRST_DAY_KEY)
        history = {d: v for d in (shift(day, -7 * w) for w in range(1, unusual.BASELINE_WEEKS + 1))
                   if isinstance(v := self.host.store.get_meta(f"figures:{d}"), dict)}
        raised = {tuple(x) for x in self.host.store.get_meta(f"unusual:{day}") or []}
        found = unusual.judge(day, hour, figures, history, raised,
                              first_day=first if isinstance(first, str) else None)
        if found:
            self.findings += len(found)
            self.host.store.set_meta(f"unusual:{day}", sorted(raised | {(f.metric, f.direction) for f in found}))
        return found

    def telemetry(self) -> dict[str, Any]:
        return {"built": self.built, "unusual": self.findings}
