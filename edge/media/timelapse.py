"""Time-lapse frames, kept through the day: a small JPEG every ``DOGMON_TIMELAPSE_SECONDS``, and the day's heat map.

Fed on the ``media`` thread with the frames it already has (:meth:`TimelapseCollector.offer`; no detector
work): every ``interval`` s of wall time it scales the newest frame to ``WIDTH`` px, encodes it, and hands the
write to a writer thread (the snapshot writer's bounded queue: a frame that does not fit is skipped, never
waited for). Each frame with a dog adds the time since the previous frame to a ``ROWS``×``COLS`` grid cell
under the dog's ground point (the bottom middle of its box), so the day's heat map costs a few additions per
frame; it is saved beside the frames with each one.

On disk: ``<media>/timelapse/<YYYY-MM-DD>/<unix s>.jpg`` and ``heat.npy`` (the day in device local time).
:mod:`edge.media.daily` assembles a day's folder into a video and removes folders older than ``KEEP_DAYS``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.media import render
from edge.media.handover import FrameInfo
from edge.media.reel import day_of
from edge.media.writer import check_space
from edge.util.fsutil import atomic_write, private_dir

log = logging.getLogger(__name__)

FOLDER = "timelapse"
WIDTH = 480          # time-lapse frames are this wide (≈ 15–25 KB at quality 70)
QUALITY = 70
COLS, ROWS = 32, 18  # the heat map's grid, as edge.behaviour.heatmap's
MAX_STEP = 1.0       # a stalled camera adds at most this many seconds to a cell
KEEP_DAYS = 2        # days of frames kept after their day (a time-lapse can be made again meanwhile)
HEAT_FILE = "heat.npy"


def day_folder(media: Path, day: str) -> Path:
    return media / FOLDER / day


def day_frames(media: Path, day: str) -> list[tuple[float, Path]]:
    """A day's frames (wall time, path) in time order."""
    folder = day_folder(media, day)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("*.jpg"):
        with contextlib.suppress(ValueError):
            found.append((float(path.stem), path))
    return sorted(found)


def day_heat(media: Path, day: str) -> np.ndarray | None:
    try:
        grid = np.load(day_folder(media, day) / HEAT_FILE)
        return grid if grid.shape == (ROWS, COLS) else None
    except (OSError, ValueError):
        return None


def remove_old_days(media: Path, today: str, keep_days: int = KEEP_DAYS) -> list[str]:
    """Delete frame folders more than ``keep_days`` before ``today``; the days removed."""
    import datetime as dt

    oldest = (dt.date.fromisoformat(today) - dt.timedelta(days=keep_days)).isoformat()
    removed = []
    root = media / FOLDER
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir() and folder.name < oldest:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


class TimelapseCollector:
    """Media-thread state: when the next frame is due, and the day's heat grid."""

    def __init__(self, media: Path, interval: float, reserve: int,
                 submit: Callable[[Callable[[], None]], bool]) -> None:
        self.media, self.interval, self.reserve, self.submit = media, interval, reserve, submit
        self.next_at = 0.0
        self.day: str | None = None
        self.heat: np.ndarray = np.zeros((ROWS, COLS), np.float32)
        self.last_wall: float | None = None
        self.saved = 0
        self.skipped = 0

    def offer(self, info: FrameInfo) -> None:
        if self.interval <= 0:
            return
        day = day_of(info.wall)
        if day != self.day:
            self.day, self.next_at = day, 0.0
            kept = day_heat(self.media, day)  # the day so far, after a restart
            self.heat = kept.astype(np.float32) if kept is not None else np.zeros((ROWS, COLS), np.float32)
        self._add_heat(info)
        if info.wall < self.next_at:
            return
        self.next_at = info.wall + self.interval if self.next_at == 0 else max(self.next_at + self.interval,
                                                                               info.wall)
        jpeg = render.encode_jpeg(render.fit_width(info.image, WIDTH), QUALITY)
        heat = io.BytesIO()
        np.save(heat, self.heat)
        folder, name = day_folder(self.media, day), f"{info.wall:.3f}.jpg"
        if not self.submit(lambda: self._write(folder, name, jpeg, heat.getvalue())):
            self.skipped += 1

    def _add_heat(self, info: FrameInfo) -> None:
        step = 0.0 if self.last_wall is None else min(max(info.wall - self.last_wall, 0.0), MAX_STEP)
        self.last_wall = info.wall
        height, width = info.image.shape[:2]
        if step <= 0 or not width or not height:
            return
        for box in info.boxes:
            if box.label == "dog":
                x, y = (box.x1 + box.x2) / 2 / width, box.y2 / height
                row, col = min(max(int(y * ROWS), 0), ROWS - 1), min(max(int(x * COLS), 0), COLS - 1)
                self.heat[row, col] += step

    def _write(self, folder: Path, name: str, jpeg: bytes, heat: bytes) -> None:
        """Writer thread: the frame and the heat map so far (a crash loses at most the newest frame)."""
        try:
            check_space(self.media, len(jpeg) + len(heat), self.reserve)
            private_dir(folder.parent)
            private_dir(folder)
            atomic_write(folder / name, jpeg, sync_dir=False)
            atomic_write(folder / HEAT_FILE, heat, sync_dir=False)
            self.saved += 1
        except OSError as exc:  # a full disk is reported by clips and snapshots; the time-lapse just has a gap
            self.skipped += 1
            log.debug("time-lapse frame not saved: %s", exc)

    def telemetry(self) -> dict[str, int]:
        return {"saved": self.saved, "skipped": self.skipped}
