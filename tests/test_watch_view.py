"""``dogmonitor watch``'s "in view" line: it follows the dog's presence, not each frame's detections."""

from __future__ import annotations

import pytest

from edge.watch import ViewLine

pytestmark = pytest.mark.unit

DOG = {"label": "dog", "track_id": 1, "confidence": 0.57}
CAT = {"label": "cat", "track_id": None, "confidence": 0.4}


def overlay(*boxes: dict) -> dict:
    return {"type": "overlay", "overlay_type": "detection", "ts": 1_700_000_000.0, "data": {"boxes": list(boxes)}}


def test_frames_without_a_detection_keep_the_dog_while_it_is_present_and_nothing_after_it_left() -> None:
    view = ViewLine()
    view.reset(present=False)
    view.event({"event_type": "dog_detected", "ts": 1_700_000_000.0})
    lines = [view.overlay(overlay(DOG))]
    for _ in range(6):  # a detector that sees the dog on every other frame (motion gating, a missed frame)
        lines += [view.overlay(overlay()), view.overlay(overlay(DOG))]
    shown = [line for line in lines if line is not None]
    assert len(shown) == 1 and shown[0].endswith("in view: dog#1 0.57"), shown
    left = view.event({"event_type": "dog_left", "ts": 1_700_000_000.0})
    assert left is not None and left.endswith("in view: nothing")  # said with the event, not frames later
    assert view.overlay(overlay()) is None


def test_a_watch_joining_while_the_dog_is_present_and_other_things_in_view() -> None:
    view = ViewLine()
    view.reset(present=True)  # the connection message said dog_present=True
    assert view.overlay(overlay()).endswith("in view: nothing")  # no dog shown yet: nothing to keep
    assert view.overlay(overlay(DOG)).endswith("in view: dog#1 0.57")
    assert view.overlay(overlay(CAT)) is None  # the dog is still present: its line stays
    assert view.overlay(overlay(DOG, CAT)).endswith("in view: dog#1 0.57, cat#None 0.40")
    view.reset(present=False)  # a reconnect to a device without a dog
    assert view.overlay(overlay(CAT)).endswith("in view: cat#None 0.40")
