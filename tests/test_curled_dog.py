"""A dog the model calls ``cat`` once it curls up, through the real frame pipeline (motion gating, YOLOX-Nano,
tracker) on videos composed from the shared photos: a dog seen first as ``dog`` stays present while it sleeps
as ``cat`` (colour and grey), and the same ``cat`` boxes never report a dog on their own (the coyote)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.models import MANIFEST_DIR
from edge.core.telemetry import StageTimers
from edge.protocol.messages import Message
from edge.tools import scenes
from edge.tools.evalclip import to_gray
from edge.vision.detector import Detector
from edge.vision.gating import DetectGate
from edge.vision.pipeline import FramePipeline
from edge.vision.runtime import create_session
from edge.vision.tracking import DogTracker

pytestmark = pytest.mark.e2e

FPS = 5.0
SIZE = (640, 480)
PUPS = "dogs_lying_sleeping_pups_wikimedia.jpg"   # the model: cat 0.5-0.6, dog under 0.2


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> Detector:
    spec = json.loads((MANIFEST_DIR / "yolox_nano.json").read_text())
    return Detector(create_session(model_dir / "yolox_nano.onnx", threads=1), spec, ["dog"], 0.3)


def run(detector: Detector, media: Path, tmp_path: Path, segments: list[tuple[str | None, float]],
        gray: bool) -> tuple[list[str], list[bool], FramePipeline]:
    frames: list[np.ndarray] = []
    for name, seconds in segments:
        photo = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8) if name is None else scenes.read_image(media / name)
        frames += scenes.still_frames(to_gray(photo) if gray else photo, seconds, FPS, SIZE)
    video = scenes.write_video(tmp_path / "scene.mp4", iter(frames), FPS)
    pipeline = FramePipeline(detector, DogTracker(absence_seconds=10), StageTimers(),
                             gate=DetectGate(idle_seconds=3.0, min_side=416))
    kinds: list[str] = []
    present: list[bool] = []

    def on_frame(index: int, out: list[Message]) -> None:
        kinds.extend(str(m.event_type) for m in out if m.is_event)
        present.append(pipeline.tracker.present)

    scenes.play(video, pipeline.process, on_frame=on_frame)
    return kinds, present, pipeline


@pytest.mark.parametrize(("first", "gray"), [("dog_lying_nursing_pups_wikimedia.jpg", False),
                                             ("dog_standing_labrador_wikimedia.jpg", True)], ids=["colour", "gray"])
def test_a_dog_seen_first_stays_present_while_it_sleeps_as_cat(detector: Detector, media: Path,
                                                               tmp_path: Path, first: str, gray: bool) -> None:
    assert not [d for d in detector.detect(cv2.imread(str(media / PUPS))) if d.label == "dog"]
    kinds, present, pipeline = run(detector, media, tmp_path, [(first, 3), (PUPS, 30)], gray)
    assert kinds == ["dog_detected"]                      # once, and never dog_left over 30 s of "cat"
    assert all(present[round(3 * FPS):])
    assert [t.track_id for t in pipeline.tracker.tracks] == [1]


@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
def test_cat_boxes_alone_never_report_a_dog(detector: Detector, media: Path, tmp_path: Path,
                                            gray: bool) -> None:
    """The coyote (the model: cat 0.6-0.8) alone, and the puppies alone: nothing; a dog that left before the
    coyote came is not brought back by it."""
    for photo in ("hardneg_coyote_wikimedia.jpg", PUPS):
        kinds, present, _ = run(detector, media, tmp_path, [(photo, 20)], gray)
        assert kinds == [] and not any(present), photo
    kinds, present, _ = run(detector, media, tmp_path, [("dog_sitting_bike_darknet.jpg", 3), (None, 15),
                                                        ("hardneg_coyote_wikimedia.jpg", 20)], gray)
    assert kinds == ["dog_detected", "dog_left"]
    assert not any(present[round(18 * FPS):])
