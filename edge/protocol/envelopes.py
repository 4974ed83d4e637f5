"""Every message type and overlay type, and the schema of each message as it goes on the wire.

Owns :data:`MESSAGES` (message type -> when it is sent and its ``data``), :data:`OVERLAYS`
(overlay type -> its ``data``) and :func:`message_schemas`, which builds the complete envelope schema
of every concrete message (``event`` per event type, ``overlay`` per overlay type, ``reply`` per
command …) from them, :mod:`.events` and :mod:`.command_specs`. Names come from
:mod:`edge.protocol.messages`; a type without an entry here is refused at import.
"""

from __future__ import annotations

import dataclasses

from edge.protocol.command_specs import COMMAND_ID_MAX_LENGTH, COMMANDS
from edge.protocol.errors import ERROR_CODES
from edge.protocol.events import EVENTS
from edge.protocol.messages import PROTOCOL_VERSION, WIRE_TYPES, OverlayType
from edge.protocol.schema import (
    Schema,
    any_value,
    array,
    boolean,
    const,
    integer,
    mapping,
    nullable,
    number,
    obj,
    ref,
    string,
)
from edge.protocol.zones import ZONE_FIELDS


@dataclasses.dataclass(frozen=True)
class PayloadSpec:
    name: str
    summary: str
    data: Schema


REQUEST_ID = {"oneOf": [{"type": "string", "maxLength": COMMAND_ID_MAX_LENGTH}, {"type": "integer"}],
              "description": "the request's id, echoed"}

# The capture time of the frame an overlay describes; /ws/video?meta=1 announces the same time before each
# JPEG, so a tablet draws each picture with the overlay of that frame (or the newest older one).
FRAME_TS = number("capture time of the frame described (unix s); matches the live view's frame_ts")

OVERLAYS: dict[str, PayloadSpec] = {spec.name: spec for spec in (
    PayloadSpec("detection", "every processed frame", obj({
        "frame": ref("Frame"), "frame_ts": FRAME_TS,
        "boxes": array(ref("Box"), "dogs (with track ids) and other objects"),
        "track_count": integer("confirmed dog tracks, coasting ones included")})),
    PayloadSpec("pose", "each pose-model run (only with a pose model; at most DOGMON_POSE_FPS per dog)", obj({
        "frame": ref("Frame"), "frame_ts": FRAME_TS, "model": string("pose model name"),
        "keypoint_names": array(string()),
        "skeleton": array(array(integer(), min_items=2, max_items=2), "keypoint index pairs"),
        "keypoint_threshold": number("keypoints below this confidence are not drawn"),
        "poses": array(obj({"track_id": integer(), "score": number(), "box": ref("Box"),
                            "keypoints": array(array(number(), min_items=3, max_items=3), "[x, y, confidence]")}))})),
    PayloadSpec("zones", "zones set, or an occupancy changed", obj({"zones": array(ref("ZoneView"))})),
    PayloadSpec("motion", "while something moves (at most 5 a second), and when motion stops or the scene is "
                "re-learned", obj({
                    "frame": ref("Frame"),
                    "boxes": array(obj({"x": integer(), "y": integer(), "w": integer(), "h": integer()}),
                                   "moving areas in source pixels"),
                    "fraction": number("share of the frame that changed"),
                    "relearned": boolean("a global change (light, exposure) re-learned the background"),
                    "detected": boolean("the detector ran on this frame"),
                    "reason": string("why the detector ran or was skipped"),
                    "region": nullable(obj({"x": integer(), "y": integer(), "w": integer(), "h": integer()},
                                           "the crop the detector ran on; null for the full frame"))})),
    PayloadSpec("heatmap", "every DOGMON_HEATMAP_INTERVAL s while the dog adds to it, and on get_heatmap",
                ref("Heatmap")),
)}

_telemetry_block = {"type": ["object", "null"]}
TELEMETRY = obj({
    "cpu_percent": number(), "cpu_per_core": array(number()), "load": nullable(array(number())),
    "memory_percent": number(), "memory_available_mb": number(), "process_rss_mb": number(),
    "process_cpu_percent": number(), "cpu_temperature_c": nullable(number()),
    "battery": nullable(obj({"percent": number(), "plugged": nullable(boolean())})),
    "disk": nullable(obj({"free_mb": number(), "percent_used": number()})),
    "pipeline": obj({"capture_fps": number(), "source_fps": number(), "inference_fps": number(),
                     "frames_processed": integer(), "dropped_frames": integer(),
                     "latency_ms": mapping(mapping(number()), "p50/p95 per stage")}, closed=False),
    "camera": obj({"online": nullable(boolean("null before the first report")), "source": string(),
                   "reconnects": integer(),
                   "reason": nullable(string("why it is offline (e.g. \"no such file: PATH\"); null while online"))}),
    "websocket": obj({"clients": integer(), "slow_closed": integer()}),
    "mqtt": _telemetry_block, "store": obj({"ok": boolean(), "degraded": nullable(string()),
                                            "write_errors": integer(), "last_seq": integer(),
                                            "recreated": integer("times the database was found deleted and recreated"),
                                            "problem": nullable(string("what is wrong with the event log now"))}),
}, "system, pipeline, camera, transports, store, and one block per feature (audio, behaviour, media …)",
    closed=False)

