"""The media feature: snapshots, clips with pre-roll, bookmarks, media over HTTP and the live view.

Threads and hand-overs:

- inference thread: :meth:`MediaFeature.process` only copies this frame's boxes and puts the frame
  in a one-slot holder (newest wins), so media never slows detection.
- ``media`` thread: records the pre-roll ring (JPEG at up to ``RECORD_FPS``), encodes the live view
  (only while someone watches), picks each new track's best frame, runs the clip planner, and encodes
  snapshots.
- ``media-snapshots`` / ``media-clips`` threads (:class:`~edge.media.writer.JobThread`): write files
  (fsync + rename) and the MP4 (decode JPEG → VideoWriter at a constant rate).
- event loop: the bus listener turns events into snapshot requests and clip triggers; once a file is
  complete on disk its index row is committed and only then ``snapshot_saved`` / ``clip_saved`` is
  published; retention; HTTP routes; commands.

Memory is bounded by the ring (``RING_MAX_BYTES``), the writer queues, and at most
``BestFramePicker.max_tracks`` raw frames held as snapshot candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import math
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from edge import messages
from edge.audio.feature import AudioFeature
from edge.commands import Command, CommandError
from edge.config import Config
from edge.features import Feature, FrameContext
from edge.fsutil import atomic_write, fsync_dir, private_dir
from edge.media import render
from edge.media.encoder import choose_encoders
from edge.media.index import (
    CHILDREN,
    CONTENT_TYPES,
    FILE_PATTERN,
    MediaIndex,
    MediaRecord,
    child_id,
    file_of,
    group_of,
    kind_of,
    new_id,
    valid_id,
)
from edge.media.live import LIVE_PATH, LiveView
from edge.media.planner import ActivityGate, BestFramePicker, ClipPlan, ClipPlanner, Trigger
from edge.media.retention import Item, plan_retention
from edge.media.ring import AudioChunk, AudioRing, EncodedFrame, FrameRing
from edge.media.writer import (
    ClipRecorder,
    DiskFull,
    JobThread,
    check_space,
    remove_partials,
)
from edge.messages import EventType, Message, MessageType, OverlayType
from edge.protocol.command_specs import COMMANDS
from edge.ratelimit import Cooldown
from edge.web.files import FileStream, StreamSlots

if TYPE_CHECKING:
    from edge.host import Host

log = logging.getLogger(__name__)

MEDIA_DIR = "media"
MEDIA_PREFIX = "/media/"
RECORD_FPS = 10.0            # frames per second kept in the ring and written to clips (and the clip's fps)
RECORD_MAX_WIDTH = 1280      # ring/clip frames are scaled down to this width
RECORD_QUALITY = 80
RING_MAX_BYTES = 16 * 2**20  # hard bound of the pre-roll ring, whatever the resolution
SNAPSHOT_WINDOW = 2.0        # a new dog's snapshot is its best frame within this many seconds
SHUTDOWN_CLIP_SECONDS = 8.0  # on SIGTERM/SIGINT the clip being recorded is finished within this
SNAPSHOT_TIMEOUT = 10.0      # a snapshot command waits at most this long for its file
RETENTION_INTERVAL = 600.0
SNAPSHOT_COOLDOWN = 1.0      # seconds between requested snapshots, whatever transport asks (each is two files)
BOOKMARK_COOLDOWN = 2.0      # seconds between bookmarks (each is an event and extends or starts a clip)
STALE_FRAME = 5.0            # a snapshot is refused when the newest frame is older than this (camera gone)
POSE_MAX_AGE = 1.0           # a pose overlay this much older than the frame is not drawn on it
OWN_EVENTS = {EventType.SNAPSHOT_SAVED, EventType.CLIP_SAVED, EventType.BOOKMARK_CREATED, EventType.ERROR}


# --- validators (pure) ---

# Declared in edge.protocol.command_specs; the names stay for callers that validate directly.
validate_snapshot = COMMANDS["snapshot"].validate
validate_bookmark = COMMANDS["bookmark"].validate
validate_list_media = COMMANDS["list_media"].validate


# --- what the media thread needs of a frame ---

@dataclasses.dataclass(frozen=True, slots=True)
class FrameInfo:
    image: np.ndarray
    captured: float
    wall: float
    boxes: tuple[render.Box, ...]
    dogs: tuple[tuple[int, float, float, tuple[float, float]], ...]  # (track_id, first_seen, score, centre)


@dataclasses.dataclass(slots=True)
class SnapshotRequest:
    seq: int | None
    reason: str                     # event type, or "request"
    at: float                       # monotonic moment it illustrates
    track_id: int | None = None     # a new dog: its best frame is wanted
    future: asyncio.Future | None = None
    made: float = dataclasses.field(default_factory=time.monotonic)


class LatestInfo:
    """One-slot hand-over from the inference thread: the media thread takes the newest frame only."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._info: FrameInfo | None = None
        self.dropped = 0

    def put(self, info: FrameInfo) -> None:
        with self._cond:
            if self._info is not None:
                self.dropped += 1
            self._info = info
            self._cond.notify()

    def take(self, timeout: float) -> FrameInfo | None:
        with self._cond:
            if self._info is None:
                self._cond.wait(timeout)
            info, self._info = self._info, None
            return info


