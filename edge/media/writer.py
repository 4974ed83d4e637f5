"""Media files on disk: atomic JPEG writes, MP4 clip recording, codec choice, and the writer threads.

Owns every write under the media folder. A file only gets its final name once it is complete and
fsynced (``.part`` name → fsync → rename → fsync of the folder, with :mod:`edge.util.fsutil`; mode 0600), so
anything that announces a file announces a complete one. Work runs on :class:`JobThread` s (bounded
queues, off the capture, inference and event-loop threads); results go back through callbacks the
caller makes thread-safe.

Clips are encoded by :mod:`edge.media.encoder` (H.264 through PyAV; OpenCV ``mp4v`` as last resort).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.media.encoder import ClipWriter, EncoderChoice, EncoderError, open_clip
from edge.media.planner import ConstantRate
from edge.media.ring import AudioChunk, EncodedFrame
from edge.util.fsutil import PART_SUFFIX, commit_file

log = logging.getLogger(__name__)



class DiskFull(OSError):
    def __init__(self, detail: str) -> None:
        super().__init__(errno.ENOSPC, detail)


def check_space(folder: Path, need: int, reserve: int) -> None:
    """Refuse a write that would leave less than ``reserve`` bytes free on the media file system."""
    free = shutil.disk_usage(folder).free
    if free - need < reserve:
        raise DiskFull(f"only {free // 2**20} MiB free on {folder}; media keeps {reserve // 2**20} MiB in reserve")




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
    """One clip at a time, fed frame by frame on the clip writer thread, written at a constant rate.

    Encoders come from :func:`edge.media.encoder.choose_encoders` (proven at start); when one fails
    in a clip, that clip ends with the error and the next clip uses the next encoder of the chain.
    Sound chunks are placed on the clip's timeline by their capture time (sample 0 = first frame).
    """

    def __init__(self, folder: Path, fps: float, encoders: list[EncoderChoice], reserve: int,
                 audio_rate: int | None = None) -> None:
        self.folder, self.fps, self.encoders, self.reserve = folder, fps, list(encoders), reserve
        self.audio_rate = audio_rate
        self.media_id: str | None = None
        self.writer: ClipWriter | None = None
        self.part: Path | None = None
        self.rate: ConstantRate | None = None
        self.held: np.ndarray | None = None
        self.size: tuple[int, int] = (0, 0)
        self.first: EncodedFrame | None = None
        self.error: OSError | None = None
        self.frames_in = 0
        self.poster_at = 0.0
        self.poster: bytes | None = None
        self.early_audio: list[AudioChunk] = []
        self.audio_chunks = 0
        self.failed_encoders: list[str] = []
        # Called on the clips thread when a clip fails while recording (media id, error): the owner ends
        # that clip at once, so the next trigger starts a new clip instead of joining a dead one.
        self.on_failure: Callable[[str, OSError], None] | None = None

    @property
    def encoder(self) -> EncoderChoice | None:
        return self.encoders[0] if self.encoders else None

    def start(self, media_id: str, preroll: list[EncodedFrame], audio: list[AudioChunk] | None = None,
              poster_at: float | None = None) -> None:
        self.abort()
        self.media_id, self.error, self.frames_in, self.audio_chunks = media_id, None, 0, 0
        self.poster_at = poster_at if poster_at is not None else (preroll[-1].captured if preroll else 0.0)
        self.part = self.folder / f".{media_id}{PART_SUFFIX}.mp4"
        self.early_audio = list(audio or [])
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
            if self.poster is None and frame.captured >= self.poster_at:
                self.poster = frame.jpeg
        except OSError as exc:
            self._fail(exc)

    def add_audio(self, chunk: AudioChunk) -> None:
        if self.media_id is None or self.error is not None:
            return
        if self.writer is None or self.first is None:
            if len(self.early_audio) < 600:  # at most a minute of sound waits for the first frame
                self.early_audio.append(chunk)
            return
        try:
            self._write_audio(chunk)
        except OSError as exc:
            self._fail(exc)

    def _write_audio(self, chunk: AudioChunk) -> None:
        assert self.writer is not None and self.first is not None
        if self.audio_rate is None or chunk.rate != self.audio_rate:
            return
        start = round((chunk.captured - self.first.captured) * chunk.rate)
        samples = chunk.samples
        if start < 0:  # sound from before the first frame is not part of the clip
            samples, start = samples[-start:], 0
        if len(samples):
            self.writer.add_audio(samples, start)
            self.audio_chunks += 1

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        if self.on_failure is not None and self.media_id is not None:
            self.on_failure(self.media_id, exc)
        if isinstance(exc, EncoderError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT) \
                and self.encoder is not None and len(self.encoders) > 1:
            failed = self.encoders.pop(0)
            self.failed_encoders.append(failed.name)
            log.error("clip encoder %s failed (%s); the next clips use %s", failed.name, exc, self.encoders[0].name)
        self.abort(keep_error=True)

    def _open(self, frame: EncodedFrame, image: np.ndarray) -> None:
        assert self.part is not None
        check_space(self.folder, 8 * len(frame.jpeg) * 10, self.reserve)
        self.size = (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)
        if self.encoder is None:
            raise OSError(errno.EIO, "no working clip encoder (see the log at start)")
        self.writer = open_clip(self.part, self.encoder, self.size, self.fps, self.audio_rate)
        self.rate = ConstantRate(self.fps, frame.captured)
        self.first = frame
        early, self.early_audio = self.early_audio, []
        for chunk in early:
            self._write_audio(chunk)

    def _fill(self, count: int) -> None:
        if self.held is None or self.writer is None:
            return
        for _ in range(count):
            self.writer.add_video(self.held)

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
        writer = self.writer
        try:
            count = self.rate.slots_before(end + 1e-6)
            if self.rate.emitted == 0:  # a clip holds at least its one frame
                count, self.rate.emitted = 1, 1
            self._fill(count)
            self.writer = None
            writer.close()
        except OSError as exc:
            self.writer = writer
            self._fail(exc)
            self.error, self.media_id = None, None
            raise
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
                  "codec": writer.encoder.codec, "encoder": writer.encoder.name, "frames": self.frames_in,
                  "audio": self.audio_rate is not None and writer.encoder.audio and self.audio_chunks > 0,
                  "poster": self.poster or first.jpeg}
        self.media_id, self.first, self.held, self.rate, self.part, self.poster = None, None, None, None, None, None
        return result

    def abort(self, keep_error: bool = False) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.abort()
        if self.part is not None:
            with contextlib.suppress(OSError):
                self.part.unlink()
        if not keep_error:
            self.media_id = None
        self.first, self.held, self.rate, self.part, self.poster = None, None, None, None, None
        self.early_audio = []


def remove_partials(folder: Path) -> int:
    """Delete ``.part`` leftovers of a crash (they were never announced)."""
    removed = 0
    for path in folder.glob(f".*{PART_SUFFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed
