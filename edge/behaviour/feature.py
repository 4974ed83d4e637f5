"""The behaviour feature: zones, fetch_return, heat map, activity and analytics wired into the device.

This is the one module of ``edge.behaviour`` that does I/O; the rules live in the pure modules next
to it. Threads: :meth:`process` and :meth:`idle` run on the inference thread and only return
messages (the bus posts them) or hand small values to the loop with ``call_soon_threadsafe``;
commands, the bus listener, analytics and persistence run on the event loop.

- Zones are stored in ``DOGMON_DATA_DIR/zones.json`` (temp file + fsync + rename), loaded at start,
  set with ``set_zones``, read with ``get_zones``, sent in the ``connection`` message and as a
  ``zones`` overlay (with occupancy) whenever they or their occupancy change; mirrored retained on
  ``{prefix}/{id}/zones``.
- ``heatmap`` overlays go out every ``DOGMON_HEATMAP_INTERVAL`` s while the dog is around and on
  ``get_heatmap``; mirrored retained on ``{prefix}/{id}/heatmap``.
- ``analytics`` messages go out at most every ``DOGMON_ANALYTICS_INTERVAL`` s when today's figures
  changed, and answer ``get_analytics``; persisted in the event store's meta table
  (``analytics:YYYY-MM-DD``) and mirrored retained on ``{prefix}/{id}/analytics``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from edge.behaviour.analytics import DailyAnalytics
from edge.behaviour.fetch import FetchDetector
from edge.behaviour.heatmap import ActivityMeter, HeatMap
from edge.behaviour.zones import ZoneChange, ZoneTracker, ground_point, paws_of
from edge.config import Config
from edge.core.commands import Command, CommandError
from edge.core.feature import Feature, FrameContext
from edge.protocol import messages
from edge.protocol.messages import EventType, Message, MessageType, OverlayType
from edge.protocol.zones import Zone, ZoneError, parse_zones
from edge.util import clock
from edge.util.fsutil import atomic_write, private_dir

if TYPE_CHECKING:
    from edge.core.feature import Host

log = logging.getLogger(__name__)

ZONES_FILE = "zones.json"
CHANGE_EVENTS = {"enter": EventType.ZONE_ENTER, "exit": EventType.ZONE_EXIT, "dwell": EventType.ZONE_DWELL}
STATE_INTERVAL = 10.0   # seconds between activity updates of the device state (it is retained on MQTT)


# --- zones file ---

def load_zones(path: Path) -> tuple[Zone, ...]:
    """The saved zones; none when the file is missing or unreadable (logged, never fatal)."""
    try:
        raw = orjson.loads(path.read_bytes())
        return parse_zones(raw.get("zones") if isinstance(raw, dict) else raw)
    except FileNotFoundError:
        return ()
    except (OSError, orjson.JSONDecodeError, ZoneError) as exc:
        log.error("zones file %s is unreadable (%s); starting with no zones", path, exc)
        return ()


def save_zones(path: Path, zones: tuple[Zone, ...]) -> None:
    """Write atomically: a reader (or a power cut) sees the old file or the new one, never half."""
    private_dir(path.parent)
    atomic_write(path, orjson.dumps({"version": 1, "zones": [z.to_dict() for z in zones]},
                                    option=orjson.OPT_INDENT_2))


class BehaviourFeature(Feature):
    name = "behaviour"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.zones_path = config.data_dir / ZONES_FILE
        self.zones: tuple[Zone, ...] = ()
        # inference-thread state
        self.zone_tracker = ZoneTracker(inertia=config.zone_inertia_frames)
        self.fetch = FetchDetector(carry_frames=config.fetch_carry_frames, growth=config.fetch_growth)
        self.heatmap = HeatMap(window_minutes=config.heatmap_window_minutes)
        self.activity = ActivityMeter()
        self.lock = threading.Lock()            # guards the heat map and the hand-over fields below
        self._pending_zones: tuple[Zone, ...] | None = None
        self._activity_summary: dict[str, Any] = {"movement_per_minute": 0.0, "level": "resting"}
        self._last_heatmap = 0.0
        self._heatmap_dirty = False
        self._last_state = 0.0
        self.fetch_returns = 0
        self._carrying: list[int] = []
        # loop-thread state
        self.analytics = DailyAnalytics()
        self._zones_view: list[dict[str, Any]] = []
        self._last_analytics: dict[str, Any] | None = None
        self._persist_failing: str | None = None  # why analytics could not be saved, during a spell
        self._tasks: list[asyncio.Task] = []
        self._save_lock = asyncio.Lock()   # set_zones requests are saved one at a time

    # --- lifecycle (loop) ---
    def attach(self, host: Host) -> None:
        self.host = host
        self.analytics.load = lambda day: host.store.get_meta(f"analytics:{day}")
        self.zones = load_zones(self.zones_path)
        self.zone_tracker.set_zones(self.zones)
        self._zones_view = self._view(self.zones, {})
        host.handle("set_zones", self._cmd_set_zones)
        host.handle("get_zones", self._cmd_get_zones)
        host.handle("get_heatmap", self._cmd_get_heatmap)
        host.handle("get_analytics", self._cmd_get_analytics)
        host.listen(self._on_message)
        host.store.on_recreated(self._store_recreated)
        log.info("behaviour: %d zone(s) loaded from %s", len(self.zones), self.zones_path)

    async def start(self) -> None:
        # The zones are retained state before any overlay says so (the first broker connect sends them).
        self.host.publish_retained("zones", messages.overlay(OverlayType.ZONES, {"zones": self._zones_view}))
        self._tasks.append(asyncio.create_task(self._analytics_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._analytics_tick(clock.now(), force=True)

    # --- per frame (inference thread) ---
    def process(self, ctx: FrameContext) -> list[Message]:
        out = self._apply_pending_zones(ctx.now, ctx.wall)
        width, height = ctx.size
        seen = ctx.seen_tracks()
        points = [(t.track_id, ground_point(t.box, width, height, paws_of(t))) for t in seen]
        changes = self.zone_tracker.update(points, ctx.now, ctx.wall)
        out += self._zone_messages(changes)
        return_zones: dict[int, list[str]] = {}
        for zone in self.zone_tracker.zones:
            stay = self.zone_tracker.stays[zone.name]
            if "return" in zone.roles and stay.inside and stay.track_id is not None:
                return_zones.setdefault(stay.track_id, []).append(zone.name)
        for found in self.fetch.update(seen, ctx.detections, return_zones, ctx.now, ctx.wall):
            self.fetch_returns += 1
            out.append(messages.event(EventType.FETCH_RETURN, found.data, ts=found.wall))
        with self.lock:
            self.heatmap.add([p for _, p in points], ctx.now)
            self._heatmap_dirty = self._heatmap_dirty or bool(points)
            self._carrying = self.fetch.carrying()
        self._track_activity(points[0][1] if points else None, ctx.now, ctx.wall)
        out += self._heatmap_due(ctx.now)
        return out

    def idle(self, now: float) -> list[Message]:
        wall = clock.now()
        out = self._apply_pending_zones(now, wall)
        out += self._zone_messages(self.zone_tracker.update([], now, wall))
        with self.lock:
            self.heatmap.add([], now)
        self._track_activity(None, now, wall)
        return out + self._heatmap_due(now)

    def _apply_pending_zones(self, now: float, wall: float) -> list[Message]:
        with self.lock:
            pending, self._pending_zones = self._pending_zones, None
        if pending is None:
            return []
        changes = self.zone_tracker.set_zones(pending, now, wall)
        return self._zone_messages(changes, force_overlay=True)

    def _zone_messages(self, changes: list[ZoneChange], force_overlay: bool = False) -> list[Message]:
        out = [messages.event(CHANGE_EVENTS[c.kind], c.data, ts=c.wall) for c in changes]
        if force_overlay or any(c.kind in ("enter", "exit") for c in changes):
            occupancy = self.zone_tracker.occupancy()
            out.append(messages.overlay(OverlayType.ZONES,
                                        {"zones": self._view(self.zone_tracker.zones, occupancy)}, retain="zones"))
        return out

    @staticmethod
    def _view(zones: tuple[Zone, ...], occupancy: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**z.to_dict(), **occupancy.get(z.name, {"occupied": False, "since": None})} for z in zones]

    def _track_activity(self, point: tuple[float, float] | None, now: float, wall: float) -> None:
        active = [second for second, moved in self.activity.add(point, wall) if moved > 0]
        for second in active:
            self.host.loop.call_soon_threadsafe(self.analytics.add_active_second, float(second))
        summary = self.activity.summary(wall)
        with self.lock:
            self._activity_summary = summary
        if now - self._last_state >= STATE_INTERVAL:
            self._last_state = now
            self.host.post_state(activity=summary)

    def _heatmap_due(self, now: float) -> list[Message]:
        if now - self._last_heatmap < self.config.heatmap_interval or not self._heatmap_dirty:
            return []
        self._last_heatmap = now
        with self.lock:
            self._heatmap_dirty = False
            data = self.heatmap.overlay_data(now)
        return [messages.overlay(OverlayType.HEATMAP, data, retain="heatmap")]

    # --- loop thread ---

    def _on_message(self, message: Message) -> None:
        """Bus listener: every outgoing message, on the loop, after it was delivered."""
        if message.type is MessageType.EVENT:
            self.analytics.on_event(str(message.event_type), message.data, message.ts)
        elif message.type is MessageType.OVERLAY and message.overlay_type is OverlayType.ZONES:
            self._zones_view = message.data["zones"]
            self.host.update_state(zones_occupied=[z["name"] for z in self._zones_view if z.get("occupied")])

    async def _analytics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.analytics_interval)
            try:
                self._analytics_tick(clock.now())
            except Exception:
                log.exception("analytics update failed")

    def _analytics_tick(self, now: float, force: bool = False) -> None:
        self.analytics.checkpoint(now)
        self._persist_analytics()
        report = self.analytics.report(self.analytics.day_of(now), now)
        if report != self._last_analytics or force:
            self._last_analytics = report
            self.host.publish(Message(MessageType.ANALYTICS, report, retain="analytics"))

    def _persist_analytics(self) -> None:
        """Write the changed days; on a full disk they stay in memory and are written once it has room
        (one log line per spell: the figures and their messages go on meanwhile)."""
        dirty = self.analytics.take_dirty()
        try:
            for day, totals in dirty.items():
                self.host.store.set_meta(f"analytics:{day}", totals)
        except sqlite3.Error as exc:
            self.analytics.dirty.update(dirty)
            if self._persist_failing is None:
                log.warning("analytics not saved (%s); kept in memory and saved once the disk has room", exc)
            self._persist_failing = str(exc)
            return
        if self._persist_failing is not None:
            log.info("analytics saved again")
            self._persist_failing = None

    def _store_recreated(self, detail: str) -> None:
        """The data dir was emptied under us: write the zones again so they survive the next restart."""
        async def save() -> None:
            async with self._save_lock:
                try:
                    await asyncio.to_thread(save_zones, self.zones_path, self.zones)
                except OSError as exc:
                    log.error("zones could not be saved again in %s: %s", self.zones_path.parent, exc)

        if self.zones:
            self._tasks.append(asyncio.ensure_future(save()))

    # --- commands (loop) ---
    async def _cmd_set_zones(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        zones: tuple[Zone, ...] = command.args["zones"]
        async with self._save_lock:
            try:
                await asyncio.to_thread(save_zones, self.zones_path, zones)
            except OSError as exc:
                raise CommandError("storage_failed", f"zones could not be saved in {self.zones_path.parent}: "
                                                     f"{exc}; nothing was changed") from None
            self.zones = zones
            with self.lock:
                self._pending_zones = zones   # the inference thread applies it on its next frame or idle tick
        log.info("zones set by %s: %s", context.get("transport"), ", ".join(z.name for z in zones) or "none")
        return {"zones": [z.to_dict() for z in zones], "count": len(zones)}

    async def _cmd_get_zones(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return {"zones": self._current_view()}

    def _current_view(self) -> list[dict[str, Any]]:
        """The saved zones with the newest occupancy the inference thread reported for them.

        Read your own writes: right after ``set_zones`` the inference thread has not applied the new set yet
        (it does on its next frame), so its last overlay still describes the old zones; until it catches
        up, the new zones are shown unoccupied rather than the old ones."""
        defined = [z.to_dict() for z in self.zones]
        if [{k: v for k, v in z.items() if k not in ("occupied", "since")} for z in self._zones_view] == defined:
            return self._zones_view
        return self._view(self.zones, {})

    async def _cmd_get_heatmap(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            data = self.heatmap.overlay_data(clock.monotonic())
        self.host.publish(messages.overlay(OverlayType.HEATMAP, data, retain="heatmap"))
        return {"heatmap": data}

    async def _cmd_get_analytics(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        now = clock.now()
        self.analytics.checkpoint(now)
        day = command.args["day"] or self.analytics.day_of(now)
        return {"analytics": self.analytics.report(day, now)}

    # --- Feature surface ---
    def connection_info(self) -> dict[str, Any]:
        now = clock.now()
        return {"zones": self._current_view(),
                "analytics": self.analytics.report(self.analytics.day_of(now), now)}

    def telemetry(self) -> dict[str, Any]:
        with self.lock:
            activity, carrying = dict(self._activity_summary), list(self._carrying)
        return {"zones": len(self.zones),
                "zones_occupied": [z["name"] for z in self._zones_view if z.get("occupied")],
                "activity": activity,
                "carrying": carrying,
                "fetch_returns": self.fetch_returns}
