"""The protocol definition and what is derived from it: AsyncAPI document, docs, validators, HA lists."""

from __future__ import annotations

import functools
import gzip
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from edge.core.commands import CommandError, validate_command
from edge.protocol.asyncapi import asyncapi_document
from edge.protocol.command_specs import COMMANDS
from edge.protocol.docs import protocol_markdown
from edge.protocol.envelopes import MESSAGES, OVERLAYS
from edge.protocol.events import EVENTS
from edge.protocol.messages import WIRE_TYPES, EventType, MessageType, OverlayType
from edge.transports.mqtt import ha
from tests import protocol_check

REPO = Path(__file__).resolve().parent.parent
ASYNCAPI_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json.gz"


@pytest.mark.e2e
def test_python_m_edge_protocol_prints_a_valid_asyncapi_3_document() -> None:
    printed = subprocess.run([sys.executable, "-m", "edge.protocol"], cwd=REPO, capture_output=True, check=True)
    document = json.loads(printed.stdout)
    assert document == json.loads(orjson.dumps(asyncapi_document()))
    official = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in jsonschema.Draft7Validator(official).iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.unit
def test_every_reference_in_the_document_resolves() -> None:
    document = json.loads(orjson.dumps(asyncapi_document()))
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert len(refs) > 100
    for pointer in set(refs):
        node: object = document
        for part in pointer.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"{pointer} does not resolve"
            node = node[part]


@pytest.mark.unit
def test_every_public_name_is_declared_exactly_once() -> None:
    assert set(EVENTS) == {str(t) for t in EventType}
    assert set(MESSAGES) == {str(t) for t in WIRE_TYPES}  # RETAINED never leaves the device as such
    assert set(OVERLAYS) == {str(t) for t in OverlayType}
    document = asyncapi_document()
    schemas = document["components"]["schemas"]
    assert {f"Event_{t}" for t in EventType} <= schemas.keys()
    assert {f"Reply_{c}" for c in COMMANDS} <= schemas.keys()
    mqtt = {c["address"].split("/", 2)[2] for c in document["channels"].values()
            if c["address"] not in ("/ws/ui", "/ws/video")}
    assert mqtt == {"availability", "events", "overlay", "telemetry", "state", "zones", "analytics", "heatmap",
                    "diary", "snapshot", "ha_event", "cmd/{command}", "cmd/result", "info"}


@pytest.mark.unit
def test_home_assistant_event_lists_come_from_the_definition() -> None:
    # The names Home Assistant automations were written against: derived now, they must not change.
    assert ha.DOG_EVENT_TYPES == ("dog_detected", "dog_left", "sit", "stand", "lie", "zone_enter", "zone_exit",
                                  "zone_dwell", "fetch_return", "bark", "continuous_barking", "howl", "whimper",
                                  "unusual_activity")
    assert ha.PRESENCE_EVENT_TYPES == ("dog_detected", "dog_left")
    assert all(EVENTS[t].dog for t in ha.DOG_EVENT_TYPES)
    assert not {"camera_offline", "broker_online", "error", "test", "snapshot_saved"} & set(ha.DOG_EVENT_TYPES)


@pytest.mark.unit
def test_docs_protocol_md_is_generated_from_the_definition() -> None:
    path = REPO / "docs" / "protocol.md"
    assert path.is_file(), "docs/protocol.md is missing: python -m edge.protocol --docs > docs/protocol.md"
    assert path.read_text() == protocol_markdown(), \
        "docs/protocol.md is out of date: run python -m edge.protocol --docs > docs/protocol.md"
    text = path.read_text()
    for name in [*EVENTS, *COMMANDS, "cmd/result", "invalid_zones"]:
        assert f"`{name}`" in text


# --- the inbound validators and the published argument schemas say the same thing ---

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False) | st.text(max_size=45)
json_values = (scalars | st.lists(scalars, max_size=4)
               | st.dictionaries(st.text(max_size=10), scalars | st.lists(scalars, max_size=3), max_size=3)
               | st.lists(st.dictionaries(st.sampled_from(["name", "points", "x", "y", "roles"]),
                                          scalars | st.lists(st.lists(st.floats(0, 1), max_size=3), max_size=4)),
                          max_size=3))
FIELD_NAMES = sorted({a.name for spec in COMMANDS.values() for a in spec.args} | {"id"})
bodies = st.builds(lambda kind, fields: {"type": kind, **fields}, st.sampled_from(sorted(COMMANDS)),
                   st.dictionaries(st.sampled_from(FIELD_NAMES), json_values | st.integers(0, 1200), max_size=4))

# JSON Schema calls 5.0 an integer; the validators want integers written as integers.
STRICT = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=jsonschema.Draft7Validator.TYPE_CHECKER
                                      .redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool)))


