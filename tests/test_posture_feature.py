"""The posture stage frame by frame, in-process: pose rate limit, confirmed-only, overlays, events, stale keypoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.behaviour.posture_feature import FIRST_POSTURE_SECONDS, PostureFeature
from edge.core.feature import FrameContext
from edge.vision.capture import Frame
from edge.vision.pose import PoseRunner, PoseSpec
from edge.vision.runtime import create_session
from edge.vision.tracking import Track
from tests.pose_graphs import DOG_POSE_24, constant_outputs_model
from tests.test_posture import DOGS, dog_pose

pytestmark = pytest.mark.unit

IMAGE = np.zeros((480, 640, 3), dtype=np.uint8)
BOX = (100.0, 100.0, 400.0, 370.0)   # 300x270: the box alone says stand


def sitting_runner(tmp_path: Path) -> PoseRunner:
    """A Dog-Pose graph that always sees a sitting dog (keypoints in 320x320 input pixels)."""
    points = dog_pose(DOGS["sit"])
    kpts = np.array([[150 + x, 250 - y, 0.9] for x, y in (points[n] for n in DOG_POSE_24)], dtype=np.float32)
    row = np.concatenate(([160, 160, 200, 200, 0.9], kpts.reshape(-1))).astype(np.float32)
    weights = constant_outputs_model(tmp_path / "sit.onnx", [1, 3, 320, 320], {"output0": row.reshape(1, -1, 1)})
    spec = PoseSpec.from_manifest({"name": "sit-stub", "family": "yolo_pose", "keypoints": DOG_POSE_24,
                                   "input": {"width": 320, "height": 320, "std": [255, 255, 255]}})
    return PoseRunner(create_session(weights), spec)


def frame_at(t: float, tracks: list[Track]) -> FrameContext:
    for track in tracks:
        track.last_seen = t
    return FrameContext(Frame(IMAGE, int(t * 100), t, 1_000_000.0 + t), [], tracks, True)


def test_pose_runs_at_most_pose_fps_per_dog_and_keypoints_decide(tmp_path: Path) -> None:
    feature = PostureFeature(min_seconds=1.0, pose_fps=5, runner=sitting_runner(tmp_path))
    dog = Track(1, BOX, 0.9, first_seen=0.0, last_seen=0.0, confirmed=True)
    out = []
    for i in range(61):                                  # 2 s at 30 fps
        out += feature.process(frame_at(i / 30, [dog]))
    assert feature.pose_runs == 11                       # every 0.2 s: t = 0, 0.2, …, 2.0
    overlays = [m for m in out if m.overlay_type is not None]
    assert len(overlays) == 11
    pose = overlays[0].data["poses"][0]
    assert pose["track_id"] == 1 and len(pose["keypoints"]) == 24 and overlays[0].data["model"] == "sit-stub"
    fired = [m for m in out if m.is_event]
    assert [(m.event_type, m.data["source"], m.data["previous"]) for m in fired] == [("sit", "keypoints", None)]
    # a track's first posture needs FIRST_POSTURE_SECONDS of evidence; later changes DOGMON_POSTURE_MIN_SECONDS
    assert fired[0].data["held_seconds"] >= FIRST_POSTURE_SECONDS and fired[0].data["box"]["track_id"] == 1


def test_unconfirmed_or_unseen_tracks_get_no_pose_and_stale_keypoints_give_way_to_the_box(tmp_path: Path) -> None:
    feature = PostureFeature(min_seconds=0.0, pose_fps=5, runner=sitting_runner(tmp_path))
    young = Track(2, BOX, 0.9, first_seen=0.0, last_seen=0.0, confirmed=False)
    assert feature.process(frame_at(0.0, [young])) == [] and feature.pose_runs == 0
    dog = Track(1, BOX, 0.9, first_seen=0.0, last_seen=0.0, confirmed=True)
    feature.process(frame_at(0.1, [dog]))
    assert feature.monitor.tracks[1].last_reading.source == "keypoints"
    feature.runner = None                                # the model stops answering: keypoints go stale
    feature.process(frame_at(0.5, [dog]))
    assert feature.monitor.tracks[1].last_reading.source == "keypoints"   # still fresh (≤ 1 s old)
    feature.process(frame_at(1.5, [dog]))
    assert feature.monitor.tracks[1].last_reading.source == "box"


def test_without_a_pose_model_there_are_no_pose_overlays_and_the_box_decides() -> None:
    feature = PostureFeature(min_seconds=2.0, pose_fps=5, runner=None)
    dog = Track(1, BOX, 0.9, first_seen=0.0, last_seen=0.0, confirmed=True)
    out = []
    for i in range(25):
        out += feature.process(frame_at(i / 10, [dog]))
    assert all(m.overlay_type is None for m in out)
    assert [(m.event_type, m.data["source"]) for m in out if m.is_event] == [("stand", "box")]
    assert feature.connection_info()["pose_model"] is None
    assert feature.connection_info()["postures"][0]["posture"] == "stand"
    # the dog is gone: the idle tick forgets it
    feature.idle(2.4 + 3.0)
    assert feature.connection_info()["postures"] == []
