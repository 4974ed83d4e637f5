"""Posture rules on hand-built dogs: keypoints of both naming schemes, box geometry over time, hysteresis.

The keypoint dogs are drawn from anatomy (side view, withers height 100 units, y up, ground at 0),
then placed in the image (scaled, shifted, y down, optionally mirrored) and given noise or gaps.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.behaviour.posture import (
    LIE,
    SIT,
    STAND,
    UNKNOWN,
    BoxPosture,
    PostureHysteresis,
    PostureMonitor,
    Reading,
    classify_box_alone,
    classify_keypoints,
)

pytestmark = pytest.mark.unit

# anatomical points per posture: (forward, up)
DOGS = {
    STAND: {"nose": (120, 110), "eye": (108, 122), "withers": (62, 100), "tail_root": (-50, 95),
            "shoulder": (60, 85), "hip": (-45, 85), "front_elbow": (60, 58), "front_knee": (60, 25),
            "front_paw": (62, 0), "rear_stifle": (-35, 55), "back_knee": (-55, 28), "back_paw": (-48, 0)},
    SIT: {"nose": (55, 130), "eye": (45, 140), "withers": (28, 112), "tail_root": (-30, 12),
          "shoulder": (30, 95), "hip": (-20, 18), "front_elbow": (32, 65), "front_knee": (35, 25),
          "front_paw": (38, 0), "rear_stifle": (5, 20), "back_knee": (-25, 5), "back_paw": (12, 0)},
    "lie_sphinx": {"nose": (115, 70), "eye": (100, 80), "withers": (40, 50), "tail_root": (-60, 30),
                   "shoulder": (40, 38), "hip": (-50, 28), "front_elbow": (45, 10), "front_knee": (75, 5),
                   "front_paw": (100, 0), "rear_stifle": (-20, 12), "back_knee": (-45, 5), "back_paw": (-10, 0)},
    "lie_side": {"nose": (110, 20), "eye": (98, 26), "withers": (45, 38), "tail_root": (-60, 32),
                 "shoulder": (45, 30), "hip": (-50, 28), "front_elbow": (60, 25), "front_knee": (80, 22),
                 "front_paw": (100, 20), "rear_stifle": (-65, 24), "back_knee": (-85, 20), "back_paw": (-105, 18)},
}
EXPECTED = {STAND: STAND, SIT: SIT, "lie_sphinx": LIE, "lie_side": LIE}


def ap10k(p: dict) -> dict[str, tuple[float, float]]:
    return {"L_Eye": p["eye"], "R_Eye": (p["eye"][0] - 3, p["eye"][1]), "Nose": p["nose"], "Neck": p["withers"],
            "Root of tail": p["tail_root"], "L_Shoulder": p["shoulder"], "L_Elbow": p["front_knee"],
            "L_F_Paw": p["front_paw"], "R_Shoulder": p["shoulder"], "R_Elbow": p["front_knee"],
            "R_F_Paw": (p["front_paw"][0] + 6, p["front_paw"][1]), "L_Hip": p["hip"], "L_Knee": p["back_knee"],
            "L_B_Paw": p["back_paw"], "R_Hip": p["hip"], "R_Knee": p["back_knee"],
            "R_B_Paw": (p["back_paw"][0] + 6, p["back_paw"][1])}


def dog_pose(p: dict) -> dict[str, tuple[float, float]]:
    out = {}
    for side in ("left", "right"):
        shift = 0 if side == "left" else 6
        out |= {f"front_{side}_paw": (p["front_paw"][0] + shift, p["front_paw"][1]),
                f"front_{side}_knee": p["front_knee"], f"front_{side}_elbow": p["front_elbow"],
                f"rear_{side}_paw": (p["back_paw"][0] + shift, p["back_paw"][1]),
                f"rear_{side}_knee": p["back_knee"], f"rear_{side}_elbow": p["rear_stifle"],
                f"{side}_ear_base": (p["eye"][0] - 10, p["eye"][1] + 4),
                f"{side}_ear_tip": (p["eye"][0] - 16, p["eye"][1] - 6),
                f"{side}_eye": p["eye"]}
    nose, withers = p["nose"], p["withers"]
    out |= {"tail_start": p["tail_root"], "tail_end": (p["tail_root"][0] - 30, p["tail_root"][1] - 20),
            "nose": nose, "chin": (nose[0] - 4, nose[1] - 8), "withers": withers,
            "throat": ((nose[0] + withers[0]) / 2, (nose[1] + withers[1]) / 2 - 10)}
    return out


def to_image(points: dict[str, tuple[float, float]], scale: float = 2.0, mirror: bool = False,
             noise: float = 0.0, seed: int = 0, conf: float = 0.9) -> dict[str, tuple[float, float, float]]:
    """Place anatomical points in an image: y down, origin (320, 420), optional mirror and Gaussian noise."""
    rng = np.random.default_rng(seed)
    xs = [x for x, _ in points.values()]
    ys = [y for _, y in points.values()]
    size = max(max(xs) - min(xs), max(ys) - min(ys)) * scale
    out = {}
    for name, (x, y) in points.items():
        jitter = rng.normal(0, noise * size, 2) if noise else (0.0, 0.0)
        out[name] = (320 + (-x if mirror else x) * scale + jitter[0], 420 - y * scale + jitter[1], conf)
    return out


SCHEMES = {"ap10k": ap10k, "dog_pose": dog_pose}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dog", DOGS)
@pytest.mark.parametrize("mirror", [False, True])
def test_clean_keypoints_give_the_posture(scheme: str, dog: str, mirror: bool) -> None:
    reading = classify_keypoints(to_image(SCHEMES[scheme](DOGS[dog]), mirror=mirror))
    assert reading is not None
    assert (reading.posture, reading.source) == (EXPECTED[dog], "keypoints"), reading.detail
    assert reading.confidence >= 0.6


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dog", DOGS)
def test_noisy_keypoints_still_give_the_posture(scheme: str, dog: str) -> None:
    """Keypoints jittered by 3 % of the dog's size (a decent model's error): 20 draws, all right."""
    got = [classify_keypoints(to_image(SCHEMES[scheme](DOGS[dog]), noise=0.03, seed=s)) for s in range(20)]
    assert [r.posture if r else None for r in got] == [EXPECTED[dog]] * 20


@pytest.mark.parametrize("dog", DOGS)
def test_missing_keypoints_use_what_is_left(dog: str) -> None:
    points = to_image(dog_pose(DOGS[dog]))
    # a leg pair hidden behind the body and the head turned away: the other paws and the top line still decide
    hidden_back_paws = {k: v for k, v in points.items() if not k.startswith("rear_") or "elbow" in k}
    hidden_head = {k: v for k, v in hidden_back_paws.items()
                   if k not in ("nose", "chin", "left_eye", "right_eye", "left_ear_base", "right_ear_base")}
    for subset in (hidden_back_paws, hidden_head):
        reading = classify_keypoints(subset)
        assert reading is not None and reading.posture == EXPECTED[dog], reading
    # AP-10K without shoulders/hips falls back to neck and tail root
    ap = to_image(ap10k(DOGS[dog]))
    no_joints = {k: v for k, v in ap.items() if "Shoulder" not in k and "Hip" not in k}
    reading = classify_keypoints(no_joints)
    assert reading is not None and reading.posture == EXPECTED[dog]


def test_too_few_keypoints_defer_to_the_box() -> None:
    points = to_image(ap10k(DOGS[STAND]))
    head_only = {k: points[k] for k in ("L_Eye", "R_Eye", "Nose")}
    assert classify_keypoints(head_only) is None
    no_paws = {k: v for k, v in points.items() if "Paw" not in k}
    assert classify_keypoints(no_paws) is None
    faint = to_image(ap10k(DOGS[STAND]), conf=0.1)     # every keypoint below the confidence threshold
    assert classify_keypoints(faint, threshold=0.3) is None


# --- box ---------------------------------------------------------------------------------------

def test_single_box_uses_absolute_aspect() -> None:
    assert classify_box_alone((0, 0, 300, 270)).posture == STAND     # 0.9: as tall as long
    assert classify_box_alone((0, 0, 300, 150)).posture == LIE       # 0.5: long and low
    assert classify_box_alone((0, 0, 150, 300)).posture == SIT       # 2.0: tall and narrow
    assert all(r.source == "box" for r in (classify_box_alone((0, 0, 10, 10)),))


def feed(model: BoxPosture, boxes: list[tuple[float, float, float, float]], t0: float, fps: float = 10,
         learn: bool = True) -> list[Reading]:
    readings = []
    for i, box in enumerate(boxes):
        t = t0 + i / fps
        reading = model.observe(t, box)
        if learn and reading.posture == STAND:
            model.learn_standing(t, box, "moving" if reading.detail == "moving" else "still")
        readings.append(reading)
    return readings


def test_box_relative_to_the_dogs_own_standing_reference() -> None:
    """A dog whose standing box is squat (aspect 0.62, under the absolute lie bound) still reads stand
    once seen moving, and lying is judged against that reference, not the absolute bound."""
    model = BoxPosture()
    walking = [(100 + 20 * i, 200, 420 + 20 * i, 400) for i in range(20)]  # 320x200 moving 1 height/s
    assert {r.posture for r in feed(model, walking, 0.0)[5:]} == {STAND}
    assert model.reference is not None and model.reference.aspect == pytest.approx(0.625, abs=0.01)
    still = [(480, 200, 800, 400)] * 20
    assert {r.posture for r in feed(model, still, 2.0)[10:]} == {STAND}
    lying = [(460, 290, 820, 400)] * 20                                   # 360x110: aspect 0.31, floor kept
    assert {r.posture for r in feed(model, lying, 4.0)[10:]} == {LIE}


def test_box_lie_by_top_drop_with_the_floor_kept_even_when_seen_head_on() -> None:
    """Head-on, a dog lying down keeps its width; the top falls while the bottom stays: lying."""
    model = BoxPosture()
    # walking towards the camera head-on: a 2:1 box growing from 100x200 to 150x300 in 1.5 s
    approach = [(300 - 25 * f, 100 - 50 * f, 400 + 25 * f, 300 + 50 * f) for f in (i / 15 for i in range(16))]
    # the first 0.4 s have no motion history: the absolute aspect (2:1 says sit) decides until then
    assert {r.posture for r in feed(model, approach, 0.0)[5:]} == {STAND}
    assert {r.posture for r in feed(model, [(275, 50, 425, 350)] * 20, 1.6)} == {STAND}
    readings = feed(model, [(270, 155, 430, 352)] * 20, 3.6)   # top fell by 35 % of the height, floor kept
    assert readings[-1].posture == LIE


def test_box_sit_from_a_standing_side_view() -> None:
    model = BoxPosture()
    feed(model, [(100, 200, 400, 460)] * 20, 0.0)              # 300x260 standing side view
    readings = feed(model, [(200, 190, 360, 460)] * 20, 2.0)   # 160x270: shorter, as tall
    assert readings[-1].posture == SIT


def test_box_walking_away_stays_standing() -> None:
    """Moving away shrinks the box evenly and lifts the floor line: neither lying nor sitting."""
    model = BoxPosture()
    boxes = [(250 - 150 * f, 330 - 130 * f, 250 + 150 * f, 330 + 130 * f) for f in (1 - i / 80 for i in range(40))]
    assert {r.posture for r in feed(model, boxes, 0.0)} == {STAND}


# --- hysteresis --------------------------------------------------------------------------------

def run(h: PostureHysteresis, postures: list[str], fps: float = 10, t0: float = 0.0) -> list:
    changes = []
    for i, p in enumerate(postures):
        change = h.update(t0 + i / fps, Reading(p, 0.8, "box"), track_id=7)
        if change is not None:
            changes.append(change)
    return changes


def test_posture_fires_only_after_holding_min_seconds() -> None:
    h = PostureHysteresis(min_seconds=2.0)
    assert run(h, [STAND] * 20) == []                     # 1.9 s: not yet
    changes = run(h, [STAND], t0=2.0)
    assert len(changes) == 1 and changes[0].posture == STAND and changes[0].previous is None
    assert changes[0].previous_seconds is None and changes[0].source == "box"


def test_one_frame_flip_fires_nothing_and_a_held_change_reports_the_previous_posture() -> None:
    h = PostureHysteresis(min_seconds=2.0)
    run(h, [STAND] * 30)                                  # stand committed at t=2.0 (began at 0.0)
    assert run(h, [LIE] + [STAND] * 30, t0=3.0) == []     # a one-frame lie
    assert run(h, [SIT, UNKNOWN, STAND], t0=6.1) == []    # a flicker through unknown
    changes = run(h, [LIE] * 25, t0=10.0)                 # lie from 10.0, held 2 s at 12.0
    assert len(changes) == 1
    lie = changes[0]
    assert (lie.posture, lie.previous, lie.track_id) == (LIE, STAND, 7)
    assert lie.previous_seconds == pytest.approx(10.0)    # standing from 0.0 until lying began at 10.0
    assert lie.committed == pytest.approx(12.0) and lie.confidence == pytest.approx(0.8)


def test_unknown_readings_neither_confirm_nor_cancel() -> None:
    h = PostureHysteresis(min_seconds=1.0)
    changes = run(h, [SIT, UNKNOWN, UNKNOWN, SIT, UNKNOWN, SIT, SIT, SIT, SIT, SIT, SIT])
    assert [c.posture for c in changes] == [SIT]


def test_monitor_prefers_keypoints_and_falls_back_to_box() -> None:
    monitor = PostureMonitor(min_seconds=0.5)
    box = (100.0, 100.0, 400.0, 370.0)   # 0.9 aspect: the box alone says stand
    sitting = to_image(ap10k(DOGS[SIT]))
    changes = [monitor.update(i / 10, 1, box, sitting) for i in range(8)]
    fired = [c for c in changes if c]
    assert [(c.posture, c.source) for c in fired] == [(SIT, "keypoints")]
    # keypoints gone (no pose model, or stale): the box reading takes over
    assert monitor.read(1.0, 1, box).source == "box"
    assert monitor.current(1)["posture"] == SIT
    assert monitor.forget([]) == [1] and monitor.current(1) is None
