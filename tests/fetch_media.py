"""A composed fetch clip: the shared Rottweiler photo with a drawn tennis ball in its mouth, coming closer.

Checked against the real YOLOX-Nano: the drawn ball (yellow-green, shaded, white seams, radius 62 px
in the 1000×760 photo) is found as ``sports ball`` in most frames at these scales (once or twice as
``frisbee``, also a toy), so the clip exercises the real detector, not a stand-in.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROTTWEILER = "dog_standing_rottweiler_side_wikimedia.jpg"
MOUTH = (75, 175)        # the open mouth in the 1000×760 photo (the dog faces left)
BALL_RADIUS = 62
SIZE = (800, 450)


def draw_tennis_ball(image: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    """Paint a shaded yellow-green ball with two white seams onto ``image`` (BGR, in place)."""
    cx, cy = centre
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float32)
    inside = np.sqrt(xx ** 2 + yy ** 2) <= radius
    light = np.clip(1.0 - 0.55 * np.sqrt((xx + 0.35 * radius) ** 2 + (yy + 0.35 * radius) ** 2) / radius, 0.25, 1.0)
    ball = np.array([40, 230, 200], np.float32)[None, None, :] * light[..., None]
    seam = ((np.abs(np.sqrt((xx - 1.25 * radius) ** 2 + yy ** 2) - 0.95 * radius) < 0.07 * radius)
            | (np.abs(np.sqrt((xx + 1.25 * radius) ** 2 + yy ** 2) - 0.95 * radius) < 0.07 * radius))
    ball[seam] = 235 * light[seam][..., None]
    region = image[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1]
    region[inside] = ball[inside].astype(np.uint8)


def place(photo: np.ndarray, scale: float, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The photo scaled by ``scale``, standing on the bottom edge, centred, on a plain green floor."""
    width, height = size
    frame = np.full((height, width, 3), (90, 140, 110), np.uint8)
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    x0, y0 = (width - w) // 2, height - h
    frame[max(y0, 0):, x0:x0 + w] = small[max(-y0, 0):, :]
    return frame


def compose_fetch_video(path: Path, media: Path, fps: float = 10.0, lead_seconds: float = 4.0) -> Path:
    """Empty floor, the dog without the ball (1 s), carrying it towards the camera (3 s, box area ×2.6),
    holding it close (2 s), then without it (1.5 s)."""
    photo = cv2.imread(str(media / ROTTWEILER))
    if photo is None:
        raise FileNotFoundError(f"test photo missing: {media / ROTTWEILER}")
    with_ball = photo.copy()
    draw_tennis_ball(with_ball, MOUTH, BALL_RADIUS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    n = lambda seconds: round(seconds * fps)  # noqa: E731
    frames = [np.full((SIZE[1], SIZE[0], 3), (90, 140, 110), np.uint8)] * n(lead_seconds)
    frames += [place(photo, 0.38)] * n(1.0)
    carry = n(3.0)
    frames += [place(with_ball, 0.38 + 0.24 * i / (carry - 1)) for i in range(carry)]
    frames += [place(with_ball, 0.62)] * n(2.0)
    frames += [place(photo, 0.62)] * n(1.5)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
