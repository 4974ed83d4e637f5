"""Pixels for media: JPEG encoding, resizing, and the overlay drawn on snapshots.

Pure functions of numpy images (OpenCV for the drawing and codecs); no files, no threads. The
overlay shows what the tablet shows live: dog tracks (green, with id and confidence), other
detections (orange), zones (their colour, filled faintly, occupied ones thicker) and pose keypoints
with their skeleton when a pose overlay for that moment exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

SNAPSHOT_QUALITY = 85
STREAM_QUALITY = 75
DOG_COLOUR = (60, 200, 60)      # BGR
OTHER_COLOUR = (0, 150, 255)
ZONE_COLOUR = (255, 160, 40)
KEYPOINT_COLOUR = (40, 40, 255)


@dataclasses.dataclass(frozen=True, slots=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float
    track_id: int | None = None


def encode_jpeg(image: np.ndarray, quality: int = SNAPSHOT_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


THUMB_WIDTH = 320
THUMB_MAX_BYTES = 25_000


def thumbnail(image: np.ndarray, width: int = THUMB_WIDTH, max_bytes: int = THUMB_MAX_BYTES) -> bytes:
    """A small JPEG for timelines: ``width`` px wide (never wider than the image), at most ``max_bytes``."""
    small = fit_width(image, width)
    for quality in (80, 70, 60, 50, 40, 30):
        data = encode_jpeg(small, quality)
        if len(data) <= max_bytes:
            return data
    return encode_jpeg(fit_width(small, width // 2), 30)


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """Scale down to ``width`` keeping the aspect (never up; 0 keeps the size). Even sizes for codecs."""
    h, w = image.shape[:2]
    if width <= 0 or w <= width:
        return image
    height = max(2, round(h * width / w / 2) * 2)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _hex_colour(value: Any, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            r, g, b = (int(value[i:i + 2], 16) for i in (1, 3, 5))
            return (b, g, r)
        except ValueError:
            pass
    return default


def draw_overlay(image: np.ndarray, boxes: Sequence[Box], zones: Sequence[dict[str, Any]] = (),
                 poses: dict[str, Any] | None = None) -> np.ndarray:
    """A copy of ``image`` with boxes, zones (normalised polygons) and keypoints drawn on it."""
    out = image.copy()
    h, w = out.shape[:2]
    thickness = max(1, round(min(w, h) / 240))
    if zones:
        shade = out.copy()
        for zone in zones:
            points = np.array([[x * w, y * h] for x, y in zone.get("points", [])], dtype=np.int32)
            if len(points) < 3:
                continue
            colour = _hex_colour(zone.get("color"), ZONE_COLOUR)
            cv2.fillPoly(shade, [points], colour)
            cv2.polylines(out, [points], True, colour, thickness * (2 if zone.get("occupied") else 1))
            x, y = points.min(axis=0)
            cv2.putText(out, str(zone.get("name", ""))[:40], (int(x) + 4, int(y) + 16), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, colour, 1, cv2.LINE_AA)
        cv2.addWeighted(shade, 0.2, out, 0.8, 0, dst=out)
    for box in boxes:
        colour = DOG_COLOUR if box.label == "dog" else OTHER_COLOUR
        p1, p2 = (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2))
        cv2.rectangle(out, p1, p2, colour, thickness)
        text = f"{box.label}{'' if box.track_id is None else f' #{box.track_id}'} {box.score:.2f}"
        cv2.putText(out, text, (p1[0] + 3, max(12, p1[1] - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)
    if poses:
        threshold = float(poses.get("keypoint_threshold") or 0.3)
        skeleton = poses.get("skeleton") or []
        for pose in poses.get("poses", []):
            keypoints = pose.get("keypoints") or []
            visible = {i: (int(p[0]), int(p[1])) for i, p in enumerate(keypoints)
                       if len(p) >= 3 and p[2] >= threshold}
            for a, b in skeleton:
                if a in visible and b in visible:
                    cv2.line(out, visible[a], visible[b], KEYPOINT_COLOUR, thickness, cv2.LINE_AA)
            for point in visible.values():
                cv2.circle(out, point, thickness + 2, KEYPOINT_COLOUR, -1, cv2.LINE_AA)
    return out
