"""Commands over MQTT: ``{prefix}/{id}/cmd/<name>`` in, ``{prefix}/{id}/cmd/result`` out.

Owns the MQTT side of inbound commands. The topic names the command; the payload is a JSON object
of its fields (``id`` for correlation; an empty payload means "no fields"). It is validated by the
same :func:`edge.commands.validate_command` as WebSocket commands, with the topic's name injected as
``type``, then run by :meth:`edge.bus.Bus.dispatch` on the loop thread. Every message gets exactly
one answer on ``cmd/result``: ``{"id", "command", "ok": true, "result"}`` or
``{"id", "command", "ok": false, "error": {"code", "message"}}``. Nothing acts on a command that
failed validation, and retained messages are refused (a retained command would run again on every
reconnect).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from edge.commands import Command, CommandError, decode_object, validate_command
from edge.features import Feature
from edge.messages import Message, MessageType
from edge.protocol.command_specs import COMMANDS

if TYPE_CHECKING:
    from edge.app import Device
    from edge.bus import Bus
    from edge.transports.mqtt import MqttBridge

log = logging.getLogger(__name__)

RESULT_LEAF = "result"
# e.g. resume: it replays into a WebSocket client's queue, meaningless over MQTT
WS_ONLY = frozenset(name for name, spec in COMMANDS.items() if "mqtt" not in spec.transports)
MAX_PAYLOAD = 64 * 1024
MAX_RUNNING = 8


def parse_mqtt_command(name: str, payload: bytes, retained: bool, supported: set[str]) -> Command:
    """Validate one MQTT command message; raise CommandError naming the problem (pure)."""
    if len(payload) > MAX_PAYLOAD:
        raise CommandError("too_large", f"command payload is larger than {MAX_PAYLOAD} bytes")
    body = decode_object(payload, "payload", "a JSON object (or empty)") if payload.strip() else {}
    if retained:
        request_id = body.get("id") if isinstance(body.get("id"), str | int) else None
        raise CommandError("retained", "retained commands are ignored (they would run again on every reconnect): "
                                       "publish commands without the retain flag", request_id)
    if "type" in body and body["type"] != name:
        raise CommandError("invalid_field", f"'type' {str(body['type'])[:40]!r} does not match the topic's "
                                            f"command {name!r}; leave 'type' out", body.get("id"))
    return validate_command({**body, "type": name}, allowed=supported)


def result_payload(name: str, answer: Message, device_id: str) -> bytes:
    """The ``cmd/result`` message for a ``reply`` or ``error`` from the bus."""
    data = dict(answer.data)
    request_id = data.pop("id", None)
    out: dict[str, Any] = {"id": request_id, "command": name, "device_id": device_id, "ts": round(time.time(), 3)}
    if answer.type is MessageType.REPLY:
        data.pop("type", None)
        out.update(ok=True, result=data)
    else:
        out.update(ok=False, error={"code": data.get("code"), "message": data.get("message")})
    return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


class MqttCommands:
    """Subscribes to ``cmd/+`` on the bridge and answers each message on ``cmd/result``."""

    def __init__(self, bridge: MqttBridge, bus: Bus) -> None:
        self.bridge, self.bus = bridge, bus
        self.running: set[asyncio.Task] = set()
        self.handled = 0
        self.rejected = 0
        bridge.subscribe(bridge.topic("cmd/+"), self._on_message)

    def supported(self) -> set[str]:
        return set(self.bus.handlers) - WS_ONLY

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        name = topic.rsplit("/", 1)[-1]
        if name == RESULT_LEAF:
            return  # our own answers (MQTT 3.1.1 has no "no local")
        try:
            if len(self.running) >= MAX_RUNNING:
                raise CommandError("busy", f"more than {MAX_RUNNING} commands running; try again")
            command = parse_mqtt_command(name, payload, retained, self.supported())
        except CommandError as exc:
            self.rejected += 1
            log.info("MQTT command %r rejected: %s", name[:40], exc.message)
            self._answer(name, _error_message(exc))
            return
        task = asyncio.ensure_future(self._run(name, command))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, name: str, command: Command) -> None:
        answer = await self.bus.dispatch(command, {"transport": "mqtt"})
        self.handled += 1
        self._answer(name, answer)

    def _answer(self, name: str, answer: Message) -> None:
        self.bridge.publish(self.bridge.topic(f"cmd/{RESULT_LEAF}"),
                            result_payload(name[:64], answer, self.bus.device_id), qos=1)


def _error_message(exc: CommandError) -> Message:
    data: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.request_id is not None:
        data["id"] = exc.request_id
    return Message(MessageType.ERROR, data)


class MqttCommandsFeature(Feature):
    """Switches MQTT commands on for a device whose MQTT bridge exists."""

    name = "mqtt_commands"

    def __init__(self) -> None:
        self.channel: MqttCommands | None = None

    def attach(self, device: Device) -> None:
        if device.mqtt is not None:
            self.channel = MqttCommands(device.mqtt, device.bus)

    def telemetry(self) -> dict[str, Any]:
        if self.channel is None:
            return {}
        return {"handled": self.channel.handled, "rejected": self.channel.rejected}
