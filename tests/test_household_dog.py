"""Candidate boxes (a curled dog the model calls ``cat``) in the tracker, as pure logic with synthetic boxes:
they keep a dog the device already knows and never report one on their own."""

from __future__ import annotations

import pytest

from edge.vision.detector import Detection
from edge.vision.household import HouseholdDog
from edge.vision.tracking import DogTracker

pytestmark = pytest.mark.unit


def box(label: str, x: float = 100, y: float = 100, w: float = 200, h: float = 120, score: float = 0.6) -> Detection:
    return Detection(x, y, x + w, y + h, score, label)


def confirmed(tracker: DogTracker, frames: int = 5, start: float = 0.0) -> float:
    """A real dog seen for ``frames`` frames at 10 fps; returns the time of the last one."""
    for i in range(frames):
        tracker.update([box("dog", 100 + i)], start + i * 0.1)
    return start + (frames - 1) * 0.1


def test_candidates_alone_never_create_a_track_or_dog_detected() -> None:
    tracker = DogTracker(absence_seconds=3)
    updates = [tracker.update([], i * 0.1, [box("cat"), box("teddy bear", 400)]) for i in range(100)]
    assert not any(u.arrived for u in updates)
    assert tracker.tracks == [] and not tracker.present


def test_a_dog_that_curls_up_as_cat_stays_present_with_the_same_track() -> None:
    tracker = DogTracker(absence_seconds=3)
    t = confirmed(tracker)
    lefts = []
    for i in range(1, 600):   # a minute of "cat" where the dog was, a little smaller (curled)
        update = tracker.update([], t + i * 0.1, [box("cat", 120, 120, 150, 90, 0.5)])
        lefts += [update.left] if update.left else []
    assert lefts == [] and tracker.present
    assert [tr.track_id for tr in tracker.tracks] == [1]


def test_without_candidates_the_same_dog_would_be_reported_gone() -> None:
    tracker = DogTracker(absence_seconds=3)
    t = confirmed(tracker)
    assert any(tracker.update([], t + i * 0.1, [box("cat", 400, 300, 60, 40)]).left for i in range(1, 60))


def test_a_candidate_revives_a_recently_lost_track_but_not_after_the_dog_left() -> None:
    tracker = DogTracker(absence_seconds=5, max_coast=1)
    t = confirmed(tracker)
    for i in range(1, 30):    # 3 s of nothing: the track stops coasting, presence holds
        tracker.update([], t + i * 0.1)
    assert tracker.tracks == [] and tracker.present and len(tracker.lost) == 1
    tracker.update([], t + 3.0, [box("sheep", 110, 105)])
    assert [tr.track_id for tr in tracker.tracks] == [1] and tracker.lost == []
    # the dog leaves for good: after dog_left, the same candidate brings nothing back
    left = [tracker.update([], t + 3.0 + i * 0.1).left for i in range(1, 80)]
    assert any(left) and not tracker.present
    later = [tracker.update([], t + 12 + i * 0.1, [box("sheep", 110, 105)]) for i in range(50)]
    assert not any(u.arrived for u in later) and tracker.tracks == []


def test_a_candidate_on_a_dog_box_is_that_dog_not_a_second_one() -> None:
    tracker = DogTracker()
    for i in range(10):
        update = tracker.update([box("dog")], i * 0.1, [box("cat", 102, 101)])
    assert [tr.track_id for tr in update.tracks] == [1]


def test_dog_like_candidates_help_confirm_a_track_a_real_dog_started() -> None:
    """One real dog box, then the model says cat: the household's size and shape (learned from an earlier
    visit) confirm it; a cat of another size and shape does not."""
    def tracker_after_a_visit() -> DogTracker:
        tracker = DogTracker(absence_seconds=2)
        t = confirmed(tracker, frames=80)
        for i in range(1, 40):
            tracker.update([], t + i * 0.1)
        assert not tracker.present
        return tracker

    household_shaped = tracker_after_a_visit()
    household_shaped.update([box("dog", 300, 200)], 100.0)
    arrived = [household_shaped.update([], 100 + i * 0.1, [box("cat", 305, 205, 190, 110)]).arrived
               for i in range(1, 5)]
    assert any(arrived)
    other_shape = tracker_after_a_visit()
    other_shape.update([box("dog", 300, 200)], 100.0)
    tiny_tall = [other_shape.update([], 100 + i * 0.1, [box("cat", 330, 200, 40, 120)]).arrived for i in range(1, 5)]
    assert not any(tiny_tall) and not other_shape.present


def test_the_household_profile_needs_samples_and_widens_for_a_curled_dog() -> None:
    dog = HouseholdDog()
    assert not dog.fits((0, 0, 200, 120))      # nothing learned yet
    for i in range(30):
        dog.learn((0, 0, 200 + i, 120), i * 1.0)
    assert dog.fits((0, 0, 150, 100))          # smaller and a bit rounder: a curled dog
    assert not dog.fits((0, 0, 20, 12))        # a hundredth of the area
    assert not dog.fits((0, 0, 60, 200))       # tall and narrow: a person, not this dog lying
