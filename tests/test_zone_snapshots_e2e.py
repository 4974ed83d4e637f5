"""A dog pacing across a zone's edge: many zone_enter events, one snapshot (DOGMON_ZONE_SNAPSHOT_INTERVAL)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest

from tests.helpers import events, ws_collect, ws_connect
from tests.media import moving_dog_video

LABRADOR = "dog_standing_labrador_wikimedia.jpg"
# The left 40 % of the room: the dog's ground point (x from 25 % to 75 %) crosses its edge twice a lap.
LEFT = {"name": "left", "points": [[0, 0], [0.4, 0], [0.4, 1], [0, 1]]}


@pytest.mark.e2e
def test_a_dog_crossing_a_zone_edge_every_few_seconds_gets_one_snapshot(start_device, media: Path,
                                                                         tmp_path: Path) -> None:
    pacing = moving_dog_video(tmp_path / "pacing.mp4", media / LABRADOR, seconds=60.0, speed=200.0)
    device = start_device({"DOGMON_SOURCE": str(pacing), "DOGMON_ZONE_INERTIA_FRAMES": "2",
                           "DOGMON_SNAPSHOT_EVENTS": "zone_enter,dog_detected", "DOGMON_CLIP_EVENTS": "",
                           "DOGMON_MEDIA_MIN_FREE_MB": "0"})
    with ws_connect(device.ws_url) as ws:
        ws.send(orjson.dumps({"type": "set_zones", "id": "z", "zones": [LEFT]}))
        got = ws_collect(ws, lambda m: len(events(m, "zone_enter")) >= 5, 60)
        with contextlib.suppress(AssertionError):  # time for a snapshot of the last entry to be saved
            ws_collect(ws, lambda m: False, 3, into=got)
    enters = events(got, "zone_enter")
    saved = [e["data"] for e in events(got, "snapshot_saved")]
    for_zones = [s for s in saved if s["event_type"] == "zone_enter"]
    assert len(enters) >= 5
    assert [s["event_seq"] for s in for_zones] == [enters[0]["seq"]], (for_zones, [e["seq"] for e in enters])
    assert any(s["event_type"] == "dog_detected" for s in saved)  # other snapshot events are not held back
