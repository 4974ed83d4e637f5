"""Home Assistant discovery: the configs as data, their templates rendered as HA renders them, and a
real device on a real mosquitto seen through an HA-style subscriber (plus commands over MQTT)."""

from __future__ import annotations

import time
from typing import Any

import jinja2
import orjson
import pytest

from edge.core.state import DeviceState
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.transports.mqtt import ha

pytestmark = pytest.mark.unit

INFO = ha.DeviceInfo(device_id="kitchen", mqtt_prefix="dogmonitor", ha_prefix="homeassistant", sw_version="0.1.0",
                     configuration_url="http://192.0.2.5:8765/healthz", telemetry_interval=5)
ENV = jinja2.Environment()


def render(template: str, payload: bytes | str) -> str:
    """What HA's MQTT integration computes: the template over ``value`` and ``value_json``."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    return ENV.from_string(template).render(value=text, value_json=orjson.loads(text)).strip()


def state_payload(state: DeviceState, **extra: Any) -> bytes:
    """The retained ``state`` topic exactly as MqttBridge builds it."""
    return orjson.dumps({"device_id": "kitchen", "ts": time.time(), **state.snapshot(), **extra})


# --- pure: the configs ---

def test_full_discovery_is_valid_unique_and_stable() -> None:
    configs = ha.discovery(INFO, posture_options=["sit", "stand", "lie"], zones=[("Sofa", "Sofa"), ("Bowl", "Bowl")],
                           commands={"ping", "snapshot", "bookmark", "get_state"}, event_types=ha.DOG_EVENT_TYPES)
    problems = [p for topic, payload in configs.items() for p in ha.validate(topic, payload)]
    assert problems == []
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids)) == len(configs)
    assert all(t.startswith("homeassistant/") and t.endswith("/dogmonitor_kitchen/" + t.split("/")[3] + "/config")
               for t in configs)
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {"dogmonitor_kitchen"}
    device = next(iter(configs.values()))["device"]
    assert device["configuration_url"] == "http://192.0.2.5:8765/healthz" and device["sw_version"] == "0.1.0"
    assert all(c["availability"][0]["topic"] == "dogmonitor/kitchen/availability" for c in configs.values())
    # buttons only for the commands that exist and make sense as a press
    # with the media feature on, the newest snapshot is an MQTT image entity reading the retained JPEG
    image = configs["homeassistant/image/dogmonitor_kitchen/latest_snapshot/config"]
    assert image["image_topic"] == "dogmonitor/kitchen/snapshot" and image["content_type"] == "image/jpeg"
    buttons = {t.split("/")[3] for t in configs if t.split("/")[1] == "button"}
    assert buttons == {"snapshot", "bookmark"}
    assert configs["homeassistant/button/dogmonitor_kitchen/snapshot/config"]["command_topic"] == \
        "dogmonitor/kitchen/cmd/snapshot"
    # diagnostics go unavailable when telemetry stops (three periods, at least a minute)
    diagnostics = [c for c in configs.values() if c.get("entity_category") == "diagnostic"]
    assert len(diagnostics) == 6 and {c["expire_after"] for c in diagnostics} == {60}
    # the same inputs give the same configs: unique ids survive a restart
    again = ha.discovery(INFO, posture_options=["sit", "stand", "lie"], zones=[("Sofa", "Sofa"), ("Bowl", "Bowl")],
                         commands={"ping", "snapshot", "bookmark", "get_state"}, event_types=ha.DOG_EVENT_TYPES)
    assert again == configs


def test_optional_entities_appear_only_with_their_features_and_vanish_with_them() -> None:
    bare = ha.discovery(INFO)
    kinds = sorted(t.split("/", 2)[1] + "/" + t.split("/")[3] for t in bare)
    assert "binary_sensor/dog_present" in kinds and "event/dog_event" in kinds
    assert not any("posture" in k or "zone_" in k or k.startswith("button/") for k in kinds)
    with_zones = ha.discovery(INFO, zones=[("Sofa", "Sofa"), ("Food bowl", "Food bowl")])
    assert "homeassistant/binary_sensor/dogmonitor_kitchen/zone_food_bowl/config" in with_zones
    one_zone = ha.discovery(INFO, zones=[("Sofa", "Sofa")])
    assert ha.removals(set(with_zones), one_zone) == ["homeassistant/binary_sensor/dogmonitor_kitchen/zone_food_bowl/"
                                                      "config"]
    assert ha.removals(set(with_zones), {}) == sorted(with_zones)


def test_two_devices_share_no_topic_and_no_unique_id() -> None:
    other = ha.DeviceInfo(device_id="garden", mqtt_prefix="dogmonitor", ha_prefix="homeassistant", sw_version="0.1.0")
    a, b = ha.discovery(INFO), ha.discovery(other)
    assert not set(a) & set(b)
    assert not {c["unique_id"] for c in a.values()} & {c["unique_id"] for c in b.values()}
    assert not {c["state_topic"] for c in a.values()} & {c["state_topic"] for c in b.values()}


# --- pure: the templates, rendered like HA renders them, over the payloads the device really sends ---

def test_presence_and_zone_templates_follow_the_device_state() -> None:
    configs = ha.discovery(INFO, zones=[("Sofa", "Sofa"), ("Bowl \"north\"", "Bowl")])
    present = configs["homeassistant/binary_sensor/dogmonitor_kitchen/dog_present/config"]
    sofa = configs["homeassistant/binary_sensor/dogmonitor_kitchen/zone_sofa/config"]
    bowl = configs["homeassistant/binary_sensor/dogmonitor_kitchen/zone_bowl_north/config"]
    state = DeviceState()
    assert render(present["value_template"], state_payload(state)) == present["payload_off"]
    state.apply(messages.event(EventType.DOG_DETECTED, {"track_id": 1}))
    assert render(present["value_template"], state_payload(state)) == present["payload_on"]
    occupied = state_payload(state, zones_occupied=["Bowl \"north\""])
    assert render(sofa["value_template"], occupied) == "OFF"
    assert render(bowl["value_template"], occupied) == "ON"
    assert render(bowl["value_template"], state_payload(state)) == "OFF"  # before zones are known
    state.apply(messages.event(EventType.DOG_LEFT, {"track_id": 1}))
    assert render(present["value_template"], state_payload(state)) == "OFF"


def test_posture_enum_renders_known_postures_and_unknown_otherwise() -> None:
    config = ha.discovery(INFO, posture_options=["sit", "stand", "lie", "unknown"])[
        "homeassistant/sensor/dogmonitor_kitchen/posture/config"]
    assert config["device_class"] == "enum" and config["options"] == ["sit", "stand", "lie"]
    state = DeviceState()
    assert render(config["value_template"], state_payload(state, posture="lie")) == "lie"
    # HA's MQTT sensor maps the rendered "None" to unknown instead of rejecting an out-of-options value
    assert render(config["value_template"], state_payload(state, posture="jump")) == "None"
    assert render(config["value_template"], state_payload(state)) == "None"
    assert render(config["value_template"], state_payload(state, posture="unknown")) == "None"
    assert render(config["value_template"], state_payload(state, posture=None)) == "None"


def test_diagnostic_templates_read_the_telemetry_envelope() -> None:
    configs = ha.diagnostic_entities(INFO)
    data = {"cpu_percent": 41.5, "memory_percent": 63.2, "cpu_temperature_c": None,
            "pipeline": {"capture_fps": 10.0, "inference_fps": 9.7, "latency_ms": {"detect": {"p50": 48.2}}}}
    payload = messages.encode(messages.telemetry(data), "kitchen")
    got = {t.split("/")[3]: render(c["value_template"], payload) for t, c in configs.items()}
    assert got == {"cpu_temperature": "None", "cpu_percent": "41.5", "memory_percent": "63.2",
                   "capture_fps": "10.0", "inference_fps": "9.7", "inference_latency": "48.2"}
    # before the first frame there is no detect timing yet: unknown, not a template error
    early = messages.encode(messages.telemetry({**data, "pipeline": {"latency_ms": {}}}), "kitchen")
    assert render(configs["homeassistant/sensor/dogmonitor_kitchen/inference_latency/config"]["value_template"],
                  early) == "None"
