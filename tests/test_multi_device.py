"""Several devices on one broker: two real device processes with different ids, and what happens when a
second client takes a device's client id (the broker's kick loop, detected and logged)."""

from __future__ import annotations

import time
import urllib.request

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import MqttCollector

pytestmark = pytest.mark.e2e


def _retained_configs(sub: MqttCollector, node: str) -> dict[str, dict]:
    out = {}
    for topic, payload, _ in sub.snapshot():
        if f"/{node}/" in topic and topic.endswith("/config") and payload:
            out[topic] = orjson.loads(payload)
    return out


def _health(device) -> dict:
    with urllib.request.urlopen(device.http_url + "/healthz", timeout=2) as response:
        return orjson.loads(response.read())


def test_two_devices_coexist_and_a_duplicate_client_id_is_detected(start_device, mosquitto, tmp_path) -> None:
    sub = MqttCollector(mosquitto.host, mosquitto.port, ["homeassistant/#", "dogmonitor/+/availability",
                                                         "dogmonitor/+/events", "dogmonitor/+/telemetry"])
    common = {"DOGMON_SOURCE": "demo", "DOGMON_MQTT_URL": mosquitto.url}
    kitchen = start_device({**common, "DOGMON_DEVICE_ID": "kitchen", "DOGMON_DATA_DIR": str(tmp_path / "kitchen")})
    garden = start_device({**common, "DOGMON_DEVICE_ID": "garden", "DOGMON_DATA_DIR": str(tmp_path / "garden")})
    sub.wait_for(lambda s: len(_retained_configs(s, "dogmonitor_kitchen")) >= 8
                 and len(_retained_configs(s, "dogmonitor_garden")) >= 8, 20, "both devices discovered")
    a, b = _retained_configs(sub, "dogmonitor_kitchen"), _retained_configs(sub, "dogmonitor_garden")
    assert not set(a) & set(b)
    assert not {c["unique_id"] for c in a.values()} & {c["unique_id"] for c in b.values()}
    assert {c["device"]["identifiers"][0] for c in a.values()} != {c["device"]["identifiers"][0] for c in b.values()}

    # Both see the dog, each on its own topics, with its own numbering.
    sub.wait_for(lambda s: {e["device_id"] for e in s.json_on("/events") if e["event_type"] == "dog_detected"}
                 == {"kitchen", "garden"}, 20, "dog_detected from both devices")
    sub.wait_for(lambda s: {t["device_id"] for t in s.json_on("/telemetry")} == {"kitchen", "garden"}, 10,
                 "telemetry from both")
    client_ids = {t["device_id"]: t["data"]["mqtt"]["client_id"] for t in sub.json_on("/telemetry")}
    assert client_ids == {"kitchen": "dogmonitor-kitchen", "garden": "dogmonitor-garden"}

    # Availability is per device: stopping the kitchen leaves the garden online.
    assert kitchen.stop() == 0
    sub.wait_for(lambda s: [p for t, p, _ in s.snapshot() if t == "dogmonitor/kitchen/availability"][-1:]
                 == [b"offline"], 10, "kitchen offline")
    assert [p for t, p, _ in sub.snapshot() if t == "dogmonitor/garden/availability"][-1] == b"online"
    assert _health(garden)["status"] == "ok"
    assert "probably used by another" not in garden.logs()

    # A copied device.env: another client connects with the garden's client id. The broker kicks the
    # older connection each time the other one (re)connects; the device says so clearly.
    rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dogmonitor-garden")
    rogue.reconnect_delay_set(1, 1)
    rogue.connect_async(mosquitto.host, mosquitto.port, keepalive=10)
    rogue.loop_start()
    try:
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and "probably used by another" not in garden.logs():
            time.sleep(0.25)
    finally:
        rogue.disconnect()
        rogue.loop_stop()
    logs = garden.logs()
    assert "MQTT client id 'dogmonitor-garden' is probably used by another device or process" in logs, logs[-3000:]
    assert "DOGMON_DEVICE_ID" in logs
    assert logs.count("is probably used by another") == 1  # said once, not on every reconnect
    sub.close()
