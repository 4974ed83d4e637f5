"""Every message the device sends, defined once, and the one encoder every transport uses.

The envelope is ``{"v":1, "type", "event_type"?, "overlay_type"?, "device_id", "ts", "seq"?, "data"}``.
``seq`` is set by the bus on events only (strictly increasing per device). A message is encoded once
with orjson by :func:`encode`; the resulting bytes are what WebSocket clients and the MQTT broker get.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

import orjson

from edge.util import clock

PROTOCOL_VERSION = 1


class MessageType(StrEnum):
    CONNECTION = "connection"
    EVENT = "event"
    OVERLAY = "overlay"
    TELEMETRY = "telemetry"
    ERROR = "error"
    REPLY = "reply"
    GAP = "gap"
    ANALYTICS = "analytics"
    PEERS = "peers"
    # The newest value of a piece of retained state that is no message of its own (the newest snapshot's
    # JPEG, the zones before any overlay). Never sent as an envelope: each transport maps it (MQTT: the
    # retained topic ``retain``; WebSocket and REST: nothing, the ``connection`` message and replies carry it).
    RETAINED = "retained"


WIRE_TYPES = frozenset(MessageType) - {MessageType.RETAINED}  # the types clients ever receive


class EventType(StrEnum):
    DOG_DETECTED = "dog_detected"
    DOG_LEFT = "dog_left"
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_ONLINE = "camera_online"
    SIT = "sit"
    STAND = "stand"
    LIE = "lie"
    ZONE_ENTER = "zone_enter"
    ZONE_EXIT = "zone_exit"
    ZONE_DWELL = "zone_dwell"
    FETCH_RETURN = "fetch_return"
    BARK = "bark"
    CONTINUOUS_BARKING = "continuous_barking"
    HOWL = "howl"
    WHIMPER = "whimper"
    AUDIO_OFFLINE = "audio_offline"
    AUDIO_ONLINE = "audio_online"
    BROKER_OFFLINE = "broker_offline"
    BROKER_ONLINE = "broker_online"
    SNAPSHOT_SAVED = "snapshot_saved"
    CLIP_SAVED = "clip_saved"
    BOOKMARK_CREATED = "bookmark_created"
    UNUSUAL_ACTIVITY = "unusual_activity"
    HIGHLIGHTS_SAVED = "highlights_saved"
    TIMELAPSE_SAVED = "timelapse_saved"
    ERROR = "error"
    TEST = "test"


class OverlayType(StrEnum):
    DETECTION = "detection"
    POSE = "pose"
    ZONES = "zones"
    HEATMAP = "heatmap"
    MOTION = "motion"


@dataclasses.dataclass(slots=True)
class Message:
    """One outgoing message before encoding. ``seq`` stays None until the bus numbers an event."""

    type: MessageType
    data: dict[str, Any]
    event_type: EventType | str | None = None
    overlay_type: OverlayType | None = None
    ts: float = dataclasses.field(default_factory=clock.now)
    seq: int | None = None
    # clock.monotonic() when the source frame was captured; not sent, used for end-to-end latency
    captured: float | None = None
    # Retained state: this message is also the newest value of the state named here (zones, heatmap,
    # analytics, snapshot); transports that keep state for late subscribers keep these bytes (MQTT topic).
    retain: str | None = None
    body: Message | bytes | None = None  # RETAINED only: what is kept (a message is encoded, bytes kept as they are)
    # A peer's message relayed as it came (its own device_id and seq): not this device's, never stored or mirrored.
    origin: str | None = None

    @property
    def is_event(self) -> bool:
        return self.type is MessageType.EVENT

    def envelope(self, device_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": self.type.value}
        if self.event_type is not None:
            out["event_type"] = str(self.event_type)
        if self.overlay_type is not None:
            out["overlay_type"] = self.overlay_type.value
        out["device_id"] = device_id
        out["ts"] = round(self.ts, 3)
        if self.seq is not None:
            out["seq"] = self.seq
        out["data"] = self.data
        return out


def encode(message: Message, device_id: str) -> bytes:
    """Serialise once; numpy scalars and arrays are accepted so callers need not convert."""
    if message.type is MessageType.RETAINED:
        body = message.body
        if isinstance(body, bytes):
            return body
        assert body is not None, "a retained message carries a body"
        return encode(body, device_id)
    return orjson.dumps(message.envelope(device_id), option=orjson.OPT_SERIALIZE_NUMPY)


def decode(raw: bytes | str) -> dict[str, Any]:
    """Parse an envelope (clients, tests and the ``watch`` command use this)."""
    return orjson.loads(raw)


# --- constructors: the only places that decide a message's shape ---

def event(event_type: EventType | str, data: dict[str, Any], ts: float | None = None) -> Message:
    return Message(MessageType.EVENT, data, event_type=event_type, ts=clock.now() if ts is None else ts)


def overlay(overlay_type: OverlayType, data: dict[str, Any], retain: str | None = None) -> Message:
    return Message(MessageType.OVERLAY, data, overlay_type=overlay_type, retain=retain)


def telemetry(data: dict[str, Any]) -> Message:
    return Message(MessageType.TELEMETRY, data)


def connection(data: dict[str, Any]) -> Message:
    return Message(MessageType.CONNECTION, data)


def peers(peers: list[dict[str, Any]]) -> Message:
    return Message(MessageType.PEERS, {"peers": peers})


def retained(key: str, content: Message | bytes) -> Message:
    """Retained state ``key`` whose value is no message of its own (see ``MessageType.RETAINED``)."""
    return Message(MessageType.RETAINED, {}, retain=key, body=content)


def error(code: str, detail: str, request_id: Any = None, extra: dict[str, Any] | None = None) -> Message:
    data: dict[str, Any] = {"code": code, "message": detail, **(extra or {})}
    if request_id is not None:
        data["id"] = request_id
    return Message(MessageType.ERROR, data)


def reply(request_id: Any, result: dict[str, Any]) -> Message:
    return Message(MessageType.REPLY, {"id": request_id, **result})


def event_summary(event_type: str, seq: int | None, data: dict[str, Any], max_value: int = 60,
                  max_line: int = 400) -> str:
    """One readable line for an event (the device's log and ``dogmonitor watch``): type, seq, key data.

    Boxes are shortened to ``(x,y wxh)``, frame sizes left out, long values cut, so a line stays short.
    """
    parts = []
    for key, value in data.items():
        if key == "frame":
            continue
        if key == "box" and isinstance(value, dict) and {"x", "y", "w", "h"} <= value.keys():
            text = f"({value['x']:.0f},{value['y']:.0f} {value['w']:.0f}x{value['h']:.0f})"
        elif isinstance(value, float):
            text = f"{value:.3g}" if abs(value) < 1e6 else f"{value:.0f}"
        else:
            text = str(value)
        if len(text) > max_value:
            text = text[:max_value - 1] + "…"
        parts.append(f"{key}={text}")
    line = f"#{seq} {event_type} " + " ".join(parts)
    return line if len(line) <= max_line else line[:max_line - 1] + "…"


def box(x1: float, y1: float, x2: float, y2: float, label: str, confidence: float,
        track_id: int | None) -> dict[str, Any]:
    """A box in source-frame pixels, as every message carries it."""
    return {
        "x": round(float(x1), 1),
        "y": round(float(y1), 1),
        "w": round(float(x2 - x1), 1),
        "h": round(float(y2 - y1), 1),
        "label": label,
        "confidence": round(float(confidence), 3),
        "track_id": track_id,
    }


def detection_overlay(frame_w: int, frame_h: int, boxes: list[dict[str, Any]], track_count: int) -> Message:
    """Boxes seen in this frame; ``track_count`` counts confirmed dog tracks, coasting ones included."""
    return overlay(OverlayType.DETECTION, {"frame": {"w": frame_w, "h": frame_h}, "boxes": boxes,
                                           "track_count": track_count})


def motion_overlay(frame_w: int, frame_h: int, boxes: list[tuple[int, int, int, int]], fraction: float,
                   relearned: bool, detected: bool, reason: str, region: tuple[int, int, int, int] | None) -> Message:
    """What the motion stage saw and what the gate decided for one frame (the tablet's debug view)."""
    def xywh(b: tuple[int, int, int, int]) -> dict[str, int]:
        return {"x": int(b[0]), "y": int(b[1]), "w": int(b[2] - b[0]), "h": int(b[3] - b[1])}

    return overlay(OverlayType.MOTION, {
        "frame": {"w": frame_w, "h": frame_h}, "boxes": [xywh(b) for b in boxes], "fraction": fraction,
        "relearned": relearned, "detected": detected, "reason": reason,
        "region": xywh(region) if region is not None else None})
