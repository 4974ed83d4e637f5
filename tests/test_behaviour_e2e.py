"""Zones, fetch_return and analytics end to end: a composed clip with a real ball → real model → tablet and MQTT.

One device run plays the fetch clip (empty floor 4 s, the dog 1 s, carrying a drawn tennis ball towards
the camera 3 s, holding it 2 s, without it 1.5 s). A WebSocket client draws zones while the floor is
still empty; a second device run on the same data dir must come back with the same zones and figures.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.fetch_media import compose_fetch_video
from tests.helpers import MqttCollector, events, ws_collect, ws_connect
from tests.media import compose_video

pytestmark = pytest.mark.e2e

RUG = {"name": "rug", "points": [[0, 0.85], [1, 0.85], [1, 1], [0, 1]], "dwell_alert_seconds": 2}
DOOR = {"name": "door", "points": [[0, 0], [0.1, 0], [0.1, 0.1]], "roles": ["return"], "color": "#3366ff"}


def reply_to(msgs: list[dict], request_id: int) -> dict | None:
    return next((m for m in msgs if m["type"] in ("reply", "error") and m["data"].get("id") == request_id), None)


def request(ws, msgs: list[dict], body: dict, timeout: float = 10) -> dict:
    ws.send(orjson.dumps(body))
    ws_collect(ws, lambda got: reply_to(got, body["id"]) is not None, timeout, into=msgs)
    return reply_to(msgs, body["id"])


def test_zones_fetch_and_analytics_survive_a_restart(start_device, mosquitto, media: Path, tmp_path: Path) -> None:
    clip = compose_fetch_video(tmp_path / "fetch.mp4", media, lead_seconds=4.0)
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#")
    device = start_device({"DOGMON_SOURCE": str(clip), "DOGMON_SOURCE_LOOP": "0", "DOGMON_MQTT_URL": mosquitto.url,
                           "DOGMON_ANALYTICS_INTERVAL": "1", "DOGMON_HEATMAP_INTERVAL": "2"})
    with ws_connect(device.ws_url) as ws:
        got: list[dict] = []
        ws_collect(ws, lambda m: bool(m), 10, into=got)
        assert got[0]["type"] == "connection" and got[0]["data"]["zones"] == []

        # an invalid request is refused with the problem named, and changes nothing
        bow_tie = {"name": "sofa", "points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}
        refused = request(ws, got, {"type": "set_zones", "id": 1, "zones": [RUG, bow_tie]})
        assert refused["type"] == "error" and refused["data"]["code"] == "invalid_zones"
        assert "'sofa'" in refused["data"]["message"] and "crosses itself" in refused["data"]["message"]
        assert request(ws, got, {"type": "get_zones", "id": 2})["data"]["zones"] == []

        accepted = request(ws, got, {"type": "set_zones", "id": 3, "zones": [RUG, DOOR]})
        assert [z["name"] for z in accepted["data"]["zones"]] == ["rug", "door"]

        # the dog arrives on the rug, carries the ball towards the camera, then the clip ends and it is lost
        ws_collect(ws, lambda m: bool(events(m, "zone_exit")), 45, into=got)
        ws_collect(ws, lambda m: any(x["type"] == "analytics" and x["data"]["zone_visits"].get("rug") == 1
                                     and x["data"]["event_counts"].get("zone_exit") == 1 for x in m), 10, into=got)
        names = [e["event_type"] for e in events(got) if e["event_type"].startswith(("zone", "fetch"))]
        assert names == ["zone_enter", "zone_dwell", "fetch_return", "zone_exit"], names
        enter, dwell, fetch, leave = (events(got, k)[0]["data"] for k in
                                      ("zone_enter", "zone_dwell", "fetch_return", "zone_exit"))
        assert enter["zone"] == "rug" and dwell["zone"] == "rug" and dwell["seconds"] >= 2
        assert fetch["toy"] == "sports ball" and fetch["reason"] == "growth" and fetch["growth"] >= 1.5
        assert 0.3 <= fetch["carry_seconds"] <= 3.5, fetch
        # the dog stood on the rug from its first frames to its last (7.5 s of clip), give or take inertia
        assert 5.5 <= leave["seconds"] <= 8.5 and leave["reason"] == "dog_lost", leave
        zone_overlays = [m["data"]["zones"] for m in got if m.get("overlay_type") == "zones"]
        assert any(z["name"] == "rug" and z["occupied"] for zs in zone_overlays for z in zs)
        assert not zone_overlays[-1][0]["occupied"]
        heat = [m["data"] for m in got if m.get("overlay_type") == "heatmap"]
        assert heat and heat[-1]["cols"] == 32 and heat[-1]["rows"] == 18 and heat[-1]["total_seconds"] > 3
        # the dog stood at the bottom centre of the frame: the hottest cell is in the bottom row, middle third
        hottest = max(range(32 * 18), key=lambda i: heat[-1]["seconds"][i])
        assert hottest // 32 == 17 and 10 <= hottest % 32 <= 21

        on_request = request(ws, got, {"type": "get_heatmap", "id": 6})["data"]["heatmap"]
        assert on_request["total_seconds"] >= heat[-1]["total_seconds"] > 3   # the window keeps what was sent
        telemetry = [m["data"]["behaviour"] for m in got if m["type"] == "telemetry"]
        assert telemetry[-1]["zones"] == 2 and telemetry[-1]["fetch_returns"] == 1
        assert telemetry[-1]["activity"]["level"] in ("resting", "low", "moderate", "high")

        first_day = request(ws, got, {"type": "get_analytics", "id": 4})["data"]["analytics"]
        assert first_day["zone_visits"] == {"rug": 1}
        assert first_day["zone_seconds"]["rug"] == pytest.approx(leave["seconds"], abs=0.1)
        assert first_day["event_counts"]["fetch_return"] == 1 and first_day["event_counts"]["zone_dwell"] == 1
        assert request(ws, got, {"type": "get_analytics", "id": 5, "day": "26-11-2026"})["type"] == "error"
        # posture events (from the posture stage, when it is on) are counted from when the posture began
        postures = [e for e in events(got) if e["event_type"] in ("sit", "stand", "lie")]
        assert set(first_day["posture_seconds"]) == {e["event_type"] for e in postures}
        assert sum(first_day["posture_seconds"].values()) <= 8.0

    # everything also arrived over MQTT: events, retained zones (with occupancy) and analytics
    subscriber.wait_for(lambda s: any(e["event_type"] == "zone_exit" for e in s.json_on("/events")), 15,
                        "zone_exit on MQTT")
    assert [e["event_type"] for e in subscriber.json_on("/events")].count("fetch_return") == 1
    subscriber.wait_for(lambda s: any(a["data"]["event_counts"].get("zone_exit") == 1
                                      for a in s.json_on("/analytics")), 10, "analytics on MQTT")
    # the general overlay topic carries every overlay type, each at its own rate (detection does not starve zones)
    overlay_types = {o["overlay_type"] for o in subscriber.json_on("/overlay")}
    assert {"detection", "zones"} <= overlay_types, overlay_types
    zones_topic = subscriber.json_on("/zones")[-1]
    assert [z["name"] for z in zones_topic["data"]["zones"]] == ["rug", "door"]
    subscriber.close()
    assert device.stop() == 0

    # a subscriber arriving later still finds the zones and today's figures, retained
    late = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#")
    late.wait_for(lambda s: bool(s.json_on("/zones")) and bool(s.json_on("/analytics")), 10, "retained topics")
    kept = {t.rsplit("/", 1)[1]: (orjson.loads(p), r) for t, p, r in late.snapshot()
            if t.endswith(("/zones", "/analytics"))}
    assert kept["zones"][1] and kept["analytics"][1]
    assert kept["analytics"][0]["data"]["event_counts"]["fetch_return"] == 1
    late.close()

    # a restart on the same data dir: zones come back with the connection, today's figures are kept
    empty = compose_video(tmp_path / "empty.mp4", [(None, 2.0)])
    again = start_device({"DOGMON_SOURCE": str(empty), "DOGMON_MQTT_URL": mosquitto.url})
    with ws_connect(again.ws_url) as ws:
        got = []
        ws_collect(ws, lambda m: bool(m), 10, into=got)
        connection = got[0]["data"]
        assert [z["name"] for z in connection["zones"]] == ["rug", "door"]
        assert connection["zones"][1]["roles"] == ["return"] and connection["zones"][0]["dwell_alert_seconds"] == 2
        assert connection["analytics"]["zone_visits"] == {"rug": 1}
        second_day = request(ws, got, {"type": "get_analytics", "id": 1})["data"]["analytics"]
        assert second_day["zone_seconds"] == first_day["zone_seconds"]
        assert second_day["zone_visits"] == first_day["zone_visits"]
        for kind in ("zone_enter", "zone_dwell", "zone_exit", "fetch_return", "dog_detected"):
            assert second_day["event_counts"][kind] == first_day["event_counts"][kind], kind
    zones_file = orjson.loads((tmp_path / "data" / "zones.json").read_bytes())
    assert [z["name"] for z in zones_file["zones"]] == ["rug", "door"]

    # the same commands work over MQTT: a bad set_zones is refused by name, a good one replaces the set
    commander = MqttCollector(mosquitto.host, mosquitto.port, ["dogmonitor/testdog/cmd/result",
                                                               "dogmonitor/testdog/zones"])
    commander.client.publish("dogmonitor/testdog/cmd/set_zones", orjson.dumps(
        {"id": "m1", "zones": [{"name": "bowl", "points": [[0.2, 0.2], [0.3, 0.2]]}]}), qos=1)
    commander.client.publish("dogmonitor/testdog/cmd/set_zones", orjson.dumps({"id": "m2", "zones": [DOOR]}), qos=1)
    commander.wait_for(lambda s: {r.get("id") for r in s.json_on("/cmd/result")} >= {"m1", "m2"}, 15, "results")
    results = {r["id"]: r for r in commander.json_on("/cmd/result")}
    assert results["m1"]["ok"] is False and "'bowl'" in results["m1"]["error"]["message"]
    assert results["m2"]["ok"] is True and [z["name"] for z in results["m2"]["result"]["zones"]] == ["door"]
    commander.wait_for(lambda s: [z["name"] for z in s.json_on("/zones")[-1]["data"]["zones"]] == ["door"], 10,
                       "the new zone set retained on MQTT")
    commander.close()
