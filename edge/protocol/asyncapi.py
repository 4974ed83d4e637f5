"""The AsyncAPI 3.0 document of the device, built from the protocol definition: :func:`asyncapi_document`.

Two servers: the device itself (WebSocket ``/ws/ui``: messages both ways) and the MQTT broker (topics
under ``{prefix}/{device_id}/``). Operations are written from the device's side: it *sends* events,
overlays, telemetry … and *receives* commands, each with its reply. Every payload is a JSON Schema
under ``#/components/schemas``, shared with the OpenAPI document and the tests' outbound validator.
"""

from __future__ import annotations

from typing import Any

from edge import __version__
from edge.protocol.command_specs import COMMANDS
from edge.protocol.envelopes import LIVE_FRAME, command_message, message_schemas, schemas
from edge.protocol.schema import Schema, obj, ref
from edge.protocol.topics import TOPICS, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
WS_PATH = "/ws/ui"
VIDEO_PATH = "/ws/video"  # edge.transports.live.LIVE_PATH (protocol/ imports nothing from the device)
MQTT_BINDING = "0.2.0"
WS_BINDING = "0.1.0"


def _message(name: str, summary: str, payload: Schema, content_type: str = "application/json") -> dict[str, Any]:
    return {"name": name, "title": name.replace("_", " "), "summary": summary, "contentType": content_type,
            "payload": payload}


