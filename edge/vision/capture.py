"""Camera capture: open any OpenCV source, keep only the newest frame, reconnect with backoff.

Owns the capture thread and the one-slot :class:`LatestFrame` holder. The consumer always gets the
newest frame; a frame it never took is counted as dropped, never queued. A source that fails to open
or stops delivering is retried with capped exponential backoff, and each online/offline transition is
reported once through ``on_status``. A file source plays at its own frame rate (a camera stand-in),
or, with ``realtime=False``, hands over each frame only when the previous one was taken (benchmarks:
no frame is decoded that nobody needs).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.core.frames import Frame
from edge.util import clock
from edge.util.masking import mask_credentials
from edge.util.retry import RECONNECT_INITIAL, RECONNECT_MAX, Backoff

log = logging.getLogger(__name__)

DEMO_FILE = "dog_walking_vidtome.mp4"


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What ``DOGMON_SOURCE`` resolved to: how to open it and whether it is a file."""

    target: str | int
    api: int
    is_file: bool
    display: str


def resolve_source(source: str, model_dir: Path) -> SourceSpec:
    """Turn the configured source string into something ``cv2.VideoCapture`` opens."""
    if source == "demo":
        path = model_dir / DEMO_FILE
        return SourceSpec(str(path), cv2.CAP_ANY, True, f"demo ({path})")
    if source.isdigit():
        return SourceSpec(int(source), cv2.CAP_ANY, False, f"camera {source}")
    if source.startswith("gst:"):
        return SourceSpec(source[4:], cv2.CAP_GSTREAMER, False, "gstreamer pipeline")
    if re.match(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", source):
        return SourceSpec(source, cv2.CAP_FFMPEG, False, mask_credentials(source))
    if source.startswith("/dev/video"):
        return SourceSpec(source, cv2.CAP_ANY, False, source)
    return SourceSpec(source, cv2.CAP_ANY, True, source)


class LatestFrame:
    """A one-slot holder: ``put`` overwrites, ``get`` waits for a frame newer than the last taken."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken_index = -1
        self.dropped = 0
        self.delivered = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None and self._frame.index > self._taken_index:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, or None after ``timeout`` seconds without one."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None and self._frame.index > self._taken_index,
                                       timeout):
                return None
            assert self._frame is not None
            self._taken_index = self._frame.index
            self.delivered += 1
            self._cond.notify_all()
            return self._frame

    def wait_taken(self, stop: threading.Event, timeout: float = 0.5) -> None:
        """Block the producer until the held frame was taken (lock-step mode for benchmarks)."""
        with self._cond:
            while not stop.is_set() and self._frame is not None and self._frame.index > self._taken_index:
                self._cond.wait(timeout)

    def peek(self) -> Frame | None:
        with self._cond:
            return self._frame


StatusCallback = Callable[[bool, dict], None]


class CaptureThread(threading.Thread):
    """Reads the source in its own thread; reports ``on_status(online, info)`` on each transition."""

    def __init__(self, spec: SourceSpec, holder: LatestFrame, on_status: StatusCallback, *, loop: bool = True,
                 realtime: bool = True, width: int = 0, height: int = 0, fps: float = 0.0,
                 backoff_initial: float = RECONNECT_INITIAL, backoff_max: float = RECONNECT_MAX,
                 stall_seconds: float = 5.0, on_frame: Callable[[], None] | None = None,
                 analyse: Callable[[np.ndarray], Any] | None = None) -> None:
        super().__init__(name="capture", daemon=True)
        self.spec, self.holder, self.on_status = spec, holder, on_status
        self.loop_file, self.realtime = loop, realtime
        self.width, self.height, self.fps = width, height, fps
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stall_seconds = stall_seconds
        self.on_frame = on_frame  # e.g. a rate counter for telemetry (must be thread-safe and cheap)
        # runs on every captured frame in this thread (the motion stage: it must see frames the consumer
        # drops, and it costs the inference thread nothing); its result travels as Frame.motion
        self.analyse = analyse
        self.stop_event = threading.Event()
        self._status_lock = threading.Lock()
        self.online: bool | None = None  # unknown until the first open attempt, so a dead start is reported
        self.ended = False
        self.reconnects = 0
        self.frame_size: tuple[int, int] | None = None
        self.source_fps: float = 0.0
        self.last_frame_at: float | None = None
        self.offline_reason: str | None = None  # why it is offline now (telemetry, diag); None while online
        self._index = 0

    def stop(self) -> None:
        self.stop_event.set()

    def _open(self) -> cv2.VideoCapture | None:
        if self.spec.is_file and not Path(str(self.spec.target)).is_file():
            return None
        if self.spec.api == cv2.CAP_FFMPEG:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.stall_seconds * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.stall_seconds * 1000)]
            cap = cv2.VideoCapture(self.spec.target, self.spec.api, params)
        else:
            cap = cv2.VideoCapture(self.spec.target, self.spec.api)
        if not cap.isOpened():
            cap.release()
            return None
        if not self.spec.is_file:
            if self.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it keep no stale frames either
        return cap

    def _set_status(self, online: bool, **info: object) -> None:
        # The capture thread and the inference thread's stall watchdog both report; the lock keeps each
        # transition and its event together, so the bus hears them in the order the state changed.
        with self._status_lock:
            if online == self.online:
                return
            self.online = online
            self.offline_reason = None if online else str(info.get("reason", ""))
            info["source"] = self.spec.display
            try:
                self.on_status(online, info)
            except Exception:  # a consumer bug must not kill capture
                log.exception("capture status callback failed")

    def mark_stalled(self) -> None:
        """Called by the consumer's watchdog when no frame came for ``stall_seconds``."""
        self._set_status(False, reason="stalled", stalled_seconds=self.stall_seconds)

    def run(self) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        while not self.stop_event.is_set():
            cap = self._open()
            if cap is None:
                # A missing file is not a cable or network problem: say so, in the event, telemetry and log.
                missing = self.spec.is_file and not Path(str(self.spec.target)).is_file()
                reason = f"no such file: {self.spec.target}" if missing else "cannot open source"
                self._set_status(False, reason=reason, retry_in=round(backoff.delay, 2))
                log.warning("camera %s: %s; retrying in %.1fs", self.spec.display,
                            "no such file" if missing else "cannot open", backoff.delay)
                self.stop_event.wait(backoff.failed())
                self.reconnects += 1
                continue
            try:
                delivered = self._read_loop(cap)
            finally:
                cap.release()
            if self.ended or self.stop_event.is_set():
                break
            if delivered:
                backoff.reset()
            self._set_status(False, reason="stream ended or read failed", retry_in=round(backoff.delay, 2))
            log.warning("camera %s: lost; reconnecting in %.1fs", self.spec.display, backoff.delay)
            self.stop_event.wait(backoff.failed())
            self.reconnects += 1

    def _read_loop(self, cap: cv2.VideoCapture) -> bool:
        """Read until failure or stop; True when at least one frame arrived."""
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.source_fps = fps if 0 < fps < 1000 else 0.0
        period = 1.0 / self.source_fps if (self.spec.is_file and self.realtime and self.source_fps) else 0.0
        next_due = time.monotonic()
        delivered = False
        while not self.stop_event.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                if self.spec.is_file and delivered:
                    if self.loop_file:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        ok, image = cap.read()
                    else:
                        self.ended = True
                        self._set_status(False, reason="end of file")
                        return delivered
                if not ok or image is None:
                    return delivered
            now = time.monotonic()
            self._index += 1
            self.frame_size = (image.shape[1], image.shape[0])
            self.last_frame_at = now
            if not self.online:
                self._set_status(True, width=image.shape[1], height=image.shape[0], fps=round(self.source_fps, 2))
            delivered = True
            motion = None
            if self.analyse is not None:
                try:
                    motion = self.analyse(image)
                except Exception:  # the consumer falls back to its own analysis; capture goes on
                    log.exception("frame analysis failed")
            self.holder.put(Frame(image, self._index, clock.monotonic(), clock.now(), motion))
            if self.on_frame is not None:
                self.on_frame()
            if period:
                next_due = max(next_due + period, now - period)
                self.stop_event.wait(max(0.0, next_due - time.monotonic()))
            elif self.spec.is_file:
                self.holder.wait_taken(self.stop_event)
        return delivered