@functools.cache
def published_command(name: str) -> jsonschema.Draft7Validator:
    """The inbound message schema of ``name`` as published (its $refs resolved inside the document)."""
    pointer = f"{protocol_check.BASE}#/components/messages/Command_{name}/payload"
    return STRICT({"$ref": pointer}, registry=protocol_check.registry())


# Checks richer than a schema can say: polygon geometry and unique names; calendar dates.
RICHER = {"set_zones", "get_analytics"}


@pytest.mark.unit
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
@example({"type": "set_zones", "id": "z", "zones": [
    {"name": "sofa", "points": [[0, 0], [1, 0], [1, 1]], "roles": ["return"], "color": "#aabbcc"},
    {"name": "mat", "points": [{"x": 0, "y": 0.5}, {"x": 0.5, "y": 0.5}, {"x": 0.5, "y": 1}],
     "dwell_alert_seconds": 60}]})
@example({"type": "set_zones", "zones": [{"name": "bow tie", "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}]})
@example({"type": "get_analytics", "day": "2026-11-26"})
@example({"type": "bookmark", "label": None, "id": None})
def test_validator_accepts_exactly_what_the_published_schema_allows(body: dict) -> None:
    schema_ok = published_command(body["type"]).is_valid(body)
    try:
        validate_command(body)
        accepted = True
    except CommandError as exc:
        accepted = False
        assert exc.code in ("invalid_field", "invalid_zones")
    if accepted:
        assert schema_ok, f"validator accepted what the schema refuses: {body}"
    elif body["type"] not in RICHER:
        assert not schema_ok, f"schema allows what the validator refuses: {body}"


@pytest.mark.unit
def test_validation_messages_name_the_field() -> None:
    cases = {
        b'{"type": "get_events", "limit": 0}': "'limit' must be an integer from 1 to 1000",
        b'{"type": "get_events", "from_ts": "x"}': "'from_ts' must be a number (unix seconds)",
        b'{"type": "get_events", "event_types": "sit"}': "'event_types' must be a list of up to 32 event type names",
        b'{"type": "list_media", "kind": "x"}':
            "'kind' must be snapshot, snapshot_overlay, snapshot_thumb, clip, clip_poster, highlights or timelapse",
        b'{"type": "bookmark", "label": 5}': "'label' must be a string of at most 100 characters",
        b'{"type": "emit_test_event", "data": []}': "'data' must be an object",
        b'{"type": "get_analytics", "day": "2026-02-30"}': "'day' must be a date as YYYY-MM-DD (device local time)",
    }
    for raw, message in cases.items():
        with pytest.raises(CommandError) as caught:
            validate_command(orjson.loads(raw))
        assert (caught.value.code, caught.value.message) == ("invalid_field", message)


# --- the outbound checker the end-to-end tests use ---

def envelope(**fields: object) -> dict:
    return {"v": 1, "device_id": "d", "ts": 1.0, **fields}


GOOD_DETECTED = envelope(type="event", event_type="dog_detected", seq=3, data={
    "track_id": 1, "confidence": 0.8, "frame": {"w": 640, "h": 480},
    "box": {"x": 1, "y": 2, "w": 3, "h": 4, "label": "dog", "confidence": 0.8, "track_id": 1}})


@pytest.mark.unit
def test_outbound_checker_accepts_real_shapes_and_names_what_is_wrong() -> None:
    protocol_check.check_ws(orjson.dumps(GOOD_DETECTED))
    drifted = {**GOOD_DETECTED, "data": {**GOOD_DETECTED["data"], "trackid": 2}}
    with pytest.raises(AssertionError, match="Event_dog_detected") as caught:
        protocol_check.check_ws(orjson.dumps(drifted))
    assert "trackid" in str(caught.value)
    protocol_check.check_ws(orjson.dumps({k: v for k, v in GOOD_DETECTED.items() if k != "seq"}))  # not stored
    with pytest.raises(AssertionError, match="less than the minimum"):
        protocol_check.check_ws(orjson.dumps({**GOOD_DETECTED, "seq": 0}))
    with pytest.raises(AssertionError, match="invented"):
        protocol_check.check_ws(orjson.dumps(envelope(type="error", data={"code": "invented", "message": "m"})))
    with pytest.raises(AssertionError, match="no declared type"):
        protocol_check.check_ws(orjson.dumps(envelope(type="news", data={})))
    assert len(protocol_check.take_violations()) == 4  # each was also recorded for the autouse fixture


@pytest.mark.unit
def test_outbound_checker_on_mqtt_checks_device_topics_only() -> None:
    base = "dogmonitor/d"
    protocol_check.check_mqtt(f"{base}/events", orjson.dumps(GOOD_DETECTED))
    protocol_check.check_mqtt(f"{base}/availability", b"online")
    protocol_check.check_mqtt(f"{base}/snapshot", b"\xff\xd8\xff\xe0jpeg")
    protocol_check.check_mqtt(f"{base}/cmd/set_zones", b"{not json")          # sent to the device, not by it
    protocol_check.check_mqtt("homeassistant/sensor/dogmonitor_d/cpu/config", b"{}")
    protocol_check.check_mqtt(f"{base}/state", b"")                           # a retained message cleared
    assert protocol_check.take_violations() == []
    protocol_check.check_mqtt(f"{base}/availability", b"maybe")
    protocol_check.check_mqtt(f"{base}/state", orjson.dumps({"device_id": "d", "ts": 1, "presence": True}))
    protocol_check.check_mqtt(f"{base}/cmd/result", orjson.dumps({"id": 1, "command": "ping", "ok": True}))
    found = protocol_check.take_violations()
    assert len(found) == 3 and "availability" in found[0] and "state" in found[1] and "cmd/result" in found[2]


# --- OpenAPI for the REST routes (wired by the REST server) ---

SAMPLE_ROUTES = [
    ("GET", "/api/state", "get_state", "none"), ("GET", "/api/events", "get_events", "query"),
    ("GET", "/api/zones", "get_zones", "none"), ("PUT", "/api/zones", "set_zones", "body"),
    ("GET", "/api/analytics", "get_analytics", "query"), ("GET", "/api/heatmap", "get_heatmap", "none"),
    ("GET", "/api/media", "list_media", "query"), ("POST", "/api/snapshot", "snapshot", "none"),
    ("POST", "/api/bookmark", "bookmark", "body"),
]
OPENAPI_SCHEMA = Path(__file__).parent / "data" / "openapi-3.1.schema.json.gz"


@pytest.mark.unit
def test_openapi_document_of_sample_routes_is_valid_openapi_3_1() -> None:
    from edge.protocol.openapi import openapi_document

    document = json.loads(orjson.dumps(openapi_document(SAMPLE_ROUTES)))
    official = json.loads(gzip.decompress(OPENAPI_SCHEMA.read_bytes()))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in jsonschema.Draft202012Validator(official).iter_errors(document)]
    assert errors == []
    events = document["paths"]["/api/events"]["get"]
    assert [p["name"] for p in events["parameters"]] == [a.name for a in COMMANDS["get_events"].args]
    assert all(p["in"] == "query" for p in events["parameters"])
    limit = next(p for p in events["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 100)
    zones = document["paths"]["/api/zones"]["put"]["requestBody"]
    assert zones["required"] is True
    assert zones["content"]["application/json"]["schema"]["required"] == ["zones"]
    snapshot = document["paths"]["/api/snapshot"]["post"]["responses"]
    assert {"200", "503", "504", "507"} <= snapshot.keys()
    assert "get" in document["paths"]["/api/zones"] and "put" in document["paths"]["/api/zones"]


@pytest.mark.unit
def test_openapi_responses_are_the_schemas_replies_are_checked_against() -> None:
    from edge.protocol.openapi import openapi_document

    document = openapi_document(SAMPLE_ROUTES)
    answer = {"zones": [{"name": "sofa", "points": [[0, 0], [1, 0], [1, 1]], "dwell_alert_seconds": None,
                         "roles": [], "occupied": True, "since": 12.5}]}
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(document, DRAFT202012))
    response = jsonschema.Draft202012Validator(
        {"$ref": "urn:openapi#/paths/~1api~1zones/get/responses/200/content/application~1json/schema"},
        registry=registry)
    response.validate(answer)
    with pytest.raises(jsonschema.ValidationError):
        response.validate({"zones": [{"name": "sofa"}]})
    with pytest.raises(ValueError, match="no command"):
        openapi_document([("GET", "/api/reboot", "reboot", "none")])
    with pytest.raises(ValueError, match="source"):
        openapi_document([("GET", "/api/state", "get_state", "cookie")])


@pytest.mark.unit
def test_get_events_and_get_state_replies_match_the_schema() -> None:
    # The end-to-end suites do not ask for these; run the device's own handlers on a real bus and store.
    from edge.core.device_commands import DeviceCommands
    from edge.protocol import messages
    from tests.test_inbound_fuzz import make_hub

    hub, loop = make_hub()
    hub.bus.publish(messages.event("dog_left", {"last_track_id": 1, "present_seconds": 3.0, "absent_seconds": 10.0}))
    hub.bus.publish(messages.event("broker_online", {"broker": "127.0.0.1:1883"}))
    DeviceCommands(hub.bus, hub.bus.store, test_events=False).register()
    for body in ({"type": "get_events", "id": "e"}, {"type": "get_state", "id": 2}):
        answer = loop.run_until_complete(hub.handle_raw(orjson.dumps(body), None))
        assert answer.type is MessageType.REPLY
        protocol_check.check_ws(messages.encode(answer, "d"))
    assert protocol_check.take_violations() == []
