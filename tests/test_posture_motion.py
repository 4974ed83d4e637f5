"""Posture from motion and history: an active dog stands, a stopped dog keeps its posture, a turning dog
does not flicker, a jittery box with no pixel motion under it is no evidence of movement."""

from __future__ import annotations

import pytest

from edge.behaviour.posture import LIE, SIT, STAND, BoxPosture, PostureHysteresis, PostureMonitor, Reading
from edge.behaviour.posture_feature import motion_share
from edge.vision.motion import MotionResult

pytestmark = pytest.mark.unit

FPS = 10


def turning(i: int) -> tuple[float, float, float, float]:
    """A dog walking in place while it turns from a side view (aspect 0.9) to head-on (aspect 1.8) and back,
    every 1.2 s: the box alone says stand, then sit, then stand ..."""
    phase = (i % 12) / 12
    width = 300 - 150 * (1 - abs(2 * phase - 1))
    return (300 - width / 2, 130, 300 + width / 2, 400)


def test_active_dog_reads_stand_whatever_its_box_shape() -> None:
    model = BoxPosture()
    readings = [model.observe(i / FPS, turning(i), motion=0.6) for i in range(40)]
    # the box alone would say sit for the head-on half of each turn
    assert classify_alone_sits(turning(6))
    assert {r.posture for r in readings[3:]} == {STAND}
    assert {r.detail for r in readings[3:]} <= {"active", "moving"}


def classify_alone_sits(box: tuple[float, float, float, float]) -> bool:
    from edge.behaviour.posture import classify_box_alone

    return classify_box_alone(box).posture == SIT


def test_jittery_box_without_pixel_motion_is_not_movement() -> None:
    """The detector's box jumping on a still dog (night, low score) must not make it stand."""
    model = BoxPosture()
    lying = [(100, 300 + (i % 2) * 30, 420 + (i % 3) * 40, 420) for i in range(30)]   # long and low, jittering
    readings = [model.observe(i / FPS, box, motion=0.0) for i, box in enumerate(lying)]
    assert {r.posture for r in readings} == {LIE}
    # the same jitter with pixels changing over the dog is a dog moving
    model = BoxPosture()
    assert STAND in {model.observe(i / FPS, box, motion=0.5).posture for i, box in enumerate(lying)}


def test_monitor_walking_turning_dog_stands_soon_and_never_flickers_to_sit() -> None:
    monitor = PostureMonitor(min_seconds=2.0, first_seconds=0.5)
    changes = [monitor.update(i / FPS, 1, turning(i), motion=0.5) for i in range(60)]
    fired = [c for c in changes if c is not None]
    assert [c.posture for c in fired] == [STAND]
    assert fired[0].committed <= 1.0          # shown within a second of the first box
    assert monitor.current(1)["posture"] == STAND


def test_a_dog_that_stops_keeps_its_posture_until_the_evidence_changes() -> None:
    monitor = PostureMonitor(min_seconds=2.0, first_seconds=0.5)
    walk = [(50 + 30 * i, 200, 350 + 30 * i, 470) for i in range(20)]                # side view, walking right
    for i, box in enumerate(walk):
        monitor.update(i / FPS, 1, box, motion=0.5)
    assert monitor.current(1)["posture"] == STAND
    stopped = walk[-1]
    t = 2.0
    # stopped and still, seen head-on for a moment (a short tall box), then the side view again
    for box in [stopped] * 10 + [(stopped[0] + 80, 200, stopped[2] - 80, 470)] * 8 + [stopped] * 30:
        assert monitor.update(t, 1, box, motion=0.0) is None
        t += 1 / FPS
    assert monitor.current(1)["posture"] == STAND
    # it lies down where it stood: low long box, floor kept, still; held 2 s, it becomes lie
    lying = (stopped[0] - 40, 360, stopped[2] + 40, 470)
    changes = []
    for _ in range(40):
        changes.append(monitor.update(t, 1, lying, motion=0.0))
        t += 1 / FPS
    assert [c.posture for c in changes if c] == [LIE]


def test_a_change_needs_two_thirds_of_the_readings_over_min_seconds() -> None:
    h = PostureHysteresis(min_seconds=2.0, first_seconds=0.5)
    t = 0.0

    def feed(postures: list[str]) -> list[str]:
        nonlocal t
        out = []
        for p in postures:
            change = h.update(t, Reading(p, 0.7, "box"))
            if change is not None:
                out.append(change.posture)
            t += 1 / FPS
        return out

    assert feed([STAND] * 6) == [STAND]                   # the first posture after 0.5 s
    assert feed([SIT, STAND] * 30) == []                  # half sit, half stand for 6 s: no change
    assert feed([SIT, SIT, STAND] * 10) == [SIT]          # two thirds sit, held 2 s: sit
    assert feed([LIE] * 20) == [] and feed([LIE]) == [LIE]  # a clean change still takes the full 2 s


def test_motion_share_is_the_covered_part_of_the_box() -> None:
    box = (100.0, 100.0, 300.0, 300.0)
    assert motion_share(MotionResult(((0, 0, 200, 400),), 0.2), box) == pytest.approx(0.5)
    assert motion_share(MotionResult((), 0.0), box) == 0.0
    assert motion_share(MotionResult((), 0.9, relearned=True), box) is None    # the scene changed at once
    assert motion_share(None, box) is None                                       # gating off: unknown