CONNECTION = obj({
    "device_id": string(), "software_version": string(), "frame": ref("Frame"), "state": ref("State"),
    "last_seq": integer("newest event seq"), "source": string("camera source"),
    "zones": array(ref("ZoneView")), "analytics": ref("AnalyticsDay"),
    "pose_model": nullable(ref("PoseModel")), "postures": array(ref("Posture"), "per track"),
    "audio": obj({"source": string(), "online": nullable(boolean())}, "with DOGMON_AUDIO_SOURCE"),
    "media": obj({"live_path": string(), "snapshot_url": string(), "media_url": string(),
                  "clip_codec": nullable(string()), "latest_snapshot": nullable(string())}),
    "setup_url": string("the plain-HTTP setup port's page (the device's CA certificate and how to trust it), "
                        "with HTTPS on and DOGMON_SETUP_PORT set"),
}, "who the device is and everything a client shows first", optional=("audio", "setup_url"))

LIVE_FRAME = obj({
    "type": const("frame"), "frame_ts": number("capture time of the frame (unix s), as in the overlays' frame_ts"),
    "width": integer("JPEG width, pixels"), "height": integer("JPEG height, pixels"),
}, "/ws/video?meta=1: a text message sent just before each binary JPEG, describing it")

MESSAGES: dict[str, PayloadSpec] = {spec.name: spec for spec in (
    PayloadSpec("connection", "first message on every /ws/ui connection", CONNECTION),
    PayloadSpec("event", "something happened; `seq` strictly increasing per device, across restarts",
                any_value("depends on event_type")),
    PayloadSpec("overlay", "drawing data for the live view", any_value("depends on overlay_type")),
    PayloadSpec("telemetry", "every DOGMON_TELEMETRY_INTERVAL s", TELEMETRY),
    PayloadSpec("reply", "the answer to a command", any_value("`id` and `type` of the request, and its result")),
    PayloadSpec("error", "a command was refused or failed", obj({
        "code": string("what went wrong", enum=tuple(ERROR_CODES)), "message": string("for people"),
        "id": REQUEST_ID,
        "zone": obj({"index": integer("position of the zone in the list sent", 0),
                     "field": nullable(string("the zone's field at fault", enum=ZONE_FIELDS))},
                    "invalid_zones about one zone: which one and which field (absent when the list as a whole "
                    "is at fault)")}, optional=("id", "zone"))),
    PayloadSpec("gap", "a resume asked for events older than the log keeps", obj({
        "requested_since": integer(), "resumes_from": integer("the first seq that will be sent"),
        "reason": string()})),
    PayloadSpec("analytics", "today's figures changed (at most every DOGMON_ANALYTICS_INTERVAL s)",
                ref("AnalyticsDay")),
    PayloadSpec("peers", "the other devices of the home changed (joined, left, went offline, new state or health); "
                "the same list as get_peers", obj({"peers": array(ref("Peer"), "every known peer, this device "
                                                                              "not included")})),
)}

for _names, _table in (({str(t) for t in WIRE_TYPES}, MESSAGES), ({str(t) for t in OverlayType}, OVERLAYS)):
    if _names != _table.keys():
        raise RuntimeError(f"protocol.envelopes and protocol.messages disagree about {sorted(_names ^ _table.keys())}")


def envelope(message_type: str, data: Schema, *, event_type: str | None = None, overlay_type: str | None = None,
             description: str = "") -> Schema:
    """The schema of one concrete message: ``{"v", "type", "event_type"?, "overlay_type"?, "device_id", "ts",
    "seq"?, "data"}``."""
    properties: dict[str, Schema] = {"v": const(PROTOCOL_VERSION, "protocol version"),
                                     "type": const(message_type)}
    if event_type is not None:
        properties["event_type"] = const(event_type)
    if overlay_type is not None:
        properties["overlay_type"] = const(overlay_type)
    properties |= {"device_id": string("DOGMON_DEVICE_ID"), "ts": number("unix seconds")}
    if message_type == "event":
        properties["seq"] = integer("strictly increasing per device; absent only on an event that could not be "
                                    "stored (data disk full), which is sent live once and never replayed", 1)
    properties["data"] = data
    return obj(properties, description, optional=("seq",))


