"""The ``media`` thread and its writers: pre-roll ring, live-view encoding, best frames, clips and snapshot files.

The inference thread only fills a one-slot holder (:meth:`MediaWorker.offer`, newest wins) and the loop
sends requests through a bounded control queue (:meth:`MediaWorker.send`), so media never slows detection.
On the ``media`` thread: the pre-roll ring (JPEG at up to ``RECORD_FPS``), the live view's JPEGs (only
while someone watches), each new track's best frame, the clip planner and snapshot encoding. The
``media-snapshots`` / ``media-clips`` threads (:class:`~edge.media.writer.JobThread`) write files (fsync +
rename) and the MP4. Results go back to the loop through :class:`Results`, once a file is complete on disk.
Also the sound pre-roll: microphone chunks arrive on the audio thread (:meth:`MediaWorker.on_audio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import math
import queue
import threading
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edge.config import Config
from edge.media import render
from edge.media.handover import FrameInfo, LatestInfo, LiveSink, SnapshotRequest
from edge.media.index import MediaRecord, child_id, new_id
from edge.media.planner import ActivityGate, BestFramePicker, ClipPlan, ClipPlanner, Trigger
from edge.media.ring import AudioChunk, AudioRing, EncodedFrame, FrameRing
from edge.media.timelapse import TimelapseCollector
from edge.media.writer import ClipRecorder, JobThread, check_space
from edge.util import clock
from edge.util.fsutil import atomic_write, fsync_dir

log = logging.getLogger(__name__)

RECORD_FPS = 10.0            # frames per second kept in the ring and written to clips (and the clip's fps)
RECORD_MAX_WIDTH = 1280      # ring/clip frames are scaled down to this width
RECORD_QUALITY = 80
RING_MAX_BYTES = 16 * 2**20  # hard bound of the pre-roll ring, whatever the resolution
SNAPSHOT_WINDOW = 2.0        # a new dog's snapshot is its best frame within this many seconds
SHUTDOWN_CLIP_SECONDS = 8.0  # on SIGTERM/SIGINT the clip being recorded is finished within this
STALE_FRAME = 5.0            # a snapshot is refused when the newest frame is older than this (camera gone)
POSE_MAX_AGE = 1.0           # a pose overlay this much older than the frame is not drawn on it


class Results(Protocol):
    """Where finished work goes (called on the loop)."""

    def failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None: ...

    def snapshot_saved(self, request: SnapshotRequest, records: list[MediaRecord], clean: bytes,
                       info: FrameInfo) -> None: ...

    def clip_saved(self, plan: ClipPlan, result: dict[str, Any]) -> None: ...


class MediaWorker:
    def __init__(self, config: Config, folder: Path, reserve: int, live: LiveSink) -> None:
        self.config, self.folder, self.reserve, self.live = config, folder, reserve, live
        self.slot = LatestInfo()
        self.control: queue.Queue[tuple[str, Any]] = queue.Queue(256)
        ring_frames = max(1, math.ceil(config.clip_pre_seconds * RECORD_FPS) + int(RECORD_FPS))
        self.ring = FrameRing(ring_frames, RING_MAX_BYTES)
        self.planner = ClipPlanner(config.clip_pre_seconds, config.clip_post_seconds, config.clip_max_seconds)
        self.picker = BestFramePicker(SNAPSHOT_WINDOW)
        self.gate = ActivityGate()
        self.audio_ring: AudioRing | None = None
        self.snap_writer = JobThread("media-snapshots", 16)
        # 4 s of frames plus 4 s of 0.1 s sound chunks, and room for start/finish jobs
        self.clip_writer = JobThread("media-clips", 4 * int(RECORD_FPS) + 40 + 8)
        self.recorder: ClipRecorder | None = None
        self.timelapse = TimelapseCollector(folder, config.timelapse_seconds, reserve, self.snap_writer.offer)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="media", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.results: Results | None = None
        # media-thread state
        self._latest: FrameInfo | None = None
        self._pending: list[SnapshotRequest] = []
        self._recording: str | None = None
        self._last_record = -math.inf
        self._last_live = -math.inf
        self.live_encoded = 0
        self.clip_frames_dropped = 0
        self.control_dropped = 0
        # written by the loop, read here (reference assignments only)
        self.zones: list[dict[str, Any]] = []
        self.poses: tuple[float, dict[str, Any]] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, results: Results, recorder: ClipRecorder,
             audio_rate: int | None) -> None:
        """Before :meth:`start`: where results go, the clip recorder, and the sound pre-roll when a microphone is on."""
        self.loop, self.results, self.recorder = loop, results, recorder
        recorder.on_failure = self._clip_failed
        if audio_rate is not None:
            self.audio_ring = AudioRing(self.config.clip_pre_seconds + 1.0)

    def start(self) -> None:
        self.snap_writer.start()
        self.clip_writer.start()
        self.thread.start()

    async def stop(self) -> None:
        """Stop the thread, finish the clip being recorded (at the newest frame), and let the writers drain."""
        self.stop_event.set()
        await asyncio.to_thread(self.thread.join, 1.0)
        plan, media_id = self.planner.active, self._recording
        if plan is not None and media_id is not None and self.recorder is not None and not self.thread.is_alive():
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

    # --- inference thread ---
    def offer(self, info: FrameInfo) -> None:
        self.slot.put(info)

    # --- audio thread ---
    def on_audio(self, samples: np.ndarray, captured: float, rate: int) -> None:
        """A microphone chunk: kept in the sound pre-roll, and streamed to the clip being recorded."""
        chunk = AudioChunk(samples, captured, rate)
        assert self.audio_ring is not None
        self.audio_ring.add(chunk)
        if self._recording is not None and self.recorder is not None \
                and not self.clip_writer.offer(functools.partial(self.recorder.add_audio, chunk)):
            self.clip_frames_dropped += 1

    # --- any thread ---
    def send(self, kind: str, item: Any) -> bool:
        """Hand a request (``snapshot``, ``clip``, ``clip_failed``) to the media thread; False when full."""
        try:
            self.control.put_nowait((kind, item))
            return True
        except queue.Full:
            self.control_dropped += 1
            log.warning("media: control queue full; a %s request was dropped", kind)
            return False

    def _to_loop(self, callback: Any, *args: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(callback, *args)

    def _failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None:
        assert self.results is not None
        self._to_loop(self.results.failed, kind, exc, request)

    # --- media thread ---
    def _run(self) -> None:
        while not self.stop_event.is_set():
            info = self.slot.take(timeout=0.2)
            try:
                self._drain_control()
                if info is not None:
                    self._on_frame(info)
                self._tick(clock.monotonic())
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
            self._to_loop(self.live.offer, jpeg, info.wall, image.shape[1], image.shape[0])
        self.timelapse.offer(info)
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
                    self._failed("snapshot", OSError(errno.ENODATA, "no camera frame yet"), request)
                    return True
                return False  # the frame of that moment has not reached this thread yet
            if now - latest.captured > STALE_FRAME:  # camera gone: an old frame would show the wrong moment
                self._failed("snapshot", OSError(
                    errno.ENODATA, f"no camera frame for {now - latest.captured:.0f} s"), request)
                return True
            info = latest
        self._write_snapshot(request, info)
        return True

    def _write_snapshot(self, request: SnapshotRequest, info: FrameInfo) -> None:
        poses = None
        if self.poses is not None and abs(self.poses[0] - info.captured) <= POSE_MAX_AGE:
            poses = self.poses[1]
        clean = render.encode_jpeg(info.image)
        drawn = render.encode_jpeg(render.draw_overlay(info.image, info.boxes, self.zones, poses))
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
                self._failed("snapshot", exc, request)
                return
            fsync_dir(self.folder)
            assert self.results is not None
            self._to_loop(self.results.snapshot_saved, request, records, clean, info)

        self.snap_writer.submit(job)

    def _clip_failed(self, media_id: str, exc: OSError) -> None:
        """Clips thread: a clip failed while recording; report it now and let the media thread end it."""
        self._failed("clip", exc, None)
        self.send("clip_failed", media_id)

    def _finish_clip(self, media_id: str, plan: ClipPlan) -> None:
        """Clip writer thread: close the file; hand the result (or the failure) to the loop."""
        assert self.recorder is not None and self.results is not None
        try:
            if self.recorder.media_id != media_id:
                raise OSError(errno.ENODATA, "the clip was not started (its start was dropped)")
            result = self.recorder.finish(plan.end)
        except OSError as exc:
            self._failed("clip", exc, None)
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
        self._to_loop(self.results.clip_saved, plan, result)

    def telemetry(self) -> dict[str, Any]:
        return {
            "recording": self.planner.active is not None,
            "ring": {"frames": len(self.ring), "kb": self.ring.bytes // 1024, "seconds": round(self.ring.span(), 2)},
            "live": {**self.live.telemetry(), "encoded": self.live_encoded},
            "dropped": {"frames": self.slot.dropped, "clip_frames": self.clip_frames_dropped,
                        "requests": self.control_dropped},
            "timelapse_frames": self.timelapse.telemetry(),
        }
