"""The MQTT topics under ``{DOGMON_MQTT_PREFIX}/{DOGMON_DEVICE_ID}/``: :data:`TOPICS`.

Owns each topic's direction, QoS, retain flag and payload (a named schema, text or JPEG bytes), as
:class:`~edge.transports.mqtt.MqttBridge`, the behaviour and media features and
:mod:`edge.transports.mqtt.commands` publish them. ``cmd/{command}`` is one topic per command.
"""

from __future__ import annotations

import dataclasses

from edge.protocol.errors import ERROR_CODES
from edge.protocol.schema import Schema, array, const, integer, nullable, number, obj, ref, string


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    leaf: str                 # after {prefix}/{device_id}/
    summary: str
    payload: Schema           # JSON Schema of the payload (for text and bytes: what it holds)
    qos: int
    retained: bool
    inbound: bool = False     # the device subscribes (commands)
    content_type: str = "application/json"


def _state() -> Schema:
    from edge.protocol.shapes import SHAPES

    state = SHAPES["State"]
    return {**state, "description": "the device state with its device id and time",
            "properties": {"device_id": string(), "ts": number(), **state["properties"]},
            "required": ["device_id", "ts", *state["required"]]}


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("info", "who the device is, for the other devices of the home (with DOGMON_HOME_SECRET): re-sent on "
              "connect and hourly; `sig` is the HMAC-SHA256 (hex) of the other fields' sorted-key JSON", obj({
                  "device_id": string(), "name": string("DOGMON_DEVICE_NAME"), "version": string(),
                  "urls": array(string(), "its own base URLs"), "ts": number(), "sig": string()},
                  closed=False), 1, True),
    TopicSpec("availability", "online / offline; also the last will, and `offline` on clean shutdown",
              string("online or offline", enum=("online", "offline")), 1, True, content_type="text/plain"),
    TopicSpec("events", "every event envelope, in seq order, from the outbox (deduplicate on seq)",
              ref("Event"), 1, False),
    TopicSpec("overlay", "overlays, each type at most DOGMON_MQTT_OVERLAY_HZ per second", ref("Overlay"), 0, False),
    TopicSpec("telemetry", "the newest telemetry envelope", ref("Telemetry"), 0, True),
    TopicSpec("state", "the device state, re-sent on every change", _state(), 1, True),
    TopicSpec("zones", "the zones overlay envelope (re-sent on change and reconnect)", ref("Overlay_zones"), 1, True),
    TopicSpec("analytics", "the newest analytics envelope (today's figures)", ref("Analytics"), 1, True),
    TopicSpec("diary", "the diary of the last finished day (sent once after midnight)", ref("Diary"), 1, True),
    TopicSpec("heatmap", "the newest heatmap overlay envelope", ref("Overlay_heatmap"), 1, True),
    TopicSpec("snapshot", "the newest clean snapshot as JPEG bytes (Home Assistant image entity)",
              {"type": "string", "format": "binary", "description": "JPEG bytes"}, 1, True,
              content_type="image/jpeg"),
    TopicSpec("ha_event", "each dog event, flattened for Home Assistant's event entity", obj({
        "event_type": string("a dog event type"), "seq": nullable(integer()), "ts": number()},
        "the event's scalar data fields follow", closed=False), 1, False),
    TopicSpec("cmd/{command}", "a command (never retained); its fields as a JSON object, or an empty payload",
              {"type": "object", "description": "the command's fields, `id` to match the answer"}, 1, False,
              inbound=True),
    TopicSpec("cmd/result", "one answer per command", {"description": "ok with the result, or the error", "oneOf": [
        obj({"id": {"description": "the request's id"}, "command": string(), "device_id": string(), "ts": number(),
             "ok": const(True), "result": {"type": "object", "description": "the reply's fields"}}),
        obj({"id": {"description": "the request's id"}, "command": string(), "device_id": string(), "ts": number(),
             "ok": const(False), "error": obj({"code": string(enum=tuple(ERROR_CODES)), "message": string()})}),
    ]}, 1, False),
)


TOPIC_BY_LEAF: dict[str, TopicSpec] = {t.leaf: t for t in TOPICS}


def topic_of(leaf: str) -> TopicSpec | None:
    """The declaration of a topic leaf as seen on the wire (``cmd/snapshot`` is ``cmd/{command}``)."""
    if leaf.startswith("cmd/") and leaf != "cmd/result":
        return TOPIC_BY_LEAF["cmd/{command}"]
    return TOPIC_BY_LEAF.get(leaf)