def reply_data(name: str) -> Schema:
    spec = COMMANDS[name]
    result = spec.result_schema()
    return {**result, "properties": {"id": nullable(REQUEST_ID), "type": const(name), **result["properties"]},
            "required": ["id", "type", *result["required"]]}


def message_schemas() -> dict[str, Schema]:
    """Every message the device sends on /ws/ui, by component name (``Event_sit``, ``Reply_ping`` …)."""
    out: dict[str, Schema] = {}
    out["Connection"] = envelope("connection", ref("ConnectionData"), description=MESSAGES["connection"].summary)
    for name, spec in EVENTS.items():
        out[f"Event_{name}"] = envelope("event", spec.data, event_type=name, description=spec.summary)
    for name, overlay in OVERLAYS.items():
        out[f"Overlay_{name}"] = envelope("overlay", overlay.data, overlay_type=name, description=overlay.summary)
    out["Telemetry"] = envelope("telemetry", ref("TelemetryData"), description=MESSAGES["telemetry"].summary)
    out["Analytics"] = envelope("analytics", ref("AnalyticsDay"), description=MESSAGES["analytics"].summary)
    out["Gap"] = envelope("gap", MESSAGES["gap"].data, description=MESSAGES["gap"].summary)
    out["Peers"] = envelope("peers", MESSAGES["peers"].data, description=MESSAGES["peers"].summary)
    out["Error"] = envelope("error", MESSAGES["error"].data, description=MESSAGES["error"].summary)
    for name in COMMANDS:
        out[f"Reply_{name}"] = envelope("reply", reply_data(name), description=f"reply to {name}")
    out |= test_broadcast_schemas()
    return out


TEST_BROADCASTS = ("event", "overlay", "telemetry")


def test_broadcast_schemas() -> dict[str, Schema]:
    """``Test_event`` …: what ``POST /api/events/broadcast[/overlay|/telemetry]`` sends (DOGMON_TEST_EVENTS=1).

    Any type name and any ``data`` (a UI developer stages whatever they need), always ``"test": true``
    and never a ``seq``: not stored, not replayed, not on MQTT."""
    out: dict[str, Schema] = {}
    for kind in TEST_BROADCASTS:
        properties: dict[str, Schema] = {"v": const(PROTOCOL_VERSION, "protocol version"), "type": const(kind)}
        if kind != "telemetry":
            properties[f"{kind}_type"] = string(f"any {kind} type name", pattern="^[a-z][a-z0-9_]{0,39}$")
        properties |= {"device_id": string("DOGMON_DEVICE_ID"), "ts": number("unix seconds"),
                       "test": const(True, "a test broadcast: show it, but do not count it"),
                       "data": {"type": "object", "description": "as the developer sent it"}}
        out[f"Test_{kind}"] = obj(properties, f"test broadcast ({kind}) from POST /api/events/broadcast")
    return out


def command_message(name: str) -> Schema:
    """The schema of an inbound WebSocket command: its fields plus ``type`` and an optional ``id``."""
    spec = COMMANDS[name]
    args = spec.args_schema()
    return {**args, "description": spec.summary,
            "properties": {"type": const(name), "id": nullable(REQUEST_ID), **args["properties"]},
            "required": ["type", *args["required"]]}


def message_name(message: dict) -> str | None:
    """The component name of a decoded outbound message (None when its type is not declared)."""
    kind = message.get("type")
    if message.get("test") is True and kind in TEST_BROADCASTS:
        return f"Test_{kind}"
    if kind == "event":
        return f"Event_{message.get('event_type')}"
    if kind == "overlay":
        return f"Overlay_{message.get('overlay_type')}"
    if kind == "reply":
        data = message.get("data")
        return f"Reply_{data.get('type')}" if isinstance(data, dict) else None
    return {"connection": "Connection", "telemetry": "Telemetry", "analytics": "Analytics", "gap": "Gap",
            "error": "Error", "peers": "Peers"}.get(kind) if isinstance(kind, str) else None


def schemas() -> dict[str, Schema]:
    """Every named schema the published documents refer to (shapes, message data, whole messages)."""
    from edge.protocol.shapes import SHAPES

    parts: list[dict[str, Schema]] = [SHAPES, {"ConnectionData": CONNECTION, "TelemetryData": TELEMETRY,
                                              "LiveFrame": LIVE_FRAME},
                                      message_schemas(), {
        "Event": {"oneOf": [ref(f"Event_{name}") for name in EVENTS], "description": "any event"},
        "Overlay": {"oneOf": [ref(f"Overlay_{name}") for name in OVERLAYS], "description": "any overlay"},
    }]
    out: dict[str, Schema] = {}
    for part in parts:
        clash = out.keys() & part.keys()
        if clash:
            raise RuntimeError(f"schema names used twice: {sorted(clash)}")
        out.update(part)
    return out
