"""One frame through the vision stages: detect → track → messages. Owns no I/O and no threads.

:class:`FramePipeline` is called by the inference thread with each new frame (and with ``idle``
when no frame came, so absence still ends presence). It returns the messages to publish; the
caller hands them to the bus. Per-stage timings go to the shared :class:`StageTimers`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge import messages
from edge.capture import Frame
from edge.features import Feature, FrameContext
from edge.messages import EventType, Message
from edge.telemetry import StageTimers
from edge.tracking import DogTracker, Track
from edge.vision.detector import Detection, Detector

log = logging.getLogger(__name__)

def track_box(track: Track) -> dict[str, Any]:
    x1, y1, x2, y2 = track.box
    return messages.box(x1, y1, x2, y2, "dog", track.score, track.track_id)


class FramePipeline:
    def __init__(self, detector: Detector, tracker: DogTracker, timers: StageTimers,
                 features: list[Feature] | None = None) -> None:
        self.features = features if features is not None else []
        self.detector = detector
        self.tracker = tracker
        self.timers = timers
        self.frame_size: tuple[int, int] = (0, 0)
        self.last_detections: list[Detection] = []

    def process(self, frame: Frame) -> list[Message]:
        started = time.monotonic()
        self.timers.record("queue", started - frame.captured)
        detections = self.detector.detect(frame.image)
        detected = time.monotonic()
        self.timers.record("detect", detected - started)
        self.frame_size = (frame.image.shape[1], frame.image.shape[0])
        self.last_detections = detections
        dogs = [d for d in detections if d.label == "dog"]
        update = self.tracker.update(dogs, frame.captured)
        out = self._presence_events(update.arrived, update.left, frame.wall)
        boxes = [track_box(t) for t in update.tracks if t.last_seen == frame.captured]
        boxes += [messages.box(d.x1, d.y1, d.x2, d.y2, d.label, d.score, None) for d in detections if d.label != "dog"]
        # coasting tracks count too: the state's track count does not flicker with missed detections
        out.append(messages.detection_overlay(self.frame_size[0], self.frame_size[1], boxes,
                                              sum(t.confirmed for t in update.tracks)))
        tracked = time.monotonic()
        self.timers.record("track", tracked - detected)
        if self.features:
            ctx = FrameContext(frame, detections, update.tracks, self.tracker.present)
            for feature in self.features:
                out += self._guarded(feature, feature.process, ctx)
            self.timers.record("features", time.monotonic() - tracked)
        self.timers.tick("inference")
        for message in out:
            message.captured = frame.captured
        return out

    def idle(self, now: float) -> list[Message]:
        update = self.tracker.tick(now)
        out = self._presence_events(None, update.left, time.time())
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
