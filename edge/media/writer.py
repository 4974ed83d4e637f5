"""Media files on disk: atomic JPEG writes, MP4 clip recording, codec choice, and the writer threads.

Owns every write under the media folder. A file only gets its final name once it is complete and
fsynced (``.part`` name → fsync → rename → fsync of the folder, with :mod:`edge.fsutil`; mode 0600), so
anything that announces a file announces a complete one. Work runs on :class:`JobThread` s (bounded
queues, off the capture, inference and event-loop threads); results go back through callbacks the
caller makes thread-safe.

Codec: OpenCV's VideoWriter is asked for H.264 (``avc1``) first and falls back to MPEG-4 Part 2
(``mp4v``). The opencv-python wheels carry no software H.264 encoder (x264 is GPL); their FFmpeg
does include ``h264_v4l2m2m``, the Raspberry Pi 4's hardware encoder, so a Pi 4 gets H.264 while a
Pi 5 (no hardware encoder) and most PCs get ``mp4v``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.fsutil import PART_SUFFIX, commit_file
from edge.media.planner import ConstantRate
from edge.media.ring import EncodedFrame

log = logging.getLogger(__name__)

CODECS = (("avc1", "h264"), ("mp4v", "mpeg4"))  # (fourcc, codec name) in order of preference


class DiskFull(OSError):
    def __init__(self, detail: str) -> None:
        super().__init__(errno.ENOSPC, detail)


def check_space(folder: Path, need: int, reserve: int) -> None:
    """Refuse a write that would leave less than ``reserve`` bytes free on the media file system."""
    free = shutil.disk_usage(folder).free
    if free - need < reserve:
        raise DiskFull(f"only {free // 2**20} MiB free on {folder}; media keeps {reserve // 2**20} MiB in reserve")


def open_video(path: Path, fourcc: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter | None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if writer.isOpened():
        return writer
    writer.release()
    return None


def probe_codecs(size: tuple[int, int] = (320, 240)) -> list[str]:
    """The fourccs of :data:`CODECS` this OpenCV build can write to an MP4 here, in preference order."""
    usable = []
    # A codec that is not there is an expected answer here, not an error for the log.
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        _probe_into(usable, size)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    return usable


def _probe_into(usable: list[str], size: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory(prefix="dogmon-codec-") as tmp:
        for fourcc, _ in CODECS:
            path = Path(tmp) / f"probe-{fourcc}.mp4"
            writer = open_video(path, fourcc, 10, size)
            if writer is None:
                continue
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            for _ in range(3):
                writer.write(frame)
            writer.release()
            if path.is_file() and path.stat().st_size > 0:
                usable.append(fourcc)


class JobThread(threading.Thread):
    """Runs callables in order on its own thread; the queue is bounded so a stuck disk cannot pile up work."""

    def __init__(self, name: str, max_jobs: int) -> None:
        super().__init__(name=name, daemon=True)
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(max_jobs)
        self.dropped = 0

    def offer(self, job: Callable[[], None]) -> bool:
        """Queue a job that may be dropped when the thread is behind (clip frames)."""
        try:
            self.jobs.put_nowait(job)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def submit(self, job: Callable[[], None], timeout: float = 5.0) -> bool:
        """Queue a job that must not be dropped (start/end of a clip, a snapshot), waiting for room."""
        try:
            self.jobs.put(job, timeout=timeout)
            return True
        except queue.Full:
            self.dropped += 1
            log.error("%s: queue stayed full for %.0f s; a media job was dropped", self.name, timeout)
            return False

    def stop(self) -> None:
        """Ask the thread to end after its queued jobs; never blocks (a full queue dies with the process)."""
        with contextlib.suppress(queue.Full):
            self.jobs.put_nowait(None)

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("%s: media job failed", self.name)


class ClipRecorder:
    """One clip at a time, fed frame by frame on the clip writer thread, written at a constant rate."""

    def __init__(self, folder: Path, fps: float, codecs: list[str], reserve: int) -> None:
        self.folder, self.fps, self.codecs, self.reserve = folder, fps, codecs, reserve
        self.media_id: str | None = None
        self.writer: cv2.VideoWriter | None = None
        self.part: Path | None = None
        self.rate: ConstantRate | None = None
        self.held: np.ndarray | None = None
        self.size: tuple[int, int] = (0, 0)
        self.first: EncodedFrame | None = None
        self.codec: str | None = None
        self.error: OSError | None = None
        self.frames_in = 0

    def start(self, media_id: str, preroll: list[EncodedFrame]) -> None:
        self.abort()
        self.media_id, self.error, self.frames_in = media_id, None, 0
        self.part = self.folder / f".{media_id}{PART_SUFFIX}.mp4"
        for frame in preroll:
            self.add(frame)

    def add(self, frame: EncodedFrame) -> None:
        if self.media_id is None or self.error is not None:
            return
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return
        try:
            if self.writer is None:
                self._open(frame, image)
            assert self.rate is not None and self.writer is not None
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            self._fill(self.rate.slots_before(frame.captured))
            self.held = image
            self.frames_in += 1
        except OSError as exc:
            self.error = exc
            self.abort()

    def _open(self, frame: EncodedFrame, image: np.ndarray) -> None:
        assert self.part is not None
        check_space(self.folder, 8 * len(frame.jpeg) * 10, self.reserve)
        self.size = (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)
        for fourcc in self.codecs:
            self.writer = open_video(self.part, fourcc, self.fps, self.size)
            if self.writer is not None:
                self.codec = fourcc
                break
        if self.writer is None:
            raise OSError(errno.EIO, f"OpenCV could not open an MP4 writer ({', '.join(self.codecs) or 'no codec'})")
        self.rate = ConstantRate(self.fps, frame.captured)
        self.first = frame

    def _fill(self, count: int) -> None:
        if self.held is None or self.writer is None:
            return
        for _ in range(count):
            self.writer.write(self.held)

    def finish(self, end: float) -> dict[str, Any]:
        """Write up to ``end`` (monotonic), close, fsync and rename; return what the clip holds."""
        media_id, first = self.media_id, self.first
        if self.error is not None:
            error, self.error = self.error, None
            self.abort()
            raise error
        if self.writer is None or self.rate is None or first is None or media_id is None:
            self.abort()
            raise OSError(errno.ENODATA, "no frames were recorded for the clip")
        count = self.rate.slots_before(end + 1e-6)
        if self.rate.emitted == 0:  # a clip holds at least its one frame
            count, self.rate.emitted = 1, 1
        self._fill(count)
        self.writer.release()
        self.writer = None
        assert self.part is not None
        final = self.folder / f"{media_id}.mp4"
        try:
            commit_file(self.part, final)
        except OSError:
            self.abort()
            raise
        result = {"media_id": media_id, "file": final.name, "bytes": final.stat().st_size,
                  "width": self.size[0], "height": self.size[1], "start": first.wall,
                  "start_mono": first.captured, "duration": self.rate.duration, "fps": self.fps,
                  "codec": self.codec, "frames": self.frames_in}
        self.media_id, self.first, self.held, self.rate, self.part = None, None, None, None, None
        return result

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.part is not None:
            with contextlib.suppress(OSError):
                self.part.unlink()
        self.media_id, self.first, self.held, self.rate, self.part = None, None, None, None, None


def remove_partials(folder: Path) -> int:
    """Delete ``.part`` leftovers of a crash (they were never announced)."""
    removed = 0
    for path in folder.glob(f".*{PART_SUFFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed
