"""The device's current state (presence, tracks, last event, camera …) as folded from messages.

Pure logic: :meth:`DeviceState.apply` takes each outgoing message and returns True when the state a
subscriber sees changed. The same dict goes into the WebSocket ``connection`` message and the
retained MQTT ``state`` topic.
"""

from __future__ import annotations

from typing import Any

from edge.protocol.messages import EventType, Message, MessageType, OverlayType


class DeviceState:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {
            "presence": False,
            "present_since": None,
            "absent_since": None,
            "track_count": 0,
            "camera_online": None,
            "last_event": None,
        }

    def set(self, key: str, value: Any) -> bool:
        if self.values.get(key) == value:
            return False
        self.values[key] = value
        return True

    def apply(self, message: Message) -> bool:
        if message.type is MessageType.OVERLAY and message.overlay_type is OverlayType.DETECTION:
            return self.set("track_count", message.data["track_count"])
        if message.type is not MessageType.EVENT:
            return False
        kind = message.event_type
        if kind == EventType.DOG_DETECTED:
            self.set("presence", True)
            self.set("present_since", message.ts)
        elif kind == EventType.DOG_LEFT:
            self.set("presence", False)
            self.set("present_since", None)
            self.set("absent_since", message.ts)
        elif kind == EventType.CAMERA_ONLINE:
            self.set("camera_online", True)
        elif kind == EventType.CAMERA_OFFLINE:
            self.set("camera_online", False)
        self.values["last_event"] = {"type": str(kind), "seq": message.seq, "ts": round(message.ts, 3)}
        return True

    def snapshot(self) -> dict[str, Any]:
        return dict(self.values)
