"""Home Assistant discovery: the configs as data, their templates rendered as HA renders them, and a
real device on a real mosquitto seen through an HA-style subscriber (plus commands over MQTT)."""

from __future__ import annotations

import datetime
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
# The two Home Assistant template functions the configs use, as HA defines them (aware local time, epoch float).
ENV.globals.update(now=lambda: datetime.datetime.now().astimezone(), as_timestamp=lambda t: t.timestamp())


def render(template: str, payload: bytes | str) -> str:
    """What HA's MQTT integration computes: the template over ``value`` and ``value_json``."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    return ENV.from_string(template).render(value=text, value_json=orjson.loads(text)).strip()


def render_command(template: str, value: str) -> str:
    """What HA's MQTT button publishes: its ``command_template`` over ``value`` (the ``payload_press``)."""
    return ENV.from_string(template).render(value=value).strip()


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
    assert len(diagnostics) == 5 and {c["expire_after"] for c in diagnostics} == {60}
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


def test_posture_enum_renders_known_postures_and_home_assistants_unknown_otherwise() -> None:
    config = ha.discovery(INFO, posture_options=["sit", "stand", "lie", "unknown"])[
        "homeassistant/sensor/dogmonitor_kitchen/posture/config"]
    # HA 2024.3 drops an ``options`` key from a sensor config; the options travel as the state attribute
    assert config["device_class"] == "enum" and "options" not in config
    assert ha.validate("homeassistant/sensor/dogmonitor_kitchen/posture/config", config) == []
    state = DeviceState()
    walking = state_payload(state, posture="unknown", posture_since=None, posture_source=None)
    attributes = orjson.loads(render(config["json_attributes_template"], walking))
    assert attributes == {"options": ["sit", "stand", "lie"], "since": None, "source": None}
    assert render(config["value_template"], state_payload(state, posture="lie")) == "lie"
    # HA's own "unknown" (the text of that state), never "None", which HA 2024.3 would show as it is
    assert render(config["value_template"], walking) == "unknown"
    assert render(config["value_template"], state_payload(state, posture="jump")) == "unknown"
    assert render(config["value_template"], state_payload(state)) == "unknown"
    assert render(config["value_template"], state_payload(state, posture=None)) == "unknown"
    sitting = state_payload(state, posture="sit", posture_since=1700000000.5, posture_source="pose")
    assert render(config["value_template"], sitting) == "sit"
    assert orjson.loads(render(config["json_attributes_template"], sitting))["since"] == 1700000000.5


def test_diagnostic_templates_read_the_telemetry_envelope() -> None:
    configs = ha.diagnostic_entities(INFO, {"cpu_temperature"})
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


def test_cpu_temperature_is_announced_only_for_a_device_that_reports_one() -> None:
    bare = {t.split("/")[3] for t in ha.discovery(INFO)}
    assert "cpu_temperature" not in bare and "cpu_percent" in bare
    with_sensor = ha.discovery(INFO, optional_diagnostics={"cpu_temperature"})
    assert "homeassistant/sensor/dogmonitor_kitchen/cpu_temperature/config" in with_sensor
    assert ha.reported_optional({"cpu_percent": 3.0, "cpu_temperature_c": None}) == set()
    assert ha.reported_optional({"cpu_percent": 3.0}) == set()
    assert ha.reported_optional({"cpu_temperature_c": 48.5}) == {"cpu_temperature"}
    assert ha.diagnostic_topics(INFO, ha.OPTIONAL_DIAGNOSTICS) == {
        "homeassistant/sensor/dogmonitor_kitchen/cpu_temperature/config"}


def test_zone_names_differing_only_in_punctuation_get_an_entity_each() -> None:
    ids = ha.zone_object_ids(["Sofa bed", "Sofa-bed", "Zone", "---", "Food bowl"])
    assert len(set(ids.values())) == 5
    # the name spelled as its slug keeps today's id; the other gets a hash of its exact name
    assert ids["Sofa bed"] == "zone_sofa_bed" and ids["Zone"] == "zone_zone" and ids["Food bowl"] == "zone_food_bowl"
    assert ids["Sofa-bed"].startswith("zone_sofa_bed_") and ids["---"].startswith("zone_zone_")
    assert ids["Sofa-bed"] == ha.zone_object_ids(["Sofa-bed", "Sofa bed"])["Sofa-bed"]  # stable, order-free
    assert ha.zone_object_ids(["Sofa-bed"]) == {"Sofa-bed": "zone_sofa_bed"}  # alone: today's id
    # two names both spelled as the slug: neither keeps the plain id
    twins = ha.zone_object_ids(["Sofa bed", "sofa bed", "SOFA-BED"])
    assert len(set(twins.values())) == 3 and "zone_sofa_bed" not in twins.values()
    # a name that looks like another's hashed id still gets an id of its own
    tricky = ha.zone_object_ids(["Sofa bed", "Sofa-bed", ids["Sofa-bed"].removeprefix("zone_")])
    assert len(set(tricky.values())) == 3
    configs = ha.discovery(INFO, zones=[(n, n) for n in ids])
    zone_configs = [c for t, c in configs.items() if "/zone_" in t]
    assert len(zone_configs) == 5 and len({c["unique_id"] for c in zone_configs}) == 5
    assert sorted(c["name"] for c in zone_configs) == sorted(f"{n} occupied" for n in ids)


def test_each_button_press_carries_its_own_id_and_last_command_shows_the_answer() -> None:
    configs = ha.discovery(INFO, commands={"snapshot", "bookmark"})
    snapshot = configs["homeassistant/button/dogmonitor_kitchen/snapshot/config"]
    first = orjson.loads(render_command(snapshot["command_template"], snapshot["payload_press"]))
    time.sleep(0.002)
    second = orjson.loads(render_command(snapshot["command_template"], snapshot["payload_press"]))
    assert first["id"].startswith("ha-snapshot-") and first["id"] != second["id"] and set(first) == {"id"}
    last = configs["homeassistant/sensor/dogmonitor_kitchen/last_command/config"]
    assert last["state_topic"] == "dogmonitor/kitchen/cmd/result" and ha.validate(
        "homeassistant/sensor/dogmonitor_kitchen/last_command/config", last) == []
    ok = orjson.dumps({"id": first["id"], "command": "snapshot", "ok": True, "result": {"file": "x.jpg"}})
    refused = orjson.dumps({"id": second["id"], "command": "snapshot", "ok": False,
                            "error": {"code": "cooldown", "message": "at most one snapshot per 1 s"}})
    assert render(last["value_template"], ok) == "ok"
    assert render(last["value_template"], refused) == "cooldown"
    assert orjson.loads(render(last["json_attributes_template"], refused)) == {
        "command": "snapshot", "id": second["id"], "message": "at most one snapshot per 1 s"}
    assert orjson.loads(render(last["json_attributes_template"], ok))["message"] is None
    # no buttons, no sensor about their answers
    assert not any("last_command" in t for t in ha.discovery(INFO, commands={"ping"}))
