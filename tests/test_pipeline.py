"""The frame pipeline with the real detector: a failing feature costs nothing but its own output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import pytest

from edge.core.feature import Feature, FrameContext
from edge.core.models import MANIFEST_DIR
from edge.core.telemetry import StageTimers
from edge.protocol.messages import Message
from edge.vision.capture import Frame
from edge.vision.detector import Detector
from edge.vision.pipeline import FramePipeline
from edge.vision.runtime import create_session
from edge.vision.tracking import DogTracker

pytestmark = pytest.mark.unit


class Broken(Feature):
    name = "broken"

    def process(self, ctx: FrameContext) -> list[Message]:
        raise RuntimeError("a bug in an optional stage")


def test_a_failing_feature_does_not_lose_dog_detected(model_dir: Path, media: Path) -> None:
    spec = json.loads((MANIFEST_DIR / "yolox_nano.json").read_text())
    detector = Detector(create_session(model_dir / "yolox_nano.onnx", threads=1), spec, ["dog"], 0.3)
    pipeline = FramePipeline(detector, DogTracker(), StageTimers(), [Broken()])
    image = cv2.imread(str(media / "dog_standing_labrador_wikimedia.jpg"))
    produced: list[Message] = []
    for index in range(4):
        produced += pipeline.process(Frame(image, index, index * 0.1, time.time()))
    kinds = [m.event_type for m in produced if m.is_event]
    assert kinds == ["dog_detected"]
    overlays = [m for m in produced if m.overlay_type is not None]
    assert len(overlays) == 4 and overlays[-1].data["track_count"] == 1
