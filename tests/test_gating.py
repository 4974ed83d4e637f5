"""Motion gating: the gate's decisions as pure logic, the motion stage on real photos, and the whole
pipeline with the real model on videos composed from the shared media (a dog lying still for a minute,
a light switched on)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import ConfigError, load_config
from edge.core.feature import Feature, FrameContext
from edge.core.models import MANIFEST_DIR
from edge.core.telemetry import StageTimers
from edge.protocol.messages import Message, OverlayType
from edge.tools import scenes
from edge.vision.detector import Detector
from edge.vision.gating import DetectGate
from edge.vision.motion import MotionDetector, MotionResult
from edge.vision.pipeline import FramePipeline
from edge.vision.runtime import create_session
from edge.vision.tracking import DogTracker

STILL = MotionResult((), 0.0)
MOVING = MotionResult(((100, 100, 140, 160),), 0.01)
SIZE = (1920, 1080)


# --- the gate (pure) ---

@pytest.mark.unit
def test_still_scene_is_rechecked_every_idle_seconds_only() -> None:
    gate = DetectGate(idle_seconds=3.0)
    runs = [t / 30 for t in range(30 * 10) if gate.decide(t / 30, STILL, [], False, SIZE).run]
    assert runs == pytest.approx([0.0, 3.0, 6.0, 9.0], abs=0.04)


@pytest.mark.unit
def test_motion_a_live_track_and_presence_each_keep_the_detector_running() -> None:
    gate = DetectGate(idle_seconds=3.0)
    gate.decide(0.0, STILL, [], False, SIZE)
    assert gate.decide(0.1, MOVING, [], False, SIZE).reason == "motion"
    assert gate.decide(0.2, STILL, [(10, 10, 50, 50)], False, SIZE).reason == "track"
    # no motion, the track ended, but presence is on: dog_left must come from real detector runs
    assert gate.decide(0.3, STILL, [], True, SIZE).reason == "present"
    assert not gate.decide(0.4, STILL, [], False, SIZE).run
    assert gate.decide(0.5, MotionResult((), 0.9, relearned=True), [], False, SIZE).reason == "scene_change"


@pytest.mark.unit
def test_detect_fps_caps_the_rate_and_zero_idle_seconds_detects_every_frame() -> None:
    capped = DetectGate(idle_seconds=3.0, max_fps=5.0)
    runs = [t / 30 for t in range(60) if capped.decide(t / 30, MOVING, [], False, SIZE).run]
    assert len(runs) == 10 and all(b - a >= 0.2 - 1e-6 for a, b in zip(runs, runs[1:], strict=False))
    off = DetectGate(idle_seconds=0.0)
    assert all(off.decide(t / 30, STILL, [], False, SIZE).run for t in range(60))


@pytest.mark.unit
def test_small_motion_in_a_wide_frame_gets_a_square_crop_and_a_regular_full_frame_pass() -> None:
    gate = DetectGate(idle_seconds=3.0, min_side=416, full_frame_seconds=2.0)
    assert gate.decide(0.0, STILL, [], False, SIZE).region is None   # first look: whole frame
    decisions = [gate.decide(0.1 * i, MOVING, [], False, SIZE) for i in range(1, 40)]
    crops = [d.region for d in decisions if d.region is not None]
    x1, y1, x2, y2 = crops[0]
    assert x2 - x1 == y2 - y1 >= 416                                   # square, never below the model input
    assert x1 <= 100 and y1 <= 100 and x2 >= 140 and y2 >= 160          # the motion is inside
    full = [0.1 * i for i, d in enumerate(decisions, 1) if d.region is None]
    assert full and all(b - a <= 2.0 + 1e-6 for a, b in zip([0.0, *full], full, strict=False))
    # motion over much of the frame, or a frame hardly larger than the model input: whole frame
    wide = MotionResult(((0, 0, 1500, 900),), 0.5)
    assert gate.decide(5.0, wide, [], False, SIZE).region is None
    assert gate.decide(5.1, MOVING, [], False, (512, 512)).region is None


@pytest.mark.unit
def test_crops_never_postpone_the_idle_whole_frame_look() -> None:
    """Small motion for 2.9 s gets crops (a whole frame every 2 s); once it stops, the next whole-frame
    look comes idle_seconds after the last whole frame, not after the last crop."""
    gate = DetectGate(idle_seconds=3.0, min_side=416, full_frame_seconds=2.0)
    decisions = [(t / 30, gate.decide(t / 30, MOVING, [], False, SIZE)) for t in range(88)]
    last_full = max(t for t, d in decisions if d.run and d.region is None)
    assert any(d.region is not None for _, d in decisions[60:])        # crops after the last whole frame
    still = [(t / 30, gate.decide(t / 30, STILL, [], False, SIZE)) for t in range(88, 300)]
    first = next((t, d) for t, d in still if d.run)
    assert first[1].reason == "idle" and first[1].region is None
    assert first[0] == pytest.approx(last_full + 3.0, abs=0.04)


@pytest.mark.unit
def test_detect_fps_below_what_the_tracker_needs_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"DOGMON_DETECT_FPS": "1"})
    assert "DOGMON_DETECT_FPS" in str(info.value) and "0 (no cap) or a number from 2" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(None, {"DOGMON_DETECT_FPS": "2", "DOGMON_ABSENCE_SECONDS": "0.5"})
    assert "DOGMON_DETECT_FPS" in str(info.value) and "DOGMON_ABSENCE_SECONDS=0.5" in str(info.value)
    config = load_config(None, {"DOGMON_DETECT_FPS": "5", "DOGMON_DETECT_IDLE_SECONDS": "0"})
    assert config.detect_fps == 5.0 and config.detect_idle_seconds == 0.0


# --- the motion stage on real photos ---

@pytest.mark.unit
def test_motion_finds_a_pasted_dog_and_ignores_noise_and_a_light_switched_on(media: Path) -> None:
    room = scenes.fit(scenes.read_image(media / "neg_bridge_wikimedia.jpg"), 1280, 720)
    dog = cv2.resize(scenes.read_image(media / "dog_standing_labrador_wikimedia.jpg"), (160, 130))
    rng = np.random.default_rng(0)
    motion = MotionDetector()
    assert motion.update(room).relearned                       # first frame: background learnt
    for _ in range(20):                                        # sensor noise is not motion
        assert not motion.update(scenes.sensor_noise(room, rng, 3.0)).moving
    frame = room.copy()
    frame[400:530, 900:1060] = dog
    found = motion.update(scenes.sensor_noise(frame, rng, 3.0))
    assert len(found.boxes) == 1
    x1, y1, x2, y2 = found.boxes[0]
    assert abs(x1 - 900) < 30 and abs(y1 - 400) < 30 and abs(x2 - 1060) < 30 and abs(y2 - 530) < 30
    bright = cv2.convertScaleAbs(room, alpha=1.6, beta=10)
    jump = motion.update(bright)
    assert jump.relearned and not jump.moving and jump.fraction > 0.5
    assert not motion.update(scenes.sensor_noise(bright, rng, 3.0)).moving


# --- the whole pipeline with the real model ---

class Recorder(Feature):
    """Every frame the features see, and whether the detector ran on it."""

    name = "recorder"

    def __init__(self) -> None:
        self.frames: list[tuple[bool, int, int]] = []

    def process(self, ctx: FrameContext) -> list[Message]:
        self.frames.append((ctx.detected, len(ctx.tracks), len(ctx.seen_tracks())))
        return []


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> Detector:
    spec = json.loads((MANIFEST_DIR / "yolox_nano.json").read_text())
    return Detector(create_session(model_dir / "yolox_nano.onnx", threads=1), spec, ["dog"], 0.3)


def gated(detector: Detector, features: list[Feature] | None = None) -> FramePipeline:
    gate = DetectGate(idle_seconds=3.0, min_side=416)
    return FramePipeline(detector, DogTracker(absence_seconds=10), StageTimers(), features, gate=gate)


def events_of(video: Path, pipeline: FramePipeline) -> tuple[list[str], list[int]]:
    kinds: list[str] = []
    runs: list[int] = []

    def on_frame(index: int, out: list[Message]) -> None:
        kinds.extend(str(m.event_type) for m in out if m.is_event)
        runs.extend(index for m in out if m.overlay_type is OverlayType.DETECTION)

    scenes.play(video, pipeline.process, on_frame=on_frame)
    return kinds, runs


@pytest.mark.e2e
def test_a_dog_lying_still_for_a_minute_stays_present(detector: Detector, media: Path, tmp_path: Path) -> None:
    photo = scenes.read_image(media / "dog_lying_person_horse_darknet.jpg")
    video = scenes.write_video(tmp_path / "lying.mp4", scenes.still_frames(photo, 60, 10, (640, 480)), 10)
    recorder = Recorder()
    pipeline = gated(detector, [recorder])
    kinds, _ = events_of(video, pipeline)
    assert kinds == ["dog_detected"]                           # once, and never dog_left in 60 s
    assert len(recorder.frames) == 600 and recorder.frames[-1][2] == 1   # the dog is still seen at the end


@pytest.mark.e2e
def test_a_light_switched_on_costs_a_few_detector_runs_not_a_stream(detector: Detector, media: Path,
                                                                     tmp_path: Path) -> None:
    room = scenes.read_image(media / "neg_bridge_wikimedia.jpg")
    video = scenes.write_video(tmp_path / "jump.mp4", scenes.brightness_jump_frames(room, 12, 6, 30, (640, 480)), 30)
    recorder = Recorder()
    pipeline = gated(detector, [recorder])
    kinds, runs = events_of(video, pipeline)
    assert kinds == []
    after_jump = [i for i in runs if 180 <= i < 270]            # the 3 s after the light came on
    assert 1 <= len(after_jump) <= 3
    assert len(runs) <= 8                                       # 12 s at 30 fps: 360 frames
    # every frame still reached the features (pre-roll, live view), most without a detector run
    assert len(recorder.frames) == 360 and sum(not detected for detected, _, _ in recorder.frames) >= 350
    telemetry = pipeline.gating_telemetry()
    assert telemetry["frames_skipped"] >= 350 and telemetry["duty_cycle"] < 0.05


@pytest.mark.e2e
def test_frames_skipped_by_the_fps_cap_reach_the_features_with_the_tracks_as_they_are(
        detector: Detector, media: Path, tmp_path: Path) -> None:
    photo = scenes.read_image(media / "dog_lying_person_horse_darknet.jpg")
    video = scenes.write_video(tmp_path / "lying.mp4", scenes.still_frames(photo, 6, 10, (640, 480)), 10)
    recorder = Recorder()
    gate = DetectGate(idle_seconds=3.0, max_fps=5.0, min_side=416)
    pipeline = FramePipeline(detector, DogTracker(absence_seconds=10), StageTimers(), [recorder], gate=gate)
    kinds, runs = events_of(video, pipeline)
    assert kinds == ["dog_detected"] and len(runs) == 30       # 60 frames, every other one detected
    skipped = [(tracks, seen) for detected, tracks, seen in recorder.frames[10:] if not detected]
    assert len(skipped) == 25 and all(tracks == 1 and seen == 1 for tracks, seen in skipped)
