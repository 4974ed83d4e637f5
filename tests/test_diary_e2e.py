"""The diary end to end: a real device plays a scripted clip (empty room, the dog in a zone, away, back, a
bark in the audio, a bookmark), and get_diary over REST and WebSocket names each episode with its times;
the last finished day is retained on MQTT.

Times are checked against the script: the clip starts when the camera comes online (``camera_online``),
so the dog's arrival is expected 3 s later, its first departure 9 s later and so on (±2 s).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.helpers import MqttCollector, events, ws_collect, ws_connect
from tests.media import compose_video
from tests.test_bark_e2e import BARK_CLIP
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.e2e

FLOOR = {"name": "floor", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}
# (seconds into the clip) the dog is in view 3-9 and 14-19
SCRIPT = [(None, 3.0), (LABRADOR, 6.0), (None, 5.0), (LABRADOR, 5.0), (None, 6.0)]
ARRIVALS, DEPARTURES = (3.0, 14.0), (9.0, 19.0)


def reply(ws, body: dict, timeout: float = 20, got: list[dict] | None = None) -> dict:
    """Send a command and return its reply's data (what else arrived meanwhile goes to ``got``)."""
    got = [] if got is None else got
    ws.send(orjson.dumps(body))
    ws_collect(ws, lambda m: any(x["type"] in ("reply", "error") and x["data"].get("id") == body["id"] for x in m),
               timeout, into=got)
    answer = next(x for x in got if x["type"] in ("reply", "error") and x["data"].get("id") == body["id"])
    assert answer["type"] == "reply", answer
    return answer["data"]


def near(value: float, expected: float, tolerance: float = 2.0) -> bool:
    return abs(value - expected) <= tolerance


def test_the_diary_names_the_scripted_episodes_with_their_times(start_device, mosquitto, media: Path,
                                                                  tmp_path: Path) -> None:
    clip = compose_video(tmp_path / "day.mp4", [(None if s is None else media / s, t) for s, t in SCRIPT])
    data = tmp_path / "data"
    data.mkdir()
    (data / "zones.json").write_bytes(orjson.dumps({"version": 1, "zones": [FLOOR]}))
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/diary")
    device = start_device({"DOGMON_SOURCE": str(clip), "DOGMON_SOURCE_LOOP": "0", "DOGMON_DATA_DIR": str(data),
                           "DOGMON_ABSENCE_SECONDS": "1", "DOGMON_MQTT_URL": mosquitto.url,
                           "DOGMON_AUDIO_SOURCE": str(media / BARK_CLIP), "DOGMON_AUDIO_LOOP": "0",
                           "DOGMON_DIARY_MIN_AWAY_SECONDS": "2", "DOGMON_DIARY_MIN_ZONE_SECONDS": "2",
                           "DOGMON_CLIP_EVENTS": ""})
    with ws_connect(device.ws_url) as ws:
        got: list[dict] = []
        ws_collect(ws, lambda m: len(events(m, "dog_left")) >= 2 and bool(events(m, "bark")), 60, into=got)
        marked = time.time()
        assert reply(ws, {"type": "bookmark", "id": "b", "label": "good girl"})["label"] == "good girl"
        stored = reply(ws, {"type": "get_events", "id": "e", "event_types": ["camera_online", "bark"]})["events"]
        online = next(e["ts"] for e in stored if e["event_type"] == "camera_online")
        bark = next(e for e in stored if e["event_type"] == "bark")
        today = dt.date.fromtimestamp(time.time()).isoformat()
        over_ws = reply(ws, {"type": "get_diary", "id": "d", "day": today})["diary"]
    with urllib.request.urlopen(f"{device.http_url}/api/diary?day={today}", timeout=15) as response:
        over_rest = json.loads(response.read())["diary"]

    for diary in (over_ws, over_rest):
        assert diary["day"] == today and diary["final"] is False
        kinds: dict[str, list[dict]] = {}
        for episode in diary["episodes"]:
            kinds.setdefault(episode["kind"], []).append(episode)
        seen = kinds["seen"]
        assert len(seen) == 2, diary["episodes"]
        for episode, arrived, left in zip(seen, ARRIVALS, DEPARTURES, strict=True):
            assert near(episode["start"], online + arrived), (episode, online)
            assert near(episode["end"], online + left), (episode, online)
            assert "in view" in episode["text"]
        away = kinds["away"]
        assert len(away) == 1 and near(away[0]["start"], online + 9) and near(away[0]["end"], online + 14)
        assert "out of view" in away[0]["text"]
        zones = kinds["zone"]
        assert [z["figures"]["zone"] for z in zones] == ["floor", "floor"]
        assert near(zones[0]["start"], online + 3) and near(zones[0]["end"], online + 9)
        assert "in floor" in zones[0]["text"]
        barking = kinds["barking"]
        assert len(barking) == 1 and near(barking[0]["start"], bark["data"]["start"])
        assert barking[0]["figures"]["barks"] == bark["data"]["barks"] and "barked" in barking[0]["text"]
        bookmark = kinds["bookmark"]
        assert len(bookmark) == 1 and near(bookmark[0]["start"], marked) and "good girl" in bookmark[0]["text"]
        # the arrival's snapshot is its thumbnail
        assert seen[0]["snapshot"] and seen[0]["snapshot"]["media_id"]
        assert diary["totals"]["zone_seconds"]["floor"] == pytest.approx(11, abs=3)
        assert diary["totals"]["bookmarks"] == ["good girl"]
        assert diary["baseline"]["learning_days_left"] == 7   # a new device: unusual_activity is silent
    # yesterday, the last finished day, is retained on MQTT (empty: the device did not run then)
    subscriber.wait_for(lambda c: bool(c.json_on("/diary")), 15, "retained diary")
    retained = subscriber.json_on("/diary")[-1]
    subscriber.close()
    assert retained["day"] == (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    assert retained["final"] is True and retained["episodes"] == []
