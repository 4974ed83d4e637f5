"""Home Assistant discovery end to end: a real device on a real mosquitto seen by an HA-style subscriber,
entity states rendered as HA renders them, and commands over MQTT."""

from __future__ import annotations

from typing import Any

import orjson
import paho.mqtt.publish as mqtt_publish
import pytest

from edge.transports.mqtt import ha
from tests.helpers import MqttCollector
from tests.test_ha_discovery import render, render_command

pytestmark = pytest.mark.e2e

# --- end to end: a real device, a real broker, an HA-style subscriber ---

def _configs(sub: MqttCollector, node: str) -> dict[str, bytes]:
    """The latest payload per config topic of one node (an empty payload means removed)."""
    latest: dict[str, bytes] = {}
    for topic, payload, _ in sub.snapshot():
        if topic.startswith("homeassistant/") and f"/{node}/" in topic and topic.endswith("/config"):
            latest[topic] = payload
    return latest


def _latest(sub: MqttCollector, topic: str) -> bytes | None:
    hits = [p for t, p, _ in sub.snapshot() if t == topic]
    return hits[-1] if hits else None


def _results(sub: MqttCollector) -> dict[Any, dict]:
    return {r["id"]: r for r in sub.json_on("/cmd/result")}


def test_home_assistant_sees_a_complete_device_whose_entities_follow_the_dog(start_device, mosquitto) -> None:
    # A stale retained command left on the broker must not run when the device connects.
    mqtt_publish.single("dogmonitor/testdog/cmd/emit_test_event", '{"id": "stale", "data": {"x": 1}}',
                        hostname=mosquitto.host, port=mosquitto.port, retain=True)
    # A CPU temperature entity announced earlier (another version, another machine's disk in this device).
    temperature_topic = "homeassistant/sensor/dogmonitor_testdog/cpu_temperature/config"
    mqtt_publish.single(temperature_topic, '{"name": "CPU temperature", "state_topic": "dogmonitor/testdog/telemetry"}',
                        hostname=mosquitto.host, port=mosquitto.port, retain=True)
    ha_view = MqttCollector(mosquitto.host, mosquitto.port, ["homeassistant/#", "dogmonitor/testdog/#"])
    device = start_device({"DOGMON_SOURCE": "demo", "DOGMON_MQTT_URL": mosquitto.url, "DOGMON_TEST_EVENTS": "1"})
    ha_view.wait_for(lambda s: any(e.get("event_type") == "dog_detected" for e in s.json_on("/ha_event")), 30,
                     "dog_detected on the HA event topic")
    configs = {t: orjson.loads(p) for t, p in _configs(ha_view, "dogmonitor_testdog").items() if p}
    assert len(configs) >= 8
    for topic, payload in configs.items():
        assert ha.validate(topic, payload) == [], topic
        assert payload["availability"][0]["topic"] == "dogmonitor/testdog/availability"
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    assert _latest(ha_view, "dogmonitor/testdog/availability") == b"online"

    # Entity states as HA computes them, against what the device itself reports.
    present = configs["homeassistant/binary_sensor/dogmonitor_testdog/dog_present/config"]
    ha_view.wait_for(lambda s: render(present["value_template"], _latest(s, present["state_topic"]) or b"{}")
                     == "ON", 10, "dog present ON")
    event_cfg = configs["homeassistant/event/dogmonitor_testdog/dog_event/config"]
    fired = ha_view.json_on("/ha_event")
    assert fired[0]["event_type"] in event_cfg["event_types"] and fired[0]["seq"] >= 1
    cpu = configs["homeassistant/sensor/dogmonitor_testdog/cpu_percent/config"]
    telemetry = orjson.loads(_latest(ha_view, cpu["state_topic"]))
    assert render(cpu["value_template"], orjson.dumps(telemetry)) == str(telemetry["data"]["cpu_percent"])
    fps = configs["homeassistant/sensor/dogmonitor_testdog/inference_fps/config"]
    assert float(render(fps["value_template"], orjson.dumps(telemetry))) \
        == telemetry["data"]["pipeline"]["inference_fps"]
    # A CPU temperature entity exactly when the machine has a sensor (this test VM has none): an entity
    # that would stay unknown forever is not announced, and one announced before is removed.
    has_sensor = telemetry["data"]["cpu_temperature_c"] is not None
    ha_view.wait_for(lambda s: bool(_configs(s, "dogmonitor_testdog").get(temperature_topic)) is has_sensor, 10,
                     f"CPU temperature entity {'announced' if has_sensor else 'removed'}")

    # Commands over MQTT: answered with the request id; malformed ones are refused and change nothing.
    def cmd(name: str, payload: str) -> None:
        mqtt_publish.single(f"dogmonitor/testdog/cmd/{name}", payload, hostname=mosquitto.host, port=mosquitto.port,
                            qos=1)

    cmd("get_state", '{"id": "s1"}')
    cmd("emit_test_event", '{"id": "bad", "data": "not an object"}')
    cmd("emit_test_event", '{"id": 7, "data": {"from": "ha"}}')
    cmd("get_state", "not json")
    cmd("no_such_command", '{"id": "u"}')
    cmd("ping", '{"id": "mismatch", "type": "get_state"}')
    ha_view.wait_for(lambda s: {"s1", "bad", 7, "u", "mismatch", "stale"} <= set(_results(s)), 10, "command results")
    results = _results(ha_view)
    assert results["s1"]["ok"] is True and results["s1"]["result"]["state"]["presence"] is True
    assert results["bad"]["ok"] is False and results["bad"]["error"]["code"] == "invalid_field"
    assert results[7]["ok"] is True and results[7]["command"] == "emit_test_event"
    assert results["u"]["error"]["code"] == "unknown_type"
    assert results["mismatch"]["error"]["code"] == "invalid_field"
    assert results["stale"]["error"]["code"] == "retained"
    assert any(r["ok"] is False and r["error"]["code"] == "invalid_json" and r["id"] is None
               for r in ha_view.json_on("/cmd/result"))
    ha_view.wait_for(lambda s: any(e.get("event_type") == "test" for e in s.json_on("/events")), 10, "test event")
    tests = [e for e in ha_view.json_on("/events") if e.get("event_type") == "test"]
    assert len(tests) == 1 and tests[0]["data"] == {"from": "ha", "origin": "mqtt"}
    assert tests[0]["seq"] == results[7]["result"]["seq"]

    # The posture stage is announced as an enum sensor whose state follows the device's.
    posture = configs["homeassistant/sensor/dogmonitor_testdog/posture/config"]
    state_now = orjson.loads(_latest(ha_view, "dogmonitor/testdog/state"))
    options = orjson.loads(render(posture["json_attributes_template"], orjson.dumps(state_now)))["options"]
    assert options == ["sit", "stand", "lie"]
    expected = state_now["posture"] if state_now.get("posture") in options else "unknown"
    assert render(posture["value_template"], orjson.dumps(state_now)) == expected

    # Zones drawn on a tablet (here: set over MQTT) become occupancy sensors, and vanish when deleted.
    room = '{"name": "Whole room", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}'
    door = '{"name": "Door", "points": [[0, 0], [0.05, 0], [0.05, 0.05]]}'
    cmd("set_zones", '{"id": "z1", "zones": [' + room + ", " + door + "]}")
    room_topic = "homeassistant/binary_sensor/dogmonitor_testdog/zone_whole_room/config"
    door_topic = "homeassistant/binary_sensor/dogmonitor_testdog/zone_door/config"
    ha_view.wait_for(lambda s: bool(_configs(s, "dogmonitor_testdog").get(door_topic)), 10, "zone entities")
    assert _results(ha_view)["z1"]["ok"] is True
    room_cfg = orjson.loads(_configs(ha_view, "dogmonitor_testdog")[room_topic])
    door_cfg = orjson.loads(_configs(ha_view, "dogmonitor_testdog")[door_topic])
    assert room_cfg["name"] == "Whole room occupied" and room_cfg["device_class"] == "occupancy"
    ha_view.wait_for(lambda s: render(room_cfg["value_template"], _latest(s, "dogmonitor/testdog/state")) == "ON",
                     15, "the dog inside the whole-room zone")
    assert render(door_cfg["value_template"], _latest(ha_view, "dogmonitor/testdog/state")) == "OFF"
    event_topic = "homeassistant/event/dogmonitor_testdog/dog_event/config"
    assert "zone_enter" in orjson.loads(_configs(ha_view, "dogmonitor_testdog")[event_topic])["event_types"]
    cmd("set_zones", '{"id": "z2", "zones": [' + room + "]}")
    ha_view.wait_for(lambda s: _configs(s, "dogmonitor_testdog").get(door_topic) == b"", 10, "door zone removed")
    assert _configs(ha_view, "dogmonitor_testdog")[room_topic] != b""

    # Names that differ only in punctuation are two zones, so two entities.
    sofa = '{"name": "Sofa bed", "points": [[0, 0], [0.5, 0], [0.5, 0.5]]}'
    sofa2 = '{"name": "Sofa-bed", "points": [[0.5, 0.5], [1, 0.5], [1, 1]]}'
    cmd("set_zones", '{"id": "z3", "zones": [' + sofa + ", " + sofa2 + "]}")

    def zone_names(s: MqttCollector) -> list[str]:
        return sorted(orjson.loads(p)["name"] for t, p in _configs(s, "dogmonitor_testdog").items()
                      if "/zone_" in t and p)

    ha_view.wait_for(lambda s: zone_names(s) == ["Sofa bed occupied", "Sofa-bed occupied"], 10, "two sofa zones")
    sofa_configs = [orjson.loads(p) for t, p in _configs(ha_view, "dogmonitor_testdog").items() if "/zone_" in t and p]
    assert len({c["unique_id"] for c in sofa_configs}) == 2

    # Every zone deleted: no zone entity, and the event entity no longer offers zone events.
    cmd("set_zones", '{"id": "z4", "zones": []}')
    ha_view.wait_for(lambda s: zone_names(s) == [] and "zone_enter" not in orjson.loads(
        _configs(s, "dogmonitor_testdog")[event_topic])["event_types"], 10, "zone entities and event types gone")
    assert _results(ha_view)["z4"]["ok"] is True

    # Buttons exist for the device's one-press commands; pressing one (as HA does) runs the command.
    # Pressed twice at once: each press has its own id, and the refused one shows in "Last command".
    snapshot = configs["homeassistant/button/dogmonitor_testdog/snapshot/config"]
    assert "homeassistant/button/dogmonitor_testdog/bookmark/config" in configs
    presses = [render_command(snapshot["command_template"], snapshot["payload_press"]) for _ in range(2)]
    ids = [orjson.loads(p)["id"] for p in presses]
    assert ids[0] != ids[1]
    for press in presses:
        mqtt_publish.single(snapshot["command_topic"], press, hostname=mosquitto.host, port=mosquitto.port, qos=1)
    ha_view.wait_for(lambda s: set(ids) <= set(_results(s)), 15, "both snapshot presses answered")
    answers = [_results(ha_view)[i] for i in ids]
    assert answers[0]["ok"] is True, answers[0]
    assert answers[1]["ok"] is False and answers[1]["error"]["code"] == "cooldown", answers[1]
    last = configs["homeassistant/sensor/dogmonitor_testdog/last_command/config"]
    newest = _latest(ha_view, last["state_topic"]) or b"{}"
    shown = orjson.loads(newest)["id"]
    assert render(last["value_template"], newest) == ("cooldown" if shown == ids[1] else "ok")
    refused = orjson.dumps(answers[1])
    assert render(last["value_template"], refused) == "cooldown"
    assert orjson.loads(render(last["json_attributes_template"], refused))["id"] == ids[1]

    # Home Assistant restarts: it says "online" and gets the configs again after a short random delay.
    before = len([1 for t, _, _ in ha_view.snapshot() if t.endswith("dog_present/config")])
    mqtt_publish.single("homeassistant/status", "online", hostname=mosquitto.host, port=mosquitto.port)
    ha_view.wait_for(lambda s: len([1 for t, _, _ in s.snapshot() if t.endswith("dog_present/config")]) > before,
                     6, "discovery re-sent after homeassistant/status online")
    ha_view.close()
    assert "Traceback" not in device.logs()


