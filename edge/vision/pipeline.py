"""One frame through the vision stages: motion → gate → detect → track → messages. Owns no I/O and no threads.

:class:`FramePipeline` is called by the inference thread with each new frame (and with ``idle``
when no frame came, so absence still ends presence). It returns the messages to publish; the
caller hands them to the bus. Per-stage timings go to the shared :class:`StageTimers`.

Motion gating (``edge/vision/gating.py``) decides per frame whether the detector runs and on which
region. A frame the detector skips still goes to every feature (pre-roll, live view), with the
tracks as they are after the last detector run; the tracker only moves on detector runs, so absence
is counted from frames that were really looked at.

Boxes of the detector's candidate classes (a curled dog the model calls ``cat``) go to the tracker as
candidates, which only keep a known dog. When a run finds nothing where a known dog should be, the
detector takes a *second look* on the same frame at a square around the dog's last box (the model's
input size or more), at most every ``LOOK_INTERVAL`` seconds and only when that square is much smaller
than the frame, i.e. when it gives the model more pixels of the dog. What it finds is a candidate too,
so a second look can keep a dog but never report a new one. It is an extra inference on that frame only
and leaves the gate's schedule (idle full-frame runs) as is. A mirrored whole-frame look was measured
on the composed lying-dog scenes and kept no dog the first run had missed, so it is not made.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from edge.core.feature import Feature, FrameContext
from edge.core.telemetry import StageTimers
from edge.protocol import messages
from edge.protocol.messages import EventType, Message, OverlayType
from edge.util import clock
from edge.vision.capture import Frame
from edge.vision.detector import Detection, Detector
from edge.vision.gating import DetectGate, GateDecision
from edge.vision.motion import MotionDetector, MotionResult
from edge.vision.tracking import DogTracker, Track, iou

MOTION_OVERLAY_INTERVAL = 0.2  # at most 5 motion overlays a second (a debug view needs no more)
FRAME_TIMED = (OverlayType.DETECTION, OverlayType.POSE)  # overlays that carry frame_ts
DUTY_WINDOW = 300              # frames the duty cycle is measured over
LOOK_PADDING = 0.25            # second look: margin around the dog's last box, as a share of its size
LOOK_MAX_SHARE = 0.75          # a square wider than this share of the frame: look at the whole frame
LOOK_INTERVAL = 0.5            # at most two second looks a second: enough to keep a track (2 s coast)

log = logging.getLogger(__name__)

def track_box(track: Track) -> dict[str, Any]:
    x1, y1, x2, y2 = track.box
    return messages.box(x1, y1, x2, y2, "dog", track.score, track.track_id)


def look_region(box: tuple[float, float, float, float], frame_size: tuple[int, int],
                min_side: int) -> tuple[int, int, int, int] | None:
    """A square of at least ``min_side`` source pixels around ``box``, or None for the whole frame."""
    width, height = frame_size
    side = max(min_side, (1 + 2 * LOOK_PADDING) * max(box[2] - box[0], box[3] - box[1]))
    if side > LOOK_MAX_SHARE * max(width, height):
        return None
    side_x, side_y = min(side, width), min(side, height)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    left = int(min(max(0.0, cx - side_x / 2), width - side_x))
    top = int(min(max(0.0, cy - side_y / 2), height - side_y))
    return left, top, int(left + side_x), int(top + side_y)


class FramePipeline:
    def __init__(self, detector: Detector, tracker: DogTracker, timers: StageTimers,
                 features: list[Feature] | None = None, gate: DetectGate | None = None,
                 motion: MotionDetector | None = None) -> None:
        self.features = features if features is not None else []
        self.detector = detector
        self.tracker = tracker
        self.timers = timers
        self.gate = gate if gate is not None else DetectGate(idle_seconds=0.0)  # default: every frame
        self.motion = motion if motion is not None else MotionDetector()
        self.frame_size: tuple[int, int] = (0, 0)
        self.last_detections: list[Detection] = []
        self.last_detected_at: float | None = None  # frame time of the last detector run
        self.last_motion = MotionResult((), 0.0)
        self.last_decision = GateDecision(False, "still")
        self.frames = 0
        self.frames_detected = 0
        self.region_runs = 0
        self.second_looks = 0
        self._look_at = -math.inf
        self.reasons: dict[str, int] = {}
        self._duty: deque[bool] = deque(maxlen=DUTY_WINDOW)
        self._motion_overlay_at = -math.inf
        self._motion_overlay_moving = False

    def process(self, frame: Frame) -> list[Message]:
        started = time.monotonic()
        self.timers.record("queue", started - frame.captured)
        self.frame_size = (frame.image.shape[1], frame.image.shape[0])
        out: list[Message] = []
        if self.gate.enabled:
            motion = frame.motion if isinstance(frame.motion, MotionResult) else self.analyse(frame.image)
            frame.motion = motion  # features see it too (posture: is the dog moving)
        else:
            motion = MotionResult((), 0.0)  # gating off: no motion stage either
        decision = self.gate.decide(frame.captured, motion, [t.box for t in self.tracker.tracks],
                                    self.tracker.present, self.frame_size)
        self._count(motion, decision)
        out += self._motion_overlay(frame.captured, motion, decision)
        if decision.run:
            out += self._detect_and_track(frame, decision)
        # on a skipped frame: tracks and boxes as the last detector run left them
        tracks, detections = list(self.tracker.tracks), self.last_detections
        features_started = time.monotonic()
        if self.features:
            ctx = FrameContext(frame, detections, tracks, self.tracker.present, detected=decision.run,
                               seen_at=self.last_detected_at)
            for feature in self.features:
                out += self._guarded(feature, feature.process, ctx)
            self.timers.record("features", time.monotonic() - features_started)
        self.timers.tick("inference")
        frame_ts = round(frame.wall, 3)
        for message in out:
            message.captured = frame.captured
            if message.overlay_type in FRAME_TIMED:
                # the live view announces the same time before each JPEG: the tablet pairs them
                message.data["frame_ts"] = frame_ts
        return out

    def analyse(self, image: Any) -> MotionResult:
        """The motion stage; the capture thread calls it on every frame it reads (``Frame.motion``), so
        it runs beside the detector rather than before it. Only one thread may call it."""
        started = time.monotonic()
        result = self.motion.update(image)
        self.timers.record("motion", time.monotonic() - started)
        return result

    def _detect_and_track(self, frame: Frame, decision: GateDecision) -> list[Message]:
        started = time.monotonic()
        detections = self.detector.detect(frame.image, region=decision.region)
        detected = time.monotonic()
        self.timers.record("detect", detected - started)
        candidate_labels = self.detector.candidate_labels
        dogs = [d for d in detections if d.label == "dog"]
        candidates = [d for d in detections if d.label in candidate_labels]
        expected = self.tracker.expected()
        if (expected and frame.captured - self._look_at >= LOOK_INTERVAL
                and not any(iou(box, (d.x1, d.y1, d.x2, d.y2)) >= self.tracker.match_iou
                            for box in expected for d in (*dogs, *candidates))):
            region = look_region(expected[0], self.frame_size, max(self.detector.width, self.detector.height))
            if region is not None and region != decision.region:
                self._look_at = frame.captured
                candidates += self.second_look(frame.image, region)
        # features and overlays see dogs and toys; a candidate shows as the track it kept
        detections = [d for d in detections if d.label not in candidate_labels]
        self.last_detections = detections
        self.last_detected_at = frame.captured
        update = self.tracker.update(dogs, frame.captured, candidates)
        out = self._presence_events(update.arrived, update.left, frame.wall)
        boxes = [track_box(t) for t in update.tracks if t.last_seen == frame.captured]
        boxes += [messages.box(d.x1, d.y1, d.x2, d.y2, d.label, d.score, None) for d in detections if d.label != "dog"]
        # coasting tracks count too: the state's track count does not flicker with missed detections
        out.append(messages.detection_overlay(self.frame_size[0], self.frame_size[1], boxes,
                                              sum(t.confirmed for t in update.tracks)))
        self.timers.record("track", time.monotonic() - detected)
        return out

    def second_look(self, image: Any, region: tuple[int, int, int, int]) -> list[Detection]:
        """The crop ``region`` (see the module doc): its dog and candidate boxes."""
        started = time.monotonic()
        self.second_looks += 1
        found = self.detector.detect(image, region=region)
        self.timers.record("second_look", time.monotonic() - started)
        return [d for d in found if d.label == "dog" or d.label in self.detector.candidate_labels]

    def _count(self, motion: MotionResult, decision: GateDecision) -> None:
        self.frames += 1
        self.frames_detected += decision.run
        self.region_runs += decision.region is not None
        self.reasons[decision.reason] = self.reasons.get(decision.reason, 0) + 1
        self._duty.append(decision.run)
        self.last_motion, self.last_decision = motion, decision

    def _motion_overlay(self, now: float, motion: MotionResult, decision: GateDecision) -> list[Message]:
        """While something moves (and once when it stops), at most every MOTION_OVERLAY_INTERVAL seconds."""
        if not self.gate.enabled:
            return []
        changed = motion.moving != self._motion_overlay_moving or motion.relearned
        if not (motion.moving or changed) or (not changed and now - self._motion_overlay_at < MOTION_OVERLAY_INTERVAL):
            return []
        self._motion_overlay_at, self._motion_overlay_moving = now, motion.moving
        return [messages.motion_overlay(self.frame_size[0], self.frame_size[1], list(motion.boxes), motion.fraction,
                                        motion.relearned, decision.run, decision.reason, decision.region)]

    def gating_telemetry(self) -> dict[str, Any]:
        """Motion and detector duty figures for telemetry (read from the loop thread: plain values only)."""
        duty = list(self._duty)
        motion = self.last_motion
        return {
            "enabled": self.gate.enabled,
            "motion_fraction": motion.fraction,
            "motion_boxes": [list(b) for b in motion.boxes],
            "duty_cycle": round(sum(duty) / len(duty), 3) if duty else None,
            "frames_detected": self.frames_detected,
            "frames_skipped": self.frames - self.frames_detected,
            "region_runs": self.region_runs,
            "second_looks": self.second_looks,
            "reasons": dict(self.reasons),
        }

    def idle(self, now: float) -> list[Message]:
        update = self.tracker.tick(now)
        out = self._presence_events(None, update.left, clock.now())
        for feature in self.features:
            out += self._guarded(feature, feature.idle, now)
        return out

    @staticmethod
    def _guarded(feature: Feature, stage: Callable[[Any], list[Message]], arg: Any) -> list[Message]:
        """One feature's failure must not cost the frame's presence events or the other features' work."""
        try:
            return stage(arg)
        except Exception:
            log.exception("feature %s failed on a frame", feature.name)
            return []

    def _presence_events(self, arrived: Track | None, left: dict[str, Any] | None, wall: float) -> list[Message]:
        out: list[Message] = []
        if arrived is not None:
            out.append(messages.event(EventType.DOG_DETECTED, {
                "track_id": arrived.track_id,
                "confidence": round(arrived.best_score, 3),
                "box": track_box(arrived),
                "frame": {"w": self.frame_size[0], "h": self.frame_size[1]},
            }, ts=wall))
        if left is not None:
            out.append(messages.event(EventType.DOG_LEFT, left, ts=wall))
        return out
