"""The day's highlight reel and time-lapse: when they are made, the low-priority builder thread, rows and events.

Each day at ``DOGMON_HIGHLIGHTS_AT`` (device local time; ``off``: never on its own) and on ``make_highlights``
(any day; default today so far) the loop gathers the day's moments from the event log and the day's clips from
the media index (small SQLite reads), then hands the work to ``media-daily``, a :class:`LowPriorityThread`
(nice 10 on that thread only: Linux schedules threads, so ``os.setpriority`` on its native id lowers it alone,
and FFmpeg threads it starts inherit it; every codec runs with one thread). There :mod:`edge.media.reel`
plans and :mod:`edge.media.reelmaker` cuts and encodes, streaming. Back on the loop each video's index row is
committed (kinds ``highlights`` and ``timelapse``, label = the day; clips' retention applies) and only then
``highlights_saved`` / ``timelapse_saved`` is published. One build at a time; another request gets ``busy``.

For the diary: :meth:`edge.media.index.MediaIndex.day_media` (``MediaFeature.day_media``) finds a day's videos.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from edge.config import Config
from edge.core.commands import Command, CommandError
from edge.media.encoder import EncoderChoice
from edge.media.index import CONTENT_TYPES, MediaRecord, new_id
from edge.media.library import MediaLibrary
from edge.media.reel import (
    MOMENT_TYPES,
    ClipSpan,
    Moment,
    covering,
    day_bounds,
    day_of,
    moments_of,
    next_run,
    plan_cuts,
    timelapse_picks,
)
from edge.media.reelmaker import keyframe_times, write_reel, write_timelapse
from edge.media.timelapse import day_frames, day_heat, remove_old_days
from edge.media.writer import JobThread, check_space
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.util import clock
from edge.util.fsutil import PART_SUFFIX, commit_file

if TYPE_CHECKING:
    from edge.core.feature import Host

log = logging.getLogger(__name__)

NICE = 10                  # the builder thread's niceness (the pipeline's threads stay at 0)
TIMELAPSE_FPS = 24.0
CLIP_LOOKBACK = 3600.0     # a clip that began this long before midnight may still show the day's first moment
MOMENT_EVENTS = tuple(MOMENT_TYPES)


class LowPriorityThread(JobThread):
    """Runs only on a core the live pipeline leaves idle: Linux's ``SCHED_IDLE`` policy for this thread, and
    nice 10 as well (where SCHED_IDLE is refused, the nice value alone still lowers its share). Nice alone was
    measured not to be enough: on two busy cores the reel build still took ~0.07 off the pipeline's ratio
    (``python -m edge.tools.bench --while-reel``), because a niced thread keeps a share of the core."""

    def run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except (OSError, AttributeError) as exc:  # not Linux: the work still runs, at normal priority
            log.info("media: the daily builder runs at normal priority (%s)", exc)
        try:   # pid 0: this thread only (a Linux thread is its own task)
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError) as exc:
            log.info("media: the daily builder is not on the idle scheduling class (%s)", exc)
        super().run()


@dataclasses.dataclass(frozen=True)
class Built:
    kind: str                 # "highlights" or "timelapse"
    media_id: str
    file: str
    bytes: int
    result: dict[str, Any]    # what the event says besides the common fields


def day_events(db: sqlite3.Connection, start: float, end: float) -> list[dict[str, Any]]:
    """The day's moment events as stored (``event_type``, ``ts``, ``seq``, ``data``)."""
    rows = db.execute(f"SELECT seq, ts, event_type, payload FROM events WHERE ts >= ? AND ts < ? "
                      f"AND event_type IN ({','.join('?' * len(MOMENT_EVENTS))}) ORDER BY seq",
                      (start, end, *MOMENT_EVENTS))
    return [{"seq": seq, "ts": ts, "event_type": kind, "data": orjson.loads(payload).get("data") or {}}
            for seq, ts, kind, payload in rows]


def _commit(folder: Path, kind: str, write: Callable[[Path], dict[str, Any]], reserve: int) -> Built:
    media_id = new_id(kind)
    part, final = folder / f".{media_id}{PART_SUFFIX}.mp4", folder / f"{media_id}.mp4"
    check_space(folder, 16 * 2**20, reserve)  # a 60 s reel at 640×480 is ≈ 10 MB
    try:
        result = write(part)
        commit_file(part, final)
    finally:
        with contextlib.suppress(OSError):
            part.unlink()
    return Built(kind, media_id, final.name, final.stat().st_size, result)


def build_reel(moments: list[Moment], clips: list[ClipSpan], folder: Path, encoder: EncoderChoice | None,
               max_seconds: float, fps: float, reserve: int) -> Built | None:
    """Builder thread: the reel of the moments that clips show (None: no moment has a clip)."""
    started = time.thread_time()
    shown_by = {c.media_id for m in moments if (c := covering(m, clips)) is not None}
    keyframes = {}
    for clip in clips:
        if clip.media_id in shown_by:
            try:
                keyframes[clip.media_id] = keyframe_times(Path(clip.file))
            except Exception as exc:  # a damaged clip is left out
                log.warning("media: clip %s left out of the reel: %s", clip.media_id, exc)
    usable = [c for c in clips if c.media_id in keyframes]
    cuts = plan_cuts(moments, usable, max_seconds, keyframes)
    if not cuts:
        return None
    built = _commit(folder, "highlights", lambda part: write_reel(cuts, part, encoder, fps), reserve)
    shown = sorted((m for c in cuts for m in c.moments), key=lambda m: m.at)
    candidates = sum(1 for m in moments if covering(m, usable) is not None)
    built.result.update(moments=[m.describe() for m in shown], left_out=candidates - len(shown),
                        cpu_seconds=round(time.thread_time() - started, 3))
    return built


