"""When the detector runs, and on which part of the frame: the motion-gating decision as pure logic.

:class:`DetectGate` sees, per captured frame, the motion result, the live dog tracks and presence, and
decides whether the detector runs on it, why, and whether on the whole frame or on a square crop.

The detector runs while something moves, after the scene changed at once (re-learned background),
while any dog track is live (confirmed, coasting or still collecting hits), while presence is on (so
``dog_left`` comes only after ``absence_seconds`` of real detector runs that found no dog, exactly as
without gating: a dog lying still never "leaves"), and otherwise with a whole-frame run at least every
``idle_seconds`` (a dog that arrived unseen is found): counted from the last *whole-frame* run, so crops
around motion or a track never postpone it. ``max_fps`` caps the rate (0: no cap). ``idle_seconds`` 0 turns
gating off: every frame is detected (still capped by ``max_fps``).

Regions: when the motion and track boxes cover a small part of a frame much larger than the model's
input, the detector runs on a square crop around them (at least ``min_side`` source pixels, so the
model never up-scales), with a full-frame pass at least every ``full_frame_seconds``.
No I/O and no clock of its own: every call takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from edge.vision.motion import MotionResult

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in source pixels


@dataclasses.dataclass(frozen=True, slots=True)
class GateDecision:
    run: bool
    reason: str                   # motion, scene_change, track, present, idle, always | still, capped
    region: Region | None = None  # None: the whole frame


@dataclasses.dataclass
class DetectGate:
    idle_seconds: float = 3.0
    max_fps: float = 0.0
    min_side: int = 416               # the model's input size in source pixels
    full_frame_seconds: float = 2.0
    region_max_share: float = 0.3     # boxes covering more of the frame than this: whole frame
    region_padding: float = 0.25      # margin around the boxes, as a share of their size
    regions: bool = True
    last_run: float | None = None
    last_full: float | None = None

    @property
    def enabled(self) -> bool:
        return self.idle_seconds > 0

    def decide(self, now: float, motion: MotionResult, track_boxes: Sequence[tuple[float, float, float, float]],
               present: bool, frame_size: tuple[int, int]) -> GateDecision:
        reason = self._reason(now, motion, track_boxes, present)
        if reason is None:
            return GateDecision(False, "still")
        if self.max_fps > 0 and self.last_run is not None and now - self.last_run < 1.0 / self.max_fps - 1e-6:
            return GateDecision(False, "capped")
        region = None
        if reason in ("motion", "track", "present"):
            region = self.region(now, [*motion.boxes, *track_boxes], frame_size)
        self.last_run = now
        if region is None:
            self.last_full = now
        return GateDecision(True, reason, region)

    def _reason(self, now: float, motion: MotionResult,
                track_boxes: Sequence[tuple[float, float, float, float]], present: bool) -> str | None:
        if not self.enabled:
            return "always"
        if motion.moving:
            return "motion"
        if motion.relearned:
            return "scene_change"
        if track_boxes:
            return "track"
        if present:
            return "present"
        if self.last_full is None or now - self.last_full >= self.idle_seconds - 1e-6:
            return "idle"
        return None

    def region(self, now: float, boxes: Sequence[tuple[float, float, float, float]],
               frame_size: tuple[int, int]) -> Region | None:
        """A square crop around ``boxes``, or None when the whole frame is due or would do as well."""
        width, height = frame_size
        if (not self.regions or not boxes or self.last_full is None
                or now - self.last_full >= self.full_frame_seconds - 1e-6):
            return None
        x1 = min(b[0] for b in boxes)
        y1 = min(b[1] for b in boxes)
        x2 = max(b[2] for b in boxes)
        y2 = max(b[3] for b in boxes)
        if (x2 - x1) * (y2 - y1) > self.region_max_share * width * height:
            return None
        side = max(self.min_side, (1 + 2 * self.region_padding) * max(x2 - x1, y2 - y1))
        # worth it only when the crop gives the model clearly more pixels per dog than the whole frame
        if side > 0.75 * max(width, height):
            return None
        side_x, side_y = min(side, width), min(side, height)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        left = int(min(max(0.0, cx - side_x / 2), width - side_x))
        top = int(min(max(0.0, cy - side_y / 2), height - side_y))
        return left, top, int(left + side_x), int(top + side_y)
