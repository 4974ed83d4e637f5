"""A dog already lying still when the device starts (no motion at all, ever), through the real capture path:
reported within 10 s, in colour and in grey, and never reported gone while it lies there for 2 minutes."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest

from tests.helpers import events, ws_collect, ws_connect
from tests.media import compose_video

pytestmark = pytest.mark.e2e

LYING = "dog_lying_person_horse_darknet.jpg"   # sphinx-lying dog, a person and a pony: nothing moves
STILL_SECONDS = 125.0


@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
def test_still_lying_dog_is_found_and_never_reported_gone(start_device, media: Path, tmp_path: Path,
                                                          gray: bool) -> None:
    image = cv2.imread(str(media / LYING))
    if gray:
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    video = compose_video(tmp_path / "still.mp4", [(image, STILL_SECONDS)], fps=5.0)
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_SOURCE_LOOP": "0", "DOGMON_ABSENCE_SECONDS": "10"})
    started = time.monotonic()
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: bool(events(m, "dog_detected")), timeout=10)
        found_after = time.monotonic() - started
        # the whole still scene plays out; the camera goes offline at its end
        ws_collect(ws, lambda m: bool(events(m, "camera_offline")), timeout=STILL_SECONDS + 30, into=got)
    assert found_after <= 10.0
    offline = events(got, "camera_offline")[0]["ts"]
    gone = [e for e in events(got, "dog_left") if e["ts"] < offline]
    assert gone == [], gone
    assert offline - events(got, "dog_detected")[0]["ts"] >= STILL_SECONDS - 10