def mono_of(message: Message) -> float:
    """The monotonic moment a message describes (its frame's capture time, else its wall ``ts``)."""
    if message.captured is not None:
        return message.captured
    return time.monotonic() - max(0.0, time.time() - message.ts)


class MediaFeature(Feature):
    name = "media"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.folder: Path = config.data_dir / MEDIA_DIR
        self._http_streams = StreamSlots()
        self.snapshot_events = set(config.snapshot_events)
        self.clip_events = set(config.clip_events)
        self.max_bytes = int(config.media_max_mb * 2**20)
        self.max_age = config.media_max_days * 86400
        self.reserve = int(config.media_min_free_mb * 2**20)
        self.slot = LatestInfo()
        self.control: queue.Queue[tuple[str, Any]] = queue.Queue(256)
        ring_frames = max(1, math.ceil(config.clip_pre_seconds * RECORD_FPS) + int(RECORD_FPS))
        self.ring = FrameRing(ring_frames, RING_MAX_BYTES)
        self.planner = ClipPlanner(config.clip_pre_seconds, config.clip_post_seconds, config.clip_max_seconds)
        self.picker = BestFramePicker(SNAPSHOT_WINDOW)
        self.gate = ActivityGate()
        self.live = LiveView()
        self.encoders_refused: dict[str, str] = {}
        self.audio_ring: AudioRing | None = None
        self.snap_writer = JobThread("media-snapshots", 16)
        # 4 s of frames plus 4 s of 0.1 s sound chunks, and room for start/finish jobs
        self.clip_writer = JobThread("media-clips", 4 * int(RECORD_FPS) + 40 + 8)
        self.recorder: ClipRecorder | None = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="media", daemon=True)
        # media-thread state
        self._latest: FrameInfo | None = None
        self._pending: list[SnapshotRequest] = []
        self._recording: str | None = None
        self._last_record = -math.inf
        self._last_live = -math.inf
        self.live_encoded = 0
        self.clip_frames_dropped = 0
        self.control_dropped = 0
        # read across threads (reference assignments only)
        self._zones: list[dict[str, Any]] = []
        self._poses: tuple[float, dict[str, Any]] | None = None
        # loop-thread state
        self.snapshots_saved = 0
        self.clips_saved = 0
        self.failing: str | None = None
        self.disk_full = False
        self.removed = 0
        self._retention_task: asyncio.Task | None = None
        self._retention_again = False
        self._tasks: list[asyncio.Task] = []
        self.index: MediaIndex | None = None
        self.snapshot_cooldown = Cooldown(SNAPSHOT_COOLDOWN)
        self.bookmark_cooldown = Cooldown(BOOKMARK_COOLDOWN)

    # --- lifecycle (loop) ---
    def attach(self, host: Host) -> None:
        self.host = host
        self.loop = host.loop
        try:
            private_dir(self.folder)
        except OSError as exc:
            self.failing = f"media folder {self.folder} cannot be created: {exc}"
            log.error("%s", self.failing)
        self.index = host.store.media_index()
        host.store.on_recreated(self._store_recreated)
        encoders, self.encoders_refused = choose_encoders(self.config.clip_encoder)
        for name, reason in self.encoders_refused.items():
            log.info("media: clip encoder %s not used: %s", name, reason)
        audio = host.feature(AudioFeature)
        audio_rate = None
        if audio is not None:
            self.audio_ring = AudioRing(self.config.clip_pre_seconds + 1.0)
            audio.chunk_listeners.append(self._on_audio)
            audio_rate = audio.sample_rate
        self.recorder = ClipRecorder(self.folder, RECORD_FPS, encoders, self.reserve, audio_rate)
        self.recorder.on_failure = self._clip_failed
        chosen = encoders[0] if encoders else None
        if chosen is None:
            log.error("media: no clip encoder works here; clips are not saved")
        elif chosen.codec != "h264":
            why = self.encoders_refused.get("libx264", f"DOGMON_CLIP_ENCODER={self.config.clip_encoder}")
            log.warning("media: clips are OpenCV mp4v, not H.264 (%s); Chrome and Firefox do not play mp4v", why)
        else:
            log.info("media: clips as H.264 MP4 with %s%s; stored in %s", chosen.name,
                     ", with sound (AAC)" if audio_rate else "", self.folder)
        host.handle("snapshot", self._cmd_snapshot)
        host.handle("bookmark", self._cmd_bookmark)
        host.handle("list_media", self._cmd_list_media)
        host.listen(self._on_message)
        host.web.add_route(MEDIA_PREFIX + "{media_id}", self._http_media)
        host.web.add_route("/snapshot.jpg", self._http_snapshot)
        host.web.add_websocket(LIVE_PATH, self.live.serve)

    async def start(self) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(remove_partials, self.folder)
        await self._reconcile()
        self.snap_writer.start()
        self.clip_writer.start()
        self.thread.start()
        self._tasks.append(asyncio.create_task(self._retention_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.stop_event.set()
        await asyncio.to_thread(self.thread.join, 1.0)
        plan, media_id = self.planner.active, self._recording
        if plan is not None and media_id is not None and self.recorder is not None and not self.thread.is_alive():
            # Shutting down mid-clip: end the clip at the newest frame and save it like any other.
            latest = self._latest
            plan.end = min(plan.end, latest.captured if latest is not None else plan.end)
            self.planner.active, self._recording = None, None
            log.info("media: stopping; finishing the clip being recorded (%s)", media_id)
            self.clip_writer.submit(functools.partial(self._finish_clip, media_id, plan))
        self.clip_writer.stop()
        self.snap_writer.stop()
        for writer in (self.clip_writer, self.snap_writer):
            if writer.is_alive():
                await asyncio.to_thread(writer.join, SHUTDOWN_CLIP_SECONDS)
        await asyncio.sleep(0)  # run the saved callbacks the writers scheduled: their events are committed now
        await asyncio.sleep(0)
        await self.live.close_all()

    # --- audio thread ---
    def _on_audio(self, samples: np.ndarray, captured: float, rate: int) -> None:
        """A microphone chunk: kept in the sound pre-roll, and streamed to the clip being recorded."""
        chunk = AudioChunk(samples, captured, rate)
        assert self.audio_ring is not None
        self.audio_ring.add(chunk)
        if self._recording is not None and self.recorder is not None \
                and not self.clip_writer.offer(functools.partial(self.recorder.add_audio, chunk)):
            self.clip_frames_dropped += 1

    # --- inference thread ---
    def process(self, ctx: FrameContext) -> list[Message]:
        matched = [t for t in ctx.tracks if t.last_seen == ctx.seen_time]  # as the detection overlay shows them
        boxes = [render.Box(*t.box, "dog", t.score, t.track_id) for t in matched]
        boxes += [render.Box(d.x1, d.y1, d.x2, d.y2, d.label, d.score) for d in ctx.detections if d.label != "dog"]
        dogs = tuple((t.track_id, t.first_seen, t.score, t.centre) for t in matched)
        self.slot.put(FrameInfo(ctx.frame.image, ctx.now, ctx.wall, tuple(boxes), dogs))
        return []

    # --- media thread ---
    def _run(self) -> None:
        while not self.stop_event.is_set():
            info = self.slot.take(timeout=0.2)
            try:
                self._drain_control()
                if info is not None:
                    self._on_frame(info)
                self._tick(time.monotonic())
            except Exception:  # a bad frame must not end media for good
                log.exception("media thread failed on a frame")
                self.stop_event.wait(0.5)

    def _drain_control(self) -> None:
        while True:
            try:
                kind, item = self.control.get_nowait()
            except queue.Empty:
                return
            if kind == "snapshot":
                self._pending.append(item)
            elif kind == "clip":
                self._trigger_clip(item)
            elif kind == "clip_failed" and self._recording == item:
                log.warning("media: clip %s ended early: its encoder or file failed", item)
                self._recording, self.planner.active = None, None

    def _trigger_clip(self, trigger: Trigger) -> None:
        plan = self.planner.trigger(trigger)
        if plan is None or self.recorder is None:
            return
        media_id = new_id("clip")
        preroll = self.ring.since(plan.start)
        audio = self.audio_ring.since(plan.start) if self.audio_ring is not None else None
        self._recording = media_id
        self.clip_writer.submit(functools.partial(self.recorder.start, media_id, preroll, audio, trigger.at))

    def _on_frame(self, info: FrameInfo) -> None:
        self._latest = info
        now = info.captured
        if now - self._last_record >= 1.0 / RECORD_FPS - 0.005:
            self._last_record = now
            image = render.fit_width(info.image, RECORD_MAX_WIDTH)
            frame = EncodedFrame(render.encode_jpeg(image, RECORD_QUALITY), now, info.wall,
                                 image.shape[1], image.shape[0])
            self.ring.add(frame)
            active = self.planner.active
            recording = active is not None and self._recording is not None and now <= active.end
            if recording and self.recorder is not None \
                    and not self.clip_writer.offer(functools.partial(self.recorder.add, frame)):
                self.clip_frames_dropped += 1
        if self.live.watching and now - self._last_live >= 1.0 / self.config.live_fps - 0.005:
            self._last_live = now
            image = render.fit_width(info.image, self.config.live_width)
            jpeg = render.encode_jpeg(image, render.STREAM_QUALITY)
            self.live_encoded += 1
            self.loop.call_soon_threadsafe(self.live.offer, jpeg, info.wall, image.shape[1], image.shape[0])
        for track_id, first_seen, score, _ in info.dogs:
            self.picker.offer(track_id, first_seen, now, score, info)
        centre = info.dogs[0][3] if info.dogs else None
        h, w = info.image.shape[:2]
        if self.gate.update(now, centre, math.hypot(w, h)):
            self.planner.activity(now)

    def _tick(self, now: float) -> None:
        latest = self._latest
        # Frames reach this thread a little after capture: judge "due" on the newest frame's time while
        # frames flow, so a clip's last frames are in before it closes.
        clock = latest.captured if latest is not None and now - latest.captured < 1.0 else now
        done = self.planner.due(clock)
        if done is not None and self._recording is not None and self.recorder is not None:
            media_id, self._recording = self._recording, None
            self.clip_writer.submit(functools.partial(self._finish_clip, media_id, done))
        still = []
        for request in self._pending:
            if not self._snapshot_due(request, clock, now):
                still.append(request)
        self._pending = still
        self.picker.expire(now, {r.track_id for r in self._pending if r.track_id is not None})

    def _snapshot_due(self, request: SnapshotRequest, clock: float, now: float) -> bool:
        """Write the snapshot if its frame is known; False while it should wait for a better frame."""
        info = None
        if request.track_id is not None:
            ready = self.picker.ready_at(request.track_id)
            if ready is not None and clock < ready and now - request.made < SNAPSHOT_WINDOW + 2:
                return False
            candidate = self.picker.take(request.track_id)
            info = candidate.payload if candidate is not None else None
        if info is None:
            latest = self._latest
            if latest is None or (latest.captured < request.at - 0.05 and now - request.made < 2.0):
                if latest is None and now - request.made >= 2.0:
                    self.loop.call_soon_threadsafe(self._failed, "snapshot", OSError(
                        errno.ENODATA, "no camera frame yet"), request)
                    return True
                return False  # the frame of that moment has not reached this thread yet
            if now - latest.captured > STALE_FRAME:  # camera gone: an old frame would show the wrong moment
                self.loop.call_soon_threadsafe(self._failed, "snapshot", OSError(
                    errno.ENODATA, f"no camera frame for {now - latest.captured:.0f} s"), request)
                return True
            info = latest
        self._write_snapshot(request, info)
        return True

    def _write_snapshot(self, request: SnapshotRequest, info: FrameInfo) -> None:
        poses = None
        if self._poses is not None and abs(self._poses[0] - info.captured) <= POSE_MAX_AGE:
            poses = self._poses[1]
        clean = render.encode_jpeg(info.image)
        drawn = render.encode_jpeg(render.draw_overlay(info.image, info.boxes, self._zones, poses))
        thumb = render.thumbnail(info.image)
        clean_id = new_id("snapshot", info.wall)
        overlay_id, thumb_id = child_id(clean_id, "snapshot_overlay"), child_id(clean_id, "snapshot_thumb")
        height, width = info.image.shape[:2]
        thumb_w = min(width, render.THUMB_WIDTH)
        records = [
            MediaRecord(clean_id, "snapshot", clean_id, info.wall, f"{clean_id}.jpg", len(clean), "image/jpeg",
                        width, height, event_seq=request.seq),
            MediaRecord(overlay_id, "snapshot_overlay", clean_id, info.wall, f"{overlay_id}.jpg", len(drawn),
                        "image/jpeg", width, height, event_seq=request.seq),
            MediaRecord(thumb_id, "snapshot_thumb", clean_id, info.wall, f"{thumb_id}.jpg", len(thumb), "image/jpeg",
                        thumb_w, round(height * thumb_w / width), event_seq=request.seq),
        ]
        contents = [clean, drawn, thumb]

        def job() -> None:
            try:
                check_space(self.folder, sum(map(len, contents)), self.reserve)
                for record, content in zip(records, contents, strict=True):
                    atomic_write(self.folder / record.file, content, sync_dir=False)
            except OSError as exc:
                for record in records:
                    with contextlib.suppress(OSError):
                        (self.folder / record.file).unlink()
                self.loop.call_soon_threadsafe(self._failed, "snapshot", exc, request)
                return
            fsync_dir(self.folder)
            self.loop.call_soon_threadsafe(self._snapshot_saved, request, records, clean, info)

        self.snap_writer.submit(job)

    def _clip_failed(self, media_id: str, exc: OSError) -> None:
        """Clips thread: a clip failed while recording; report it now and let the media thread end it."""
        self.loop.call_soon_threadsafe(self._failed, "clip", exc, None)
        self._send("clip_failed", media_id)

    def _finish_clip(self, media_id: str, plan: ClipPlan) -> None:
        """Clip writer thread: close the file; hand the result (or the failure) to the loop."""
        assert self.recorder is not None
        try:
            if self.recorder.media_id != media_id:
                raise OSError(errno.ENODATA, "the clip was not started (its start was dropped)")
            result = self.recorder.finish(plan.end)
        except OSError as exc:
            self.loop.call_soon_threadsafe(self._failed, "clip", exc, None)
            return
        poster_id = child_id(media_id, "clip_poster")
        image = cv2.imdecode(np.frombuffer(result["poster"], np.uint8), cv2.IMREAD_COLOR)
        try:
            if image is None:
                raise ValueError("the poster frame does not decode")
            poster = render.thumbnail(image)
            atomic_write(self.folder / f"{poster_id}.jpg", poster)
            result["poster"] = (poster_id, len(poster), min(image.shape[1], render.THUMB_WIDTH),
                                round(image.shape[0] * min(image.shape[1], render.THUMB_WIDTH) / image.shape[1]))
        except (OSError, ValueError, cv2.error) as exc:  # the clip itself is saved; it just has no poster
            log.warning("media: poster of %s not saved: %s", media_id, exc)
            result["poster"] = None
        self.loop.call_soon_threadsafe(self._clip_saved, plan, result)

    # --- loop: bus listener ---
    def _on_message(self, message: Message) -> None:
        if message.type is MessageType.EVENT:
            kind = str(message.event_type)
            if message.event_type in OWN_EVENTS or message.seq is None:
                return
            at = mono_of(message)
            if kind in self.snapshot_events:
                track_id = message.data.get("track_id") if kind == EventType.DOG_DETECTED else None
                self._send("snapshot", SnapshotRequest(message.seq, kind, at,
                                                       track_id if isinstance(track_id, int) else None))
            if kind in self.clip_events:
                self._send("clip", Trigger(message.seq, at, kind))
        elif message.type is MessageType.OVERLAY:
            if message.overlay_type is OverlayType.ZONES:
                self._zones = list(message.data.get("zones") or [])
            elif message.overlay_type is OverlayType.POSE:
                self._poses = (mono_of(message), message.data)

    def _send(self, kind: str, item: Any) -> bool:
        try:
            self.control.put_nowait((kind, item))
            return True
        except queue.Full:
            self.control_dropped += 1
            log.warning("media: control queue full; a %s request was dropped", kind)
            return False

    # --- loop: results ---
    def _snapshot_saved(self, request: SnapshotRequest, records: list[MediaRecord], clean: bytes,
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
        self.host.publish_retained("snapshot", clean)  # the newest snapshot's JPEG (MQTT: retained topic)
        if request.future is not None and not request.future.done():
            request.future.set_result({**data, "seq": event.seq})
        self._recovered()
        self._schedule_retention()

    def _clip_saved(self, plan: ClipPlan, result: dict[str, Any]) -> None:
        label = " | ".join(plan.labels) or None
        first = plan.first
        record = MediaRecord(result["media_id"], "clip", result["media_id"], time.time(), result["file"],
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
        self._recovered()
        self._schedule_retention()

    def _index_add(self, records: list[MediaRecord], kind: str, request: SnapshotRequest | None) -> bool:
        assert self.index is not None
        try:
            self.index.add(records)
            return True
        except sqlite3.Error as exc:
            self._failed(kind, OSError(errno.EIO, f"media index not writable: {exc}"), request)
            for record in records:  # an unindexed file would escape retention
                with contextlib.suppress(OSError):
                    (self.folder / record.file).unlink()
            return False

    def _failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None:
        detail = exc.strerror or str(exc)
        full = isinstance(exc, DiskFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT)
        log.error("media: %s not saved: %s", kind, detail)
        if request is not None and request.future is not None and not request.future.done():
            code = "no_frame" if exc.errno == errno.ENODATA else "storage_failed"
            request.future.set_exception(CommandError(code, f"{kind} not saved: {detail}"))
        if exc.errno == errno.ENODATA:
            return  # nothing wrong with the disk
        self.disk_full = self.disk_full or full
        if self.failing is None:
            self.failing = detail
            self.host.publish(messages.event(EventType.ERROR, {
                "component": "media", "detail": detail, "disk_full": full,
                "effect": "snapshots and clips are not saved until there is room; detection and events go on"}))
        if full:
            self._schedule_retention()

    def _recovered(self) -> None:
        if self.failing is not None:
            log.info("media: saving works again")
        self.failing, self.disk_full = None, False

    def _store_recreated(self, detail: str) -> None:
        """The event database (which holds the media index) was lost and made anew: index the new one,
        make the folder again if it went too, and adopt whatever files are still there."""
        self.index = self.host.store.media_index()
        try:
            private_dir(self.folder)
        except OSError as exc:
            self.failing = f"media folder {self.folder} cannot be created: {exc}"
            log.error("%s", self.failing)
        self._tasks.append(asyncio.ensure_future(self._reconcile()))

    # --- loop: retention ---
    async def _reconcile(self) -> None:
        """Make the index and the folder agree: rows without a file go, files without a row are adopted."""
        assert self.index is not None
        try:
            names = await asyncio.to_thread(lambda: {p.name: p.stat() for p in self.folder.iterdir() if p.is_file()})
        except OSError as exc:
            log.error("media folder %s unreadable: %s", self.folder, exc)
            return
        rows = {r.file: r for r in self.index.all()}
        gone = [r.id for f, r in rows.items() if f not in names]
        adopted = []
        for name, stat in names.items():
            match = FILE_PATTERN.fullmatch(name)
            if match is None or name in rows:
                continue
            media_id, ext = match.groups()
            kind, group = kind_of(media_id), group_of(media_id)
            adopted.append(MediaRecord(media_id, kind, group, stat.st_mtime, name, stat.st_size, CONTENT_TYPES[ext]))
        try:
            if gone:
                self.index.delete(gone)
            if adopted:
                self.index.add(adopted)
        except sqlite3.Error as exc:
            log.error("media index reconcile failed: %s", exc)
        if gone or adopted:
            log.info("media: %d index row(s) without a file removed, %d file(s) without a row adopted",
                     len(gone), len(adopted))
        await self._retention()

    def _schedule_retention(self) -> None:
        if self._retention_task is not None and not self._retention_task.done():
            self._retention_again = True
            return
        self._retention_task = asyncio.ensure_future(self._retention())

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            self._schedule_retention()

    async def _retention(self) -> None:
        assert self.index is not None
        while True:
            self._retention_again = False
            try:
                records = self.index.all()
                items = [Item(r.id, r.group, r.created, r.bytes) for r in records]
                doomed = set(plan_retention(items, self.max_bytes, self.max_age, time.time()))
                if doomed:
                    files = [self.folder / r.file for r in records if r.id in doomed]
                    await asyncio.to_thread(_unlink_all, files)
                    self.index.delete(sorted(doomed))
                    self.removed += len(doomed)
                    log.info("media retention removed %d file(s)", len(doomed))
            except (OSError, sqlite3.Error) as exc:
                log.error("media retention failed: %s", exc)
            if not self._retention_again:
                return

    # --- loop: commands ---
    async def _cmd_snapshot(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        _cooling("snapshot", self.snapshot_cooldown)
        future = self.loop.create_future()
        request = SnapshotRequest(None, "request", time.monotonic(), None, future)
        if not self._send("snapshot", request):
            raise CommandError("busy", "too many media requests waiting; try again")
        try:
            return await asyncio.wait_for(future, SNAPSHOT_TIMEOUT)
        except TimeoutError:
            raise CommandError("timeout", f"no snapshot within {SNAPSHOT_TIMEOUT:g} s") from None

    async def _cmd_bookmark(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        label = command.args["label"]
        _cooling("bookmark", self.bookmark_cooldown)
        now = time.monotonic()
        event = messages.event(EventType.BOOKMARK_CREATED, {
            "label": label, "origin": context.get("transport"),
            "clip": "a clip_saved event with this seq in 'events' follows"})
        self.host.publish(event)
        self._send("clip", Trigger(event.seq, now, "bookmark", label or "bookmark"))
        return {"seq": event.seq, "label": label}

    async def _cmd_list_media(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        assert self.index is not None
        args = command.args
        rows = self.index.listing(args["kind"], args["limit"], args["before"])
        families = self.index.children(sorted({r.group for r in rows if r.kind in CHILDREN}))
        listed = []
        for row in rows:
            described = row.describe()
            for child_kind, field in CHILDREN.get(row.kind, {}).items():
                child = families.get(row.group, {}).get(child_kind)
                if child is not None:
                    described[field] = child
            listed.append(described)
        return {"media": listed}

    # --- loop: HTTP ---
    def _http_media(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        if not valid_id(media_id):
            return PlainTextResponse("invalid media id\n", 400)
        assert self.index is not None
        record = self.index.get(media_id)
        if record is None:
            return PlainTextResponse("no such media\n", 404)
        try:
            path = file_of(record, self.folder)
        except ValueError:
            return PlainTextResponse("no such media\n", 404)
        extension = record.file.rsplit(".", 1)[-1]
        # A media id names one file for good (a new file gets a new id): its bytes never change.
        headers = {"Cache-Control": "private, max-age=31536000, immutable",
                   "Content-Disposition": f'inline; filename="{record.id}.{extension}"'}
        return FileStream(path, record.bytes, record.content_type, f'"{record.id}-{record.bytes}"', request.headers,
                          self._http_streams, headers, on_missing=lambda exc: self._unreadable(record, exc))

    def _unreadable(self, record: MediaRecord, exc: OSError) -> None:
        log.warning("media %s listed but unreadable (%s); removing it from the index", record.id, exc)
        assert self.index is not None
        self.index.delete([record.id])

    def _http_snapshot(self, request: Request) -> Response:
        newest = self.ring.newest()
        if newest is None:
            return PlainTextResponse("no camera frame yet\n", 503, {"Retry-After": "1", "Cache-Control": "no-store"})
        if time.monotonic() - newest.captured > STALE_FRAME:
            return PlainTextResponse("no recent camera frame (camera offline?)\n", 503,
                                     {"Retry-After": "5", "Cache-Control": "no-store"})
        return Response(newest.jpeg, 200, {"X-Frame-Time": f"{newest.wall:.3f}", "Cache-Control": "no-store"},
                        media_type="image/jpeg")

    # --- Feature surface ---
    def connection_info(self) -> dict[str, Any]:
        newest = self.index.newest("snapshot") if self.index is not None else None
        return {"media": {"live_path": LIVE_PATH, "snapshot_url": "/snapshot.jpg", "media_url": "/media/{id}",
                          "clip_codec": self._encoder_field("codec"),
                          "latest_snapshot": newest.id if newest else None}}

    def problems(self) -> list[str]:
        if self.disk_full:
            return ["media disk full"]
        return [f"media: {self.failing}"] if self.failing else []

    def telemetry(self) -> dict[str, Any]:
        index = self.index
        return {
            "disk_full": self.disk_full,
            "failing": self.failing,
            "stored_files": index.count() if index else 0,
            "stored_mb": round((index.total_bytes() if index else 0) / 2**20, 2),
            "removed": self.removed,
            "snapshots_saved": self.snapshots_saved,
            "clips_saved": self.clips_saved,
            "recording": self.planner.active is not None,
            "ring": {"frames": len(self.ring), "kb": self.ring.bytes // 1024, "seconds": round(self.ring.span(), 2)},
            "live": {**self.live.telemetry(), "encoded": self.live_encoded},
            "dropped": {"frames": self.slot.dropped, "clip_frames": self.clip_frames_dropped,
                        "requests": self.control_dropped},
            "clip_codec": self._encoder_field("codec"),
            "clip_encoder": self._encoder_field("name"),
            "clip_encoders_failed": list(self.recorder.failed_encoders) if self.recorder else [],
            "clip_encoders_refused": self.encoders_refused,
            "audio_ring_chunks": len(self.audio_ring) if self.audio_ring is not None else None,
        }

    def _encoder_field(self, name: str) -> str | None:
        encoder = self.recorder.encoder if self.recorder is not None else None
        return getattr(encoder, name) if encoder is not None else None


def _cooling(action: str, cooldown: Cooldown) -> None:
    """Refuse an action that writes to disk when asked again too soon (a flood must not fill the media)."""
    wait = cooldown.wait()
    if wait > 0:
        raise CommandError("cooldown", f"at most one {action} per {cooldown.seconds:g} s; try again in {wait:.1f} s")


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
