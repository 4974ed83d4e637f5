"""The media feature: wires snapshots, clips with pre-roll, bookmarks, media over HTTP and the live view.

It owns the wiring and the loop-side results, the parts live in modules of their own:

- :mod:`edge.media.worker`: the ``media`` thread (pre-roll ring, live-view encoding, best frames, clip
  planning, snapshot encoding) and the writer threads; :meth:`MediaFeature.process` only hands it the frame.
- :mod:`edge.media.library`: the folder and the index in agreement (reconcile, retention).
- :mod:`edge.media.health`: the failure state and its one ``error`` event per spell.
- :mod:`edge.media.throttle`: ``zone_enter`` snapshots at most once per zone per ``DOGMON_ZONE_SNAPSHOT_INTERVAL``.
- :mod:`edge.media.timelapse` (frames kept on the media thread) and :mod:`edge.media.daily`: the day's highlight
  reel and time-lapse, made on a low-priority thread (``make_highlights``, ``DOGMON_HIGHLIGHTS_AT``).
- :mod:`edge.media.commands` and :mod:`edge.media.http`: ``snapshot``/``bookmark``/``list_media``, and
  ``/media/{id}``/``/snapshot.jpg``; :mod:`edge.transports.live`: ``/ws/video``.

Here, on the event loop: the bus listener turns events into snapshot requests and clip triggers (and keeps
the zones and poses snapshots are drawn with); once a file is complete on disk its index row is committed
and only then ``snapshot_saved`` / ``clip_saved`` is published, the newest snapshot's JPEG as retained
state ``snapshot``. Memory is bounded by the ring (``RING_MAX_BYTES``), the writer queues, and at most
``BestFramePicker.max_tracks`` raw frames held as snapshot candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.audio.feature import AudioFeature
from edge.config import Config
from edge.core.commands import CommandError
from edge.core.feature import Feature, FrameContext
from edge.media import render
from edge.media.commands import MediaCommands, validate_bookmark, validate_list_media, validate_snapshot
from edge.media.daily import DailyMedia
from edge.media.encoder import choose_encoders
from edge.media.handover import FrameInfo, LiveSink, SnapshotRequest, mono_of
from edge.media.health import MediaHealth
from edge.media.http import MEDIA_PREFIX, SNAPSHOT_PATH, MediaHttp
from edge.media.index import CONTENT_TYPES, MediaIndex, MediaRecord
from edge.media.library import MediaLibrary
from edge.media.planner import ClipPlan, Trigger
from edge.media.throttle import PerKeyInterval
from edge.media.worker import RECORD_FPS, MediaWorker
from edge.media.writer import ClipRecorder, remove_partials
from edge.protocol import messages
from edge.protocol.messages import EventType, Message, MessageType, OverlayType
from edge.util import clock
from edge.util.fsutil import private_dir

if TYPE_CHECKING:
    from edge.core.feature import Host

__all__ = ["MediaFeature", "validate_bookmark", "validate_list_media", "validate_snapshot"]

log = logging.getLogger(__name__)

MEDIA_DIR = "media"
OWN_EVENTS = {EventType.SNAPSHOT_SAVED, EventType.CLIP_SAVED, EventType.BOOKMARK_CREATED, EventType.ERROR,
              EventType.HIGHLIGHTS_SAVED, EventType.TIMELAPSE_SAVED}


class MediaFeature(Feature):
    name = "media"

    def __init__(self, config: Config, live: LiveSink) -> None:
        self.config = config
        self.folder: Path = config.data_dir / MEDIA_DIR
        self.snapshot_events = set(config.snapshot_events)
        self.clip_events = set(config.clip_events)
        self.zone_snapshots = PerKeyInterval(config.zone_snapshot_interval)
        self.reserve = int(config.media_min_free_mb * 2**20)
        self.live = live
        self.worker = MediaWorker(config, self.folder, self.reserve, self.live)
        self.library = MediaLibrary(self.folder, int(config.media_max_mb * 2**20), config.media_max_days * 86400)
        self.daily = DailyMedia(config, self.folder, self.library, self.reserve, RECORD_FPS,
                                lambda: self.recorder.encoder if self.recorder is not None else None)
        self.http = MediaHttp(self.folder, lambda: self.library.index, self.worker.ring)
        self.encoders_refused: dict[str, str] = {}
        self.recorder: ClipRecorder | None = None
        self.snapshots_saved = 0
        self.clips_saved = 0
        self._tasks: list[asyncio.Task] = []

    # --- lifecycle (loop) ---
    def attach(self, host: Host) -> None:
        self.host = host
        self.health = MediaHealth(host.publish, self.library.schedule_retention, self.folder, self.reserve)
        try:
            private_dir(self.folder)
        except OSError as exc:
            self.health.folder_unusable(f"media folder {self.folder} cannot be created: {exc}")
        self.library.index = host.store.table(MediaIndex)
        host.store.on_recreated(self._store_recreated)
        encoders, self.encoders_refused = choose_encoders(self.config.clip_encoder)
        for name, reason in self.encoders_refused.items():  # expected off a Pi: the chosen one is said below
            log.debug("media: clip encoder %s not used: %s", name, reason)
        audio = host.feature(AudioFeature)
        audio_rate = audio.sample_rate if audio is not None else None
        self.recorder = ClipRecorder(self.folder, RECORD_FPS, encoders, self.reserve, audio_rate)
        self.worker.bind(host.loop, self, self.recorder, audio_rate)
        if audio is not None:
            audio.chunk_listeners.append(self.worker.on_audio)
        chosen = encoders[0] if encoders else None
        if chosen is None:
            log.error("media: no clip encoder works here; clips are not saved")
        elif chosen.codec != "h264":
            why = self.encoders_refused.get("libx264", f"DOGMON_CLIP_ENCODER={self.config.clip_encoder}")
            log.warning("media: clips are OpenCV mp4v, not H.264 (%s); Chrome and Firefox do not play mp4v", why)
        else:
            log.info("media: clips as H.264 MP4 with %s%s; stored in %s", chosen.name,
                     ", with sound (AAC)" if audio_rate else "", self.folder)
        self.commands = MediaCommands(self.worker, lambda: self.library.index, host.publish, host.loop)
        host.handle("snapshot", self.commands.snapshot)
        host.handle("bookmark", self.commands.bookmark)
        host.handle("list_media", self.commands.list_media)
        self.daily.attach(host)
        host.listen(self._on_message)
        host.web.add_route(MEDIA_PREFIX + "{media_id}", self.http.media)
        host.web.add_route(SNAPSHOT_PATH, self.http.snapshot)
        host.web.add_websocket(self.live.path, self.live.serve)

    async def start(self) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(remove_partials, self.folder)
        await self.library.reconcile()
        self.worker.start()
        self._tasks.append(asyncio.create_task(self.library.retention_loop()))
        self._tasks += self.daily.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.daily.stop()
        await self.worker.stop()  # shutting down mid-clip: the clip ends at the newest frame and is saved
        await asyncio.sleep(0)  # run the saved callbacks the writers scheduled: their events are committed now
        await asyncio.sleep(0)
        await self.live.close_all()

    # --- inference thread ---
    def process(self, ctx: FrameContext) -> list[Message]:
        matched = [t for t in ctx.tracks if t.last_seen == ctx.seen_time]  # as the detection overlay shows them
        boxes = [render.Box(*t.box, "dog", t.score, t.track_id) for t in matched]
        boxes += [render.Box(d.x1, d.y1, d.x2, d.y2, d.label, d.score) for d in ctx.detections if d.label != "dog"]
        dogs = tuple((t.track_id, t.first_seen, t.score, t.centre) for t in matched)
        self.worker.offer(FrameInfo(ctx.frame.image, ctx.now, ctx.wall, tuple(boxes), dogs))
        return []

    # --- loop: bus listener ---
    def _on_message(self, message: Message) -> None:
        if message.type is MessageType.EVENT:
            kind = str(message.event_type)
            if message.event_type in OWN_EVENTS or message.seq is None:
                return
            at = mono_of(message)
            if kind in self.snapshot_events and (kind != EventType.ZONE_ENTER
                                                 or self.zone_snapshots.allow(message.data.get("zone"), at)):
                track_id = message.data.get("track_id") if kind == EventType.DOG_DETECTED else None
                self.worker.send("snapshot", SnapshotRequest(message.seq, kind, at,
                                                             track_id if isinstance(track_id, int) else None))
            if kind in self.clip_events:
                self.worker.send("clip", Trigger(message.seq, at, kind))
        elif message.type is MessageType.OVERLAY:
            if message.overlay_type is OverlayType.ZONES:
                self.worker.zones = list(message.data.get("zones") or [])
            elif message.overlay_type is OverlayType.POSE:
                self.worker.poses = (mono_of(message), message.data)

    # --- loop: results (worker.Results) ---
    def snapshot_saved(self, request: SnapshotRequest, records: list[MediaRecord], clean: bytes,
                       info: FrameInfo) -> None:
        if not self._index_add(records, "snapshot", request):
            return
        self.snapshots_saved += 1
        clean_rec, overlay_rec, thumb_rec = records
        data = {"media_id": clean_rec.id, "url": f"{MEDIA_PREFIX}{clean_rec.id}",
                "overlay_media_id": overlay_rec.id, "overlay_url": f"{MEDIA_PREFIX}{overlay_rec.id}",
                "thumb_media_id": thumb_rec.id, "thumb_url": f"{MEDIA_PREFIX}{thumb_rec.id}",
                "thumb_bytes": thumb_rec.bytes,
                "event_seq": request.seq, "event_type": request.reason, "track_id": request.track_id,
                "bytes": clean_rec.bytes, "overlay_bytes": overlay_rec.bytes,
                "width": clean_rec.width, "height": clean_rec.height, "captured": round(info.wall, 3),
                "content_type": "image/jpeg"}
        event = messages.event(EventType.SNAPSHOT_SAVED, data)
        self.host.publish(event)
        self.host.publish_retained("snapshot", clean)  # the newest snapshot's JPEG (MQTT: its retained topic)
        if request.future is not None and not request.future.done():
            if event.seq is None:  # the file is saved, but the event that names it is not in the log
                request.future.set_exception(CommandError("storage_full", "snapshot saved but its event was not "
                                                          "stored: the event log cannot be written (disk full)"))
            else:
                request.future.set_result({**data, "seq": event.seq})
        self.health.recovered()
        self.library.schedule_retention()

    def clip_saved(self, plan: ClipPlan, result: dict[str, Any]) -> None:
        label = " | ".join(plan.labels) or None
        first = plan.first
        record = MediaRecord(result["media_id"], "clip", result["media_id"], clock.now(), result["file"],
                             result["bytes"], CONTENT_TYPES["mp4"], result["width"], result["height"],
                             result["start"], result["duration"], first.seq, label)
        records = [record]
        if result["poster"] is not None:
            poster_id, size, width, height = result["poster"]
            records.append(MediaRecord(poster_id, "clip_poster", record.id, record.created, f"{poster_id}.jpg", size,
                                       "image/jpeg", width, height, event_seq=first.seq))
        if not self._index_add(records, "clip", None):
            return
        self.clips_saved += 1
        data = {"media_id": record.id, "url": f"{MEDIA_PREFIX}{record.id}", "start": round(result["start"], 3),
                "duration": round(result["duration"], 2), "end": round(result["start"] + result["duration"], 3),
                "event_seq": first.seq, "event_type": first.reason,
                "events": [t.seq for t in plan.triggers if t.seq is not None],
                "label": label, "labels": plan.labels, "pre_roll": round(first.at - result["start_mono"], 2),
                "bytes": record.bytes, "width": record.width, "height": record.height, "fps": result["fps"],
                "codec": result["codec"], "encoder": result["encoder"], "audio": result["audio"],
                "poster_media_id": records[1].id if len(records) > 1 else None,
                "poster_url": f"{MEDIA_PREFIX}{records[1].id}" if len(records) > 1 else None,
                "content_type": record.content_type}
        self.host.publish(messages.event(EventType.CLIP_SAVED, data))
        self.health.recovered()
        self.library.schedule_retention()

    def failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None:
        self.health.failed(kind, exc, request)

    def _index_add(self, records: list[MediaRecord], kind: str, request: SnapshotRequest | None) -> bool:
        try:
            self.library.add(records)
            return True
        except sqlite3.Error as exc:
            self.health.failed(kind, OSError(errno.EIO, f"media index not writable: {exc}"), request)
            return False

    def _store_recreated(self, detail: str) -> None:
        """The event database (which holds the media index) was lost and made anew: index the new one,
        make the folder again if it went too, and adopt whatever files are still there."""
        self.library.index = self.host.store.table(MediaIndex)
        try:
            private_dir(self.folder)
        except OSError as exc:
            self.health.folder_unusable(f"media folder {self.folder} cannot be created: {exc}")
        self._tasks.append(asyncio.ensure_future(self.library.reconcile()))

    # --- Feature surface ---
    def day_media(self, day: str) -> dict[str, dict[str, str] | None]:
        """The day's highlight reel and time-lapse for the diary: ``{"highlights": {"media_id", "url"} | None,
        "timelapse": …}`` (loop thread; ``day`` is YYYY-MM-DD, device local time)."""
        index = self.library.index
        return index.day_media(day) if index is not None else {"highlights": None, "timelapse": None}

    def connection_info(self) -> dict[str, Any]:
        index = self.library.index
        newest = index.newest("snapshot") if index is not None else None
        return {"media": {"live_path": self.live.path, "snapshot_url": SNAPSHOT_PATH, "media_url": "/media/{id}",
                          "clip_codec": self._encoder_field("codec"),
                          "latest_snapshot": newest.id if newest else None}}

    def problems(self) -> list[str]:
        return self.health.problems()

    def telemetry(self) -> dict[str, Any]:
        index = self.library.index
        self.health.problems()  # a full disk that has room again is not reported as full
        return {
            "disk_full": self.health.disk_full,
            "failing": self.health.failing,
            "stored_files": index.count() if index else 0,
            "stored_mb": round((index.total_bytes() if index else 0) / 2**20, 2),
            "removed": self.library.removed,
            "snapshots_saved": self.snapshots_saved,
            "clips_saved": self.clips_saved,
            **self.worker.telemetry(),
            "clip_codec": self._encoder_field("codec"),
            "clip_encoder": self._encoder_field("name"),
            "clip_encoders_failed": list(self.recorder.failed_encoders) if self.recorder else [],
            "clip_encoders_refused": self.encoders_refused,
            "audio_ring_chunks": len(self.worker.audio_ring) if self.worker.audio_ring is not None else None,
        }

    def _encoder_field(self, name: str) -> str | None:
        encoder = self.recorder.encoder if self.recorder is not None else None
        return getattr(encoder, name) if encoder is not None else None
