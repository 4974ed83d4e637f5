"""Tracks and presence as pure logic: confirmation, no flicker, coasting, absence."""

from __future__ import annotations

import pytest

from edge.vision.detector import Detection
from edge.vision.tracking import DogTracker

pytestmark = pytest.mark.unit


def dog(x: float = 100, y: float = 100, w: float = 80, h: float = 60, score: float = 0.8) -> Detection:
    return Detection(x, y, x + w, y + h, score, "dog")


def test_dog_detected_once_after_confirmation() -> None:
    tracker = DogTracker(absence_seconds=5, confirm_hits=3)
    arrivals = []
    for i in range(20):
        update = tracker.update([dog(100 + i)], now=i * 0.1)
        if update.arrived:
            arrivals.append((i, update.arrived.track_id))
    assert arrivals == [(2, 1)]  # third frame confirms, once


def test_single_frame_false_positive_fires_nothing() -> None:
    tracker = DogTracker(absence_seconds=1)
    fired = [tracker.update([dog()] if i == 3 else [], now=i * 0.1) for i in range(40)]
    assert not any(u.arrived or u.left for u in fired)


def test_missed_frames_do_not_end_presence_or_create_new_tracks() -> None:
    tracker = DogTracker(absence_seconds=3, max_coast=2)
    ids = set()
    for i in range(60):  # detector misses 13 frames in a row, like the head-on retriever in the clip
        dogs = [] if 20 <= i < 33 else [dog(100 + i)]
        update = tracker.update(dogs, now=i * 0.1)
        assert update.left is None
        ids |= {t.track_id for t in update.tracks if t.confirmed}
    assert ids == {1}


def test_dog_left_after_absence_even_without_frames() -> None:
    tracker = DogTracker(absence_seconds=2)
    for i in range(5):
        tracker.update([dog()], now=i * 0.1)
    assert tracker.present
    assert tracker.tick(1.5).left is None
    left = tracker.tick(2.5).left
    assert left is not None and left["last_track_id"] == 1
    assert not tracker.present
    assert tracker.tick(3.0).left is None  # once


def test_two_dogs_get_two_tracks() -> None:
    tracker = DogTracker()
    for i in range(5):
        update = tracker.update([dog(10), dog(400)], now=i * 0.1)
    assert sorted(t.track_id for t in update.tracks if t.confirmed) == [1, 2]