def _channel_ref(channel: str, message: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{message}"}


def _topic_id(topic: TopicSpec) -> str:
    return "mqtt_" + topic.leaf.replace("/", "_").replace("{", "").replace("}", "")


def _mqtt_command_payload(name: str) -> Schema:
    args = COMMANDS[name].args_schema()
    return {**args, "description": COMMANDS[name].summary,
            "properties": {"id": {"description": "echoed in cmd/result"},
                           "type": {"const": name, "description": "optional; must match the topic"},
                           **args["properties"]}}


def asyncapi_document(version: str = __version__) -> dict[str, Any]:
    """The whole document as a JSON-ready dict (``python -m edge.protocol`` prints it)."""
    outbound = message_schemas()
    messages: dict[str, Any] = {}
    for name, schema in outbound.items():
        messages[name] = _message(name, schema.get("description", ""), ref(name))
    for name in COMMANDS:
        messages[f"Command_{name}"] = _message(f"Command_{name}", COMMANDS[name].summary, command_message(name))
    mqtt_commands = [n for n, spec in COMMANDS.items() if "mqtt" in spec.transports]
    for name in mqtt_commands:
        messages[f"MqttCommand_{name}"] = _message(f"MqttCommand_{name}", COMMANDS[name].summary,
                                                   _mqtt_command_payload(name))
    for topic in TOPICS:
        if not topic.inbound:
            messages[_topic_id(topic)] = _message(_topic_id(topic), topic.summary, topic.payload, topic.content_type)

    channels: dict[str, Any] = {"ui": {
        "address": WS_PATH, "title": "tablet WebSocket",
        "description": "JSON text messages both ways. Connect with ?since=SEQ to resume after an event seq.",
        "servers": [{"$ref": "#/servers/device"}],
        "messages": {**{n: {"$ref": f"#/components/messages/{n}"} for n in outbound},
                     **{f"Command_{n}": {"$ref": f"#/components/messages/Command_{n}"} for n in COMMANDS}},
        "bindings": {"ws": {"method": "GET", "bindingVersion": WS_BINDING, "query": obj({
            "since": {"type": "string", "pattern": "^[0-9]+$", "description": "resume after this event seq"},
            "token": {"type": "string", "description": "DOGMON_WS_TOKEN (or send it as a Bearer header)"},
        }, optional=("since", "token"))}},
    }}
    messages["LiveFrame"] = _message("LiveFrame", LIVE_FRAME["description"], ref("LiveFrame"))
    messages["LiveJpeg"] = _message("LiveJpeg", "one live picture (binary message), newest only",
                                    {"type": "string", "format": "binary"}, "image/jpeg")
    channels["video"] = {
        "address": VIDEO_PATH, "title": "live view",
        "description": "Binary JPEG frames, newest only per viewer. With ?meta=1 each JPEG is preceded by a "
                       "LiveFrame text message giving its capture time (frame_ts) and size.",
        "servers": [{"$ref": "#/servers/device"}],
        "messages": {"LiveFrame": {"$ref": "#/components/messages/LiveFrame"},
                     "LiveJpeg": {"$ref": "#/components/messages/LiveJpeg"}},
        "bindings": {"ws": {"method": "GET", "bindingVersion": WS_BINDING, "query": obj({
            "meta": {"type": "string", "enum": ["1"], "description": "send a LiveFrame before each JPEG"},
            "token": {"type": "string", "description": "DOGMON_WS_TOKEN (or send it as a Bearer header)"},
        }, optional=("meta", "token"))}},
    }
    parameters = {"prefix": {"description": "DOGMON_MQTT_PREFIX", "default": "dogmonitor"},
                  "device_id": {"description": "DOGMON_DEVICE_ID"}}
    operations: dict[str, Any] = {"sendToTablet": {
        "action": "send", "channel": {"$ref": "#/channels/ui"}, "title": "messages the device sends on /ws/ui",
        "messages": [_channel_ref("ui", n) for n in outbound if not n.startswith("Reply_")]},
        "sendLiveView": {"action": "send", "channel": {"$ref": "#/channels/video"},
                         "title": "live pictures on /ws/video",
                         "messages": [_channel_ref("video", "LiveFrame"), _channel_ref("video", "LiveJpeg")]}}
    for name, spec in COMMANDS.items():
        operations[f"ws_{name}"] = {
            "action": "receive", "channel": {"$ref": "#/channels/ui"}, "summary": spec.summary,
            "messages": [_channel_ref("ui", f"Command_{name}")],
            "reply": {"channel": {"$ref": "#/channels/ui"},
                      "messages": [_channel_ref("ui", f"Reply_{name}"), _channel_ref("ui", "Error")]}}
    for topic in TOPICS:
        channel_id = _topic_id(topic)
        channel: dict[str, Any] = {
            "address": f"{{prefix}}/{{device_id}}/{topic.leaf}", "description": topic.summary,
            "servers": [{"$ref": "#/servers/broker"}], "parameters": dict(parameters)}
        binding = {"mqtt": {"qos": topic.qos, "retain": topic.retained, "bindingVersion": MQTT_BINDING}}
        if topic.inbound:
            channel["parameters"]["command"] = {"enum": mqtt_commands, "description": "the command's name"}
            channel["messages"] = {n: {"$ref": f"#/components/messages/MqttCommand_{n}"} for n in mqtt_commands}
            operations[channel_id] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel_id}"}, "summary": topic.summary,
                "messages": [_channel_ref(channel_id, n) for n in mqtt_commands], "bindings": binding,
                "reply": {"channel": {"$ref": "#/channels/mqtt_cmd_result"},
                          "messages": [_channel_ref("mqtt_cmd_result", "mqtt_cmd_result")]}}
        else:
            channel["messages"] = {channel_id: {"$ref": f"#/components/messages/{channel_id}"}}
            operations[channel_id] = {
                "action": "send", "channel": {"$ref": f"#/channels/{channel_id}"}, "summary": topic.summary,
                "messages": [_channel_ref(channel_id, channel_id)], "bindings": binding}
        channels[channel_id] = channel

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "dogmonitor device", "version": version,
                 "description": "Events, overlays, telemetry and commands of one dogmonitor camera device. "
                                "Every transport carries the same envelope: "
                                '{"v", "type", "event_type"?, "overlay_type"?, "device_id", "ts", "seq"?, "data"}.'},
        "defaultContentType": "application/json",
        "servers": {
            "device": {"host": "{host}:{port}", "protocol": "ws", "title": "the device (DOGMON_WS_HOST/PORT)",
                       "variables": {"host": {"default": "localhost"}, "port": {"default": "8765"}},
                       "security": [{"$ref": "#/components/securitySchemes/bearer"},
                                    {"$ref": "#/components/securitySchemes/queryToken"},
                                    {"$ref": "#/components/securitySchemes/session"}]},
            "broker": {"host": "{broker}", "protocol": "mqtt", "title": "the MQTT broker (DOGMON_MQTT_URL)",
                       "variables": {"broker": {"default": "localhost:1883"}}},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas(),
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer DOGMON_WS_TOKEN"},
                "queryToken": {"type": "httpApiKey", "in": "query", "name": "token",
                               "description": "?token=DOGMON_WS_TOKEN"},
                "session": {"type": "httpApiKey", "in": "cookie", "name": "dogmon_session",
                            "description": "the session cookie POST /api/login sets"},
            },
        },
    }
