"""fetch_return rule, heat map and activity meter as pure logic with explicit boxes and times."""

from __future__ import annotations

import numpy as np
import pytest

from edge.behaviour.fetch import FetchDetector, held_by
from edge.behaviour.heatmap import ActivityMeter, HeatMap, activity_level
from edge.vision.detector import Detection
from edge.vision.tracking import Track

pytestmark = pytest.mark.unit


def dog(box: tuple[float, float, float, float], track_id: int = 1) -> Track:
    return Track(track_id, box, 0.9, 0.0, 0.0, hits=5, confirmed=True)


def ball_at(cx: float, cy: float, r: float = 10, label: str = "sports ball") -> Detection:
    return Detection(cx - r, cy - r, cx + r, cy + r, 0.6, label)


def grow(box: tuple[float, float, float, float], factor: float) -> tuple[float, float, float, float]:
    """Scale a box about its bottom centre (a dog walking towards the camera)."""
    x1, y1, x2, y2 = box
    cx, w, h = (x1 + x2) / 2, (x2 - x1) * factor, (y2 - y1) * factor
    return (cx - w / 2, y2 - h, cx + w / 2, y2)


def test_held_means_toy_centre_in_the_top_part_of_the_dog_box() -> None:
    box = (100.0, 100.0, 300.0, 300.0)
    assert held_by((110, 120, 130, 140), box)          # at the head, top left
    assert held_by((285, 95, 315, 125), box)           # sticking out of the top right corner
    assert not held_by((190, 260, 210, 280), box)      # between the paws: lying on the floor
    assert not held_by((400, 120, 420, 140), box)      # beside the dog
    assert not held_by((100, 100, 260, 260), box)      # as big as the dog: not a toy in a mouth


def run_carry(detector: FetchDetector, frames: list[tuple[tuple, list[Detection]]], zones=None, t0: float = 0.0):
    fired = []
    for i, (box, toys) in enumerate(frames):
        t = t0 + i * 0.1
        z = (zones or {}).get(i, {})
        fired += detector.update([dog(box)], toys, z, t, 1000 + t)
    return fired


def test_fetch_fires_once_when_the_carrying_dog_grows() -> None:
    detector = FetchDetector(carry_frames=3, growth=1.5)
    start = (300.0, 200.0, 400.0, 300.0)
    frames = []
    for i in range(30):
        box = grow(start, 1 + i * 0.05)                # area x1.5 at about frame 5
        frames.append((box, [ball_at(box[0] + 10, box[1] + 15)]))
    fired = run_carry(detector, frames)
    assert len(fired) == 1
    data = fired[0].data
    assert data["toy"] == "sports ball" and data["reason"] == "growth" and data["growth"] >= 1.5
    # carry began at frame 0 (the first of the 3 held frames), fired at the first frame with area >= 1.5x
    first = next(i for i in range(30) if (1 + i * 0.05) ** 2 >= 1.5)
    assert data["carry_seconds"] == pytest.approx(first * 0.1)


def test_no_fetch_without_a_carry_or_with_a_one_frame_toy() -> None:
    detector = FetchDetector(carry_frames=3, growth=1.5)
    start = (300.0, 200.0, 400.0, 300.0)
    frames = [(grow(start, 1 + i * 0.05), []) for i in range(30)]
    frames[2] = (frames[2][0], [ball_at(frames[2][0][0] + 10, frames[2][0][1] + 15)])   # one lucky frame
    assert run_carry(detector, frames) == []


def test_return_zone_fires_and_a_second_carry_fires_again() -> None:
    detector = FetchDetector(carry_frames=2, growth=5.0, drop_seconds=0.5)
    box = (300.0, 200.0, 400.0, 300.0)
    toy = [ball_at(310, 215, label="frisbee")]
    frames = [(box, toy)] * 10 + [(box, [])] * 10 + [(box, toy)] * 10
    zones = {i: {1: ["mat"]} for i in list(range(6, 8)) + list(range(25, 30))}
    fired = run_carry(detector, frames, zones)
    assert [(f.data["reason"], f.data["zone"], f.data["toy"]) for f in fired] == [
        ("return_zone", "mat", "frisbee"), ("return_zone", "mat", "frisbee")]
    assert fired[0].data["carry_seconds"] == pytest.approx(0.6)


def test_a_carry_starting_inside_the_return_zone_needs_to_leave_and_come_back() -> None:
    detector = FetchDetector(carry_frames=2, growth=5.0)
    box = (300.0, 200.0, 400.0, 300.0)
    toy = [ball_at(310, 215)]
    zones = {i: {1: ["mat"]} for i in list(range(0, 5)) + list(range(10, 12))}
    fired = run_carry(detector, [(box, toy)] * 15, zones)
    assert len(fired) == 1 and fired[0].data["carry_seconds"] == pytest.approx(1.0)


def test_heatmap_counts_seconds_per_cell_and_forgets_old_minutes() -> None:
    heat = HeatMap(window_minutes=2)
    for i in range(101):                              # 10 s at 10 fps, in the middle of the frame
        heat.add([(0.5, 0.5)], 60.0 + i * 0.1)
    grid = heat.grid(70.0)
    assert grid.shape == (18, 32)
    assert grid[9, 16] == pytest.approx(10.0, abs=1e-3) and grid.sum() == pytest.approx(10.0, abs=1e-3)
    heat.add([(0.0, 0.0)], 75.0)                      # a gap: the step is capped at 1 s
    assert heat.grid(75.0)[0, 0] == pytest.approx(1.0)
    assert heat.grid(60.0 * 4).sum() == 0             # both minutes have left the 2-minute window
    data = heat.overlay_data(70.0)
    assert data["cols"] == 32 and data["rows"] == 18 and len(data["seconds"]) == 576
    assert len(heat.buckets) <= 2
    assert np.argmax(data["seconds"]) == 9 * 32 + 16


def test_activity_ignores_jitter_and_measures_walking() -> None:
    rng = np.random.default_rng(1)
    still = ActivityMeter()
    done = []
    for i in range(600):                              # a dog lying still for 60 s, box jittering by ~1 %
        done += still.add((0.5 + rng.normal(0, 0.01), 0.7 + rng.normal(0, 0.01)), 100.0 + i * 0.1)
    assert sum(1 for _, moved in done if moved > 0) <= 2
    assert still.summary(160.0)["level"] == "resting"
    walker = ActivityMeter()
    done = []
    for i in range(300):                              # walking across the frame in 30 s
        done += walker.add((0.1 + i * 0.0027, 0.7), 100.0 + i * 0.1)
    active = [s for s, moved in done if moved > 0]
    assert len(active) >= 27
    assert walker.summary(130.0)["movement_per_minute"] == pytest.approx(0.78, abs=0.05)
    assert activity_level(0.0) == "resting" and activity_level(2.0) == "high"
