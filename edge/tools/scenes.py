"""Camera stand-ins for benchmarks and tests: videos composed from the shared photos and clip with OpenCV.

Owns only the composition (pure numpy/OpenCV, files written with ``cv2.VideoWriter``) and
:func:`play`, which decodes a video with OpenCV and feeds its frames through a
:class:`~edge.vision.pipeline.FramePipeline` on the video's own clock (frame ``i`` at ``i / fps`` s), so a
60-second scene takes as long as its detector runs, not 60 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.protocol.messages import Message
from edge.vision.capture import Frame

BACKGROUND_GREY = 90


def fit(image: np.ndarray, width: int, height: int, background: int = BACKGROUND_GREY) -> np.ndarray:
    """Letterbox ``image`` into a ``width``×``height`` frame without distortion."""
    h, w = image.shape[:2]
    ratio = min(width / w, height / h)
    resized = cv2.resize(image, (int(w * ratio), int(h * ratio)), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), background, dtype=np.uint8)
    y0, x0 = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized
    return frame


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


def read_clip(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (item := capture.read())[0]:
        frames.append(item[1])
    capture.release()
    if not frames:
        raise FileNotFoundError(f"cannot decode any frame from {path}")
    return frames


def write_video(path: Path, frames: Iterator[np.ndarray], fps: float) -> Path:
    writer = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps,
                                     (frame.shape[1], frame.shape[0]))
            if not writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write {path}")
        writer.write(frame)
    if writer is None:
        raise ValueError("no frames to write")
    writer.release()
    return path


def sensor_noise(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A camera never repeats a frame exactly: add Gaussian noise (grey levels) to a still."""
    if sigma <= 0:
        return frame
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def still_frames(photo: np.ndarray, seconds: float, fps: float, size: tuple[int, int], noise: float = 2.0,
                 seed: int = 1) -> Iterator[np.ndarray]:
    frame = fit(photo, *size)
    rng = np.random.default_rng(seed)
    for _ in range(round(seconds * fps)):
        yield sensor_noise(frame, rng, noise)


def brightness_jump_frames(photo: np.ndarray, seconds: float, jump_at: float, fps: float, size: tuple[int, int],
                           gain: float = 1.6, noise: float = 2.0) -> Iterator[np.ndarray]:
    """A still scene whose brightness jumps by ``gain`` at ``jump_at`` s (a light switched on)."""
    frame = fit(photo, *size)
    bright = cv2.convertScaleAbs(frame, alpha=gain, beta=10)
    rng = np.random.default_rng(2)
    for i in range(round(seconds * fps)):
        yield sensor_noise(bright if i / fps >= jump_at else frame, rng, noise)


def walking_frames(clip: list[np.ndarray], seconds: float, fps: float, clip_fps: float = 10.0) -> Iterator[np.ndarray]:
    """The clip looped at ``fps`` (in-between frames blended, so a 30 fps camera sees smooth motion)."""
    for i in range(round(seconds * fps)):
        pos = (i * clip_fps / fps) % len(clip)
        a = int(pos)
        b = (a + 1) % len(clip)
        t = pos - a
        yield clip[a] if t < 1e-6 or b == 0 else cv2.addWeighted(clip[a], 1 - t, clip[b], t, 0)


def pasted_frames(clip: list[np.ndarray], background: np.ndarray, seconds: float, fps: float,
                  size: tuple[int, int], dog_height: int, at: tuple[int, int], appear_at: float = 0.0,
                  clip_fps: float = 10.0, noise: float = 2.0) -> Iterator[np.ndarray]:
    """The clip scaled to ``dog_height`` px and pasted at ``at`` (x, y) into a larger still scene from
    ``appear_at`` s on (before that: the empty scene); a small, distant dog in a wide frame."""
    scene = fit(background, *size)
    rng = np.random.default_rng(3)
    x, y = at
    small = [cv2.resize(f, (dog_height, dog_height), interpolation=cv2.INTER_AREA) for f in clip]
    for i in range(round(seconds * fps)):
        frame = scene.copy()
        if i / fps >= appear_at:
            index = int((i - appear_at * fps) * clip_fps / fps) % len(clip)
            frame[y:y + dog_height, x:x + dog_height] = small[index]
        yield sensor_noise(frame, rng, noise)


def play(video: Path, process: Callable[[Frame], list[Message]], start: float = 1000.0,
         on_frame: Callable[[int, list[Message]], None] | None = None) -> tuple[int, float]:
    """Decode ``video`` with OpenCV and hand each frame to ``process`` stamped on the video's clock.

    Returns (frames, fps). ``on_frame(index, messages)`` sees what each frame produced.
    """
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open {video}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    index = 0
    while (item := capture.read())[0]:
        now = start + index / fps
        out = process(Frame(item[1], index + 1, now, 1.7e9 + now))
        if on_frame is not None:
            on_frame(index, out)
        index += 1
    capture.release()
    return index, fps
