"""Test videos composed from the real shared photos, written with OpenCV (a camera stand-in)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.tools.scenes import fit  # one letterbox for the benchmarks' scenes and the tests' videos


def compose_video(path: Path, segments: Sequence[tuple[Path | np.ndarray | None, float]], fps: float = 10.0,
                  size: tuple[int, int] = (640, 480)) -> Path:
    """Write a video of ``(image or None, seconds)`` segments; None is a plain empty room (grey frame).

    Also returns the letterbox geometry implicitly: each photo is centred with its aspect kept, so a
    box found in the photo maps to the video frame by the same ratio and offset as :func:`fit`.
    """
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for source, seconds in segments:
        if source is None:
            frame = np.full((height, width, 3), 90, dtype=np.uint8)
        elif isinstance(source, np.ndarray):
            frame = fit(source, width, height)
        else:
            image = cv2.imread(str(source))
            if image is None:
                raise FileNotFoundError(f"cannot read test photo {source}")
            frame = fit(image, width, height)
        for _ in range(max(1, round(seconds * fps))):
            writer.write(frame)
    writer.release()
    return path


def photo_box_in_frame(photo: Path, box_xyxy: Sequence[float], size: tuple[int, int] = (640, 480)) -> list[float]:
    """Map a box in photo pixels to the composed frame (same letterbox as :func:`fit`)."""
    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    width, height = size
    ratio = min(width / w, height / h)
    x0, y0 = (width - int(w * ratio)) // 2, (height - int(h * ratio)) // 2
    x1, y1, x2, y2 = box_xyxy
    return [x1 * ratio + x0, y1 * ratio + y0, x2 * ratio + x0, y2 * ratio + y0]


def moving_dog_video(path: Path, photo: Path, seconds: float = 30.0, fps: float = 10.0, dog_width: int = 320,
                     speed: float = 120.0, size: tuple[int, int] = (640, 480)) -> Path:
    """A dog photo (scaled to ``dog_width``) sliding left and right across a grey room at ``speed`` px/s:
    a box drawn from a stale overlay would visibly trail the dog."""
    width, height = size
    image = cv2.imread(str(photo))
    if image is None:
        raise FileNotFoundError(f"cannot read test photo {photo}")
    dog_height = round(image.shape[0] * dog_width / image.shape[1])
    dog = cv2.resize(image, (dog_width, dog_height), interpolation=cv2.INTER_AREA)
    span = width - dog.shape[1]
    top = height - dog.shape[0] - 10
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for i in range(round(seconds * fps)):
        travel = (i / fps * speed) % (2 * span)
        x = int(travel if travel <= span else 2 * span - travel)
        frame = np.full((height, width, 3), 90, dtype=np.uint8)
        frame[top:top + dog.shape[0], x:x + dog.shape[1]] = dog
        writer.write(frame)
    writer.release()
    return path
