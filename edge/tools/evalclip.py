"""A video through the device's own frame path for ``python -m edge.tools.eval``: what a user would see per frame.

Each frame goes through :class:`edge.vision.pipeline.FramePipeline` built as the device builds it
(motion gating from the configuration, the tracker, the posture stage without a pose model), at the
video's own timestamps. Counted per frame: dog presence, a confirmed track, the posture the page
shows for the main dog; and every presence and posture event with the frame it came on.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.config import Config
    from edge.vision.detector import Detector


def to_gray(image: np.ndarray) -> np.ndarray:
    """A colour frame as an infrared camera delivers it: grey, in three equal channels."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


@dataclasses.dataclass
class ClipResult:
    frames: int = 0
    present: int = 0
    tracked: int = 0                      # frames with a confirmed track
    shown: Counter[str] = dataclasses.field(default_factory=Counter)   # posture shown, on tracked frames
    events: list[str] = dataclasses.field(default_factory=list)        # "type@frame"

    def lines(self) -> list[str]:
        shown = ", ".join(f"{k} {v}" for k, v in self.shown.most_common()) or "-"
        return [f"  dog present in {self.present}/{self.frames} frames, confirmed track in {self.tracked}",
                f"  posture shown on tracked frames: {shown}",
                f"  events: {' '.join(self.events) or '-'}"]


def run_clip(path: Path, detector: Detector, config: Config,
             look: Callable[[np.ndarray], np.ndarray] = lambda image: image) -> ClipResult:
    from edge.behaviour.posture_feature import PostureFeature
    from edge.core.frames import Frame
    from edge.core.telemetry import StageTimers
    from edge.device import build_gate
    from edge.vision.pipeline import FramePipeline
    from edge.vision.tracking import DogTracker

    posture = PostureFeature(config.posture_min_seconds, pose_fps=0.0)
    pipeline = FramePipeline(detector, DogTracker(absence_seconds=config.absence_seconds), StageTimers(),
                             [posture], gate=build_gate(config, detector))
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    result = ClipResult()
    while True:
        ok, image = cap.read()
        if not ok:
            break
        t = 1000.0 + result.frames / fps
        for message in pipeline.process(Frame(look(image), result.frames, t, t)):
            if message.event_type is not None:
                result.events.append(f"{message.event_type}@{result.frames}")
        result.frames += 1
        result.present += pipeline.tracker.present
        if any(tr.confirmed for tr in pipeline.tracker.tracks):
            result.tracked += 1
            view = posture.connection_info()["postures"]
            result.shown[str(view[0]["posture"]) if view else "none"] += 1
    cap.release()
    return result