def build_timelapse(day: str, media: Path, encoder: EncoderChoice | None, max_seconds: float, heatmap: bool,
                    reserve: int) -> Built | None:
    """Builder thread: the day's time-lapse (None: no frame, or no encoder)."""
    started = time.thread_time()
    frames = day_frames(media, day)
    if not frames or encoder is None:
        return None
    picked = [frames[i] for i in timelapse_picks(len(frames), max_seconds, TIMELAPSE_FPS)]
    heat = day_heat(media, day) if heatmap else None
    built = _commit(media, "timelapse",
                    lambda part: write_timelapse(picked, part, encoder, TIMELAPSE_FPS, heat), reserve)
    built.result.update(first=round(picked[0][0], 3), last=round(picked[-1][0], 3), heatmap=heat is not None,
                        cpu_seconds=round(time.thread_time() - started, 3))
    return built


def build_day(day: str, moments: list[Moment], clips: list[ClipSpan], folder: Path, encoder: EncoderChoice | None,
              config: Config, fps: float, reserve: int) -> list[Built | None]:
    """Builder thread: the day's reel, then its time-lapse, then old time-lapse days removed (the device's job;
    ``python -m edge.tools.bench --while-reel`` runs it too)."""
    built = [build_reel(moments, clips, folder, encoder, config.highlights_max_seconds, fps, reserve),
             build_timelapse(day, folder, encoder, config.timelapse_max_seconds, config.timelapse_heatmap, reserve)]
    remove_old_days(folder, day_of(clock.now()))
    return built


class DailyMedia:
    def __init__(self, config: Config, folder: Path, library: MediaLibrary, reserve: int, fps: float,
                 encoder: Callable[[], EncoderChoice | None]) -> None:
        self.config, self.folder, self.library, self.reserve, self.fps = config, folder, library, reserve, fps
        self.encoder = encoder
        self.builder = LowPriorityThread("media-daily", 2)
        self.building = False
        self.made = 0

    def attach(self, host: Host) -> None:
        self.host = host
        host.handle("make_highlights", self.command)

    def start(self) -> list[asyncio.Task]:
        self.builder.start()
        return [asyncio.create_task(self.schedule_loop())] if self.config.highlights_at != "off" else []

    async def stop(self) -> None:
        self.builder.stop()

    async def command(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return await self.make(command.args["day"] or day_of(clock.now()))

    async def schedule_loop(self) -> None:
        while True:
            when = next_run(clock.now(), self.config.highlights_at)
            while (left := when - clock.now()) > 0:  # short sleeps: a clock set forward is noticed
                await asyncio.sleep(min(clock.real_seconds(left), 600.0))
            try:
                await self.make(day_of(when))
            except CommandError as exc:
                log.warning("media: the day's highlights were not made: %s", exc)

    async def make(self, day: str) -> dict[str, Any]:
        if self.building:
            raise CommandError("busy", "a highlight reel is being made; try again once it is saved")
        self.building = True
        try:
            return await self._make(day)
        finally:
            self.building = False

    async def _make(self, day: str) -> dict[str, Any]:
        start, end = day_bounds(day)
        index = self.library.index
        assert index is not None
        moments = moments_of(self.host.store.table(lambda db: day_events(db, start, end)))
        clips = [ClipSpan(r.id, str(self.folder / r.file), r.start or r.created, r.duration or 0.0)
                 for r in index.clips_between(start - CLIP_LOOKBACK, end)]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Built | None]] = loop.create_future()
        encoder, config = self.encoder(), self.config

        def job() -> None:
            try:
                built = build_day(day, moments, clips, self.folder, encoder, config, self.fps, self.reserve)
            except Exception as exc:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, built, None)

        if not self.builder.submit(job, timeout=0.1):
            raise CommandError("busy", "the daily builder is busy; try again")
        try:
            reel, lapse = await future
        except OSError as exc:
            raise CommandError("storage_failed", f"the day's highlights were not saved: {exc}") from None
        reply: dict[str, Any] = {"day": day, "highlights": None, "timelapse": None}
        for built in (reel, lapse):
            if built is not None:
                reply[built.kind] = self._saved(built, day, start)
        log.info("media: %s made (highlights %s, time-lapse %s)", day, reply["highlights"] is not None,
                 reply["timelapse"] is not None)
        return reply

    def _saved(self, built: Built, day: str, start: float) -> dict[str, str]:
        """Loop: index the video (retention like clips), then announce it."""
        result = built.result
        record = MediaRecord(built.media_id, built.kind, built.media_id, clock.now(), built.file, built.bytes,
                             CONTENT_TYPES["mp4"], result["width"], result["height"], start, result["duration"],
                             None, day)
        try:
            self.library.add([record])
        except sqlite3.Error as exc:
            raise CommandError("storage_failed", f"the {built.kind} video's index row was not stored: {exc}") from None
        url = f"/media/{built.media_id}"
        data = {"media_id": built.media_id, "url": url, "day": day, "bytes": built.bytes,
                "content_type": record.content_type, **result}
        if built.kind == "timelapse":
            data["interval"] = self.config.timelapse_seconds
        kind = EventType.HIGHLIGHTS_SAVED if built.kind == "highlights" else EventType.TIMELAPSE_SAVED
        self.host.publish(messages.event(kind, data))
        self.library.schedule_retention()
        self.made += 1
        return {"media_id": built.media_id, "url": url}


def _settle(future: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)
