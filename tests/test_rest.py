"""The REST API under /api/ (issue 11): one command registry for REST, WebSocket and MQTT; test broadcasts;
the published OpenAPI and AsyncAPI documents. Against a whole device, real broker, real clients."""

from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import paho.mqtt.publish as mqtt_publish
import pytest

from edge.protocol.asyncapi import asyncapi_document
from edge.transports.rest import ROUTES
from tests.helpers import MqttCollector, ws_collect, ws_connect
from tests.media import compose_video

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUIET_MEDIA = {"DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": ""}
OPENAPI_SCHEMA = Path(__file__).parent / "data" / "openapi-3.1.schema.json.gz"
SOFA = [{"name": "sofa", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}]
BED = [{"name": "bed", "points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]}]


@pytest.fixture
def room_video(tmp_path: Path) -> Path:
    """An empty room: the camera runs, no dog, so only the test's own events are produced."""
    return compose_video(tmp_path / "room.mp4", [(None, 2.0)])


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    conn.request(method, path, body=data, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, orjson.loads(payload) if payload else None


def ws_call(ws: Any, command: dict[str, Any]) -> dict[str, Any]:
    ws.send(orjson.dumps(command))
    got = ws_collect(ws, lambda m: any(x["type"] in ("reply", "error") and x["data"].get("id") == command["id"]
                                       for x in m), timeout=15)
    answer = next(x for x in got if x["type"] in ("reply", "error") and x["data"].get("id") == command["id"])
    data = {k: v for k, v in answer["data"].items() if k not in ("id", "type")}
    return {"ok": answer["type"] == "reply", **({"result": data} if answer["type"] == "reply" else {"error": data})}


def mqtt_call(broker: Any, results: MqttCollector, name: str, fields: dict[str, Any], request_id: str
              ) -> dict[str, Any]:
    mqtt_publish.single(f"dogmonitor/testdog/cmd/{name}", orjson.dumps({**fields, "id": request_id}),
                        hostname=broker.host, port=broker.port, qos=1)
    results.wait_for(lambda c: any(r.get("id") == request_id for r in c.json_on("/cmd/result")), 15, request_id)
    answer = next(r for r in results.json_on("/cmd/result") if r.get("id") == request_id)
    return {"ok": answer["ok"], **({"result": answer["result"]} if answer["ok"] else {"error": answer["error"]})}


def rest_call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    status, answer = call(port, method, path, body)
    return status, ({"ok": True, "result": answer} if status == 200 else {"ok": False, "error": answer["error"]})


def test_each_command_answers_the_same_over_rest_websocket_and_mqtt(start_device, mosquitto, room_video: Path
                                                                    ) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": TOKEN,
                           "DOGMON_MQTT_URL": mosquitto.url, "DOGMON_TEST_EVENTS": "1"})
    port = device.port
    results = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/cmd/result")
    # read your own writes (issue 15 item 10): GET right after PUT returns the new set, on every transport
    for zones in (SOFA, BED, SOFA):
        status, answer = call(port, "PUT", "/api/zones", {"zones": zones})
        assert status == 200 and [z["name"] for z in answer["zones"]] == [zones[0]["name"]]
        status, answer = call(port, "GET", "/api/zones")
        assert status == 200 and [z["name"] for z in answer["zones"]] == [zones[0]["name"]], answer
    # a stored event to list
    with ws_connect(device.ws_url, token=TOKEN) as ws:
        ws.recv(timeout=10)
        assert ws_call(ws, {"type": "emit_test_event", "id": "e1", "data": {"n": 1}})["ok"]
        cases: list[tuple[str, str, str, dict[str, Any], Any]] = [
            # (REST method, REST path, command, fields, REST body)
            ("GET", "/api/zones", "get_zones", {}, None),
            ("GET", "/api/events?since=0&limit=5&event_types=test", "get_events",
             {"since": 0, "limit": 5, "event_types": ["test"]}, None),
            ("GET", "/api/events?limit=0", "get_events", {"limit": 0}, None),
            ("GET", "/api/events?limit=ten", "get_events", {"limit": "ten"}, None),
            ("GET", "/api/events?event_types=test,sit&from_ts=1&to_ts=9999999999", "get_events",
             {"event_types": ["test", "sit"], "from_ts": 1, "to_ts": 9999999999}, None),
            ("GET", "/api/analytics?day=2026-01-01", "get_analytics", {"day": "2026-01-01"}, None),
            ("GET", "/api/analytics?day=yesterday", "get_analytics", {"day": "yesterday"}, None),
            ("GET", "/api/media?kind=clip&limit=3", "list_media", {"kind": "clip", "limit": 3}, None),
            ("GET", "/api/media?kind=photo", "list_media", {"kind": "photo"}, None),
            ("PUT", "/api/zones", "set_zones", {"zones": [{"name": "x", "points": [[0, 0], [1, 1]]}]},
             {"zones": [{"name": "x", "points": [[0, 0], [1, 1]]}]}),
        ]
        for i, (method, path, name, fields, body) in enumerate(cases):
            status, over_rest = rest_call(port, method, path, body)
            over_ws = ws_call(ws, {"type": name, "id": f"w{i}", **fields})
            over_mqtt = mqtt_call(mosquitto, results, name, fields, f"m{i}")
            if over_rest["ok"] and name == "get_events":  # last_seq moves on with the device's own events
                for answer in (over_rest, over_ws, over_mqtt):
                    answer["result"].pop("last_seq")
            # The WebSocket error also points at the zone at fault (the zone editor's hint); code and message
            # are the contract every transport shares.
            zone_hint = over_ws.get("error", {}).pop("zone", None)
            if name == "set_zones":
                assert zone_hint == {"index": 0, "field": "points"}, over_ws
            assert over_rest == over_ws == over_mqtt, (path, over_rest, over_ws, over_mqtt)
            assert status == (200 if over_rest["ok"] else 400), (path, status)
        refused = [rest_call(port, m, p, b)[1]["error"]["code"] for m, p, _, _, b in cases if "limit=0" in p]
        assert refused == ["invalid_field"]

        # state: the same device state on REST as in a WebSocket reply
        status, state = call(port, "GET", "/api/state")
        assert status == 200 and state["state"] == ws_call(ws, {"type": "get_state", "id": "s"})["result"]["state"]
        status, heatmap = call(port, "GET", "/api/heatmap")
        assert status == 200 and "heatmap" in heatmap

        # one status map: cooldown 429, too large 413, bad JSON 400, unknown path 404, no token 401
        status, first = call(port, "POST", "/api/bookmark", {"label": "rest"})
        assert status == 200 and first["label"] == "rest" and first["seq"] > 0
        status, again = call(port, "POST", "/api/bookmark", {"label": "again"})
        assert status == 429 and again["error"]["code"] == "cooldown", again
        status, answer = call(port, "PUT", "/api/zones", raw=b'{"zones": [' + b" " * 70000 + b"]}")
        assert status == 413 and answer["error"]["code"] == "too_large"
        status, answer = call(port, "PUT", "/api/zones", raw=b"{not json")
        assert status == 400 and answer["error"]["code"] == "invalid_json"
        status, answer = call(port, "POST", "/api/bookmark", {"label": 5})
        assert status == 400 and answer["error"]["code"] == "invalid_field" and "label" in answer["error"]["message"]
        assert call(port, "GET", "/api/nothing")[0] == 404
        assert call(port, "GET", "/api/state", headers={"Authorization": "Bearer wrong"})[0] == 401
        status, snap = call(port, "POST", "/api/snapshot")
        assert status == 200 and snap["media_id"].startswith("snap-") and snap["seq"] > 0, snap
        status, listed = call(port, "GET", "/api/media?kind=snapshot&limit=5")
        assert status == 200 and snap["media_id"] in [m["media_id"] for m in listed["media"]], listed
    results.close()


def test_test_broadcasts_reach_every_client_marked_test_and_count_nowhere(start_device, mosquitto,
                                                                          room_video: Path) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": TOKEN,
                           "DOGMON_MQTT_URL": mosquitto.url, "DOGMON_TEST_EVENTS": "1"})
    port = device.port
    mqtt_seen = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/#")
    _, before = call(port, "GET", "/api/state")
    _, events_before = call(port, "GET", "/api/events?limit=1000")
    with ws_connect(device.ws_url, token=TOKEN) as one, ws_connect(device.ws_url, token=TOKEN) as two:
        one.recv(timeout=10)
        two.recv(timeout=10)
        status, answer = call(port, "POST", "/api/events/broadcast",
                              {"event_type": "dog_detected", "data": {"track_id": 7, "score": 0.9}})
        assert status == 200 and answer == {"sent": True, "test": True, "clients": 2}
        assert call(port, "POST", "/api/events/broadcast/overlay",
                    {"overlay_type": "detection", "data": {"boxes": []}})[0] == 200
        assert call(port, "POST", "/api/events/broadcast/telemetry", {"data": {"cpu_percent": 1}})[0] == 200
        for ws in (one, two):
            got = ws_collect(ws, lambda m: {"event", "overlay", "telemetry"} <= {x["type"] for x in m if x.get("test")},
                             timeout=10)
            staged = [x for x in got if x.get("test")]
            event = next(x for x in staged if x["type"] == "event")
            assert event["event_type"] == "dog_detected" and event["data"] == {"track_id": 7, "score": 0.9}
            assert "seq" not in event and event["device_id"] == "testdog"
        status, refused = call(port, "POST", "/api/events/broadcast", {"event_type": "Bad Name!"})
        assert status == 400 and refused["error"]["code"] == "invalid_field"
        # A real event after the broadcasts: once it is on MQTT, anything published before it is there too.
        one.send(orjson.dumps({"type": "emit_test_event", "id": "marker", "data": {"marker": True}}))
        ws_collect(one, lambda m: any(x["type"] == "reply" and x["data"].get("id") == "marker" for x in m), timeout=10)
    mqtt_seen.wait_for(lambda s: any(e["data"].get("marker") for e in s.json_on("/events")), 15, "the marker event")
    _, after = call(port, "GET", "/api/state")
    assert after["state"]["presence"] is False and before["state"]["presence"] is False
    _, events_after = call(port, "GET", "/api/events?limit=1000")
    assert [e for e in events_after["events"] if e["event_type"] == "dog_detected"] == []
    # Start-up events (camera_online, broker_online) may still be committed while the test runs; the
    # broadcast must never be among what was stored.
    stored_before = {e["seq"] for e in events_before["events"]}
    new_events = [e for e in events_after["events"] if e["seq"] not in stored_before]
    assert all(e["event_type"] in {"camera_online", "broker_online"} or e["data"].get("marker")
               for e in new_events), new_events
    assert not [e for e in events_after["events"] if e["data"].get("track_id") == 7]
    assert not [p for t, p, _ in mqtt_seen.snapshot() if b'"test":true' in p or b"track_id\":7" in p]
    mqtt_seen.close()


def test_broadcasts_are_off_without_test_events_and_the_documents_are_published(start_device,
                                                                               room_video: Path) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": TOKEN})
    status, answer = call(device.port, "POST", "/api/events/broadcast", {"event_type": "sit"})
    assert status == 403 and answer["error"]["code"] == "disabled"
    # the documents need no token
    status, asyncapi = call(device.port, "GET", "/api/asyncapi.json", headers={"Authorization": ""})
    assert status == 200 and asyncapi == json.loads(orjson.dumps(asyncapi_document()))
    status, openapi = call(device.port, "GET", "/api/openapi.json", headers={"Authorization": ""})
    assert status == 200
    official = json.loads(gzip.decompress(OPENAPI_SCHEMA.read_bytes()))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}"
              for e in jsonschema.Draft202012Validator(official).iter_errors(openapi)]
    assert errors == []
    for route in ROUTES:
        assert route.method.lower() in openapi["paths"][route.path], route
    for path in ("/api/login", "/api/session", "/healthz", "/media/{media_id}", "/api/events/broadcast"):
        assert path in openapi["paths"], path
    assert openapi["paths"]["/api/snapshot"]["post"]["responses"]["429"]
    assert "Test_event" in asyncapi["components"]["schemas"]