def test_unique_ids_survive_a_restart_and_discovery_off_removes_the_entities(start_device, mosquitto) -> None:
    env = {"DOGMON_SOURCE": "demo", "DOGMON_MQTT_URL": mosquitto.url}
    first = MqttCollector(mosquitto.host, mosquitto.port, "homeassistant/#")
    device = start_device(env)
    first.wait_for(lambda s: len(_configs(s, "dogmonitor_testdog")) >= 8, 15, "discovery")
    ids_before = {t: orjson.loads(p)["unique_id"] for t, p in _configs(first, "dogmonitor_testdog").items()}
    device.stop()
    first.close()

    second = MqttCollector(mosquitto.host, mosquitto.port, "homeassistant/#")
    again = start_device(env)
    second.wait_for(lambda s: any(not r for t, p, r in s.snapshot() if t.endswith("dog_present/config")), 15,
                    "discovery after restart")
    ids_after = {t: orjson.loads(p)["unique_id"] for t, p in _configs(second, "dogmonitor_testdog").items() if p}
    assert ids_after == ids_before
    again.stop()
    second.close()

    third = MqttCollector(mosquitto.host, mosquitto.port, "homeassistant/#")
    start_device({**env, "DOGMON_HA_DISCOVERY": "0"})
    third.wait_for(lambda s: _configs(s, "dogmonitor_testdog")
                   and all(p == b"" for p in _configs(s, "dogmonitor_testdog").values()), 10, "entities removed")
    third.close()
    # A fresh HA connecting now finds no retained config for this device at all.
    late = MqttCollector(mosquitto.host, mosquitto.port, ["homeassistant/#", "test/marker"])
    late.client.publish("test/marker", b"x", qos=1)  # retained configs come on subscribe, before this marker
    late.wait_for(lambda s: any(t == "test/marker" for t, _, _ in s.snapshot()), 10, "the marker")
    assert _configs(late, "dogmonitor_testdog") == {}
    late.close()
