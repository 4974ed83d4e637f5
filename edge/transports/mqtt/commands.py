"""Commands over MQTT: ``{prefix}/{id}/cmd/<name>`` in, ``{prefix}/{id}/cmd/result`` out.

Owns the MQTT side of inbound commands. The topic names the command; the payload is a JSON object
of its fields (``id`` for correlation; an empty payload means "no fields"). It is validated by the
same :func:`edge.core.commands.validate_command` as WebSocket commands, with the topic's name injected as
``type``, then run by :meth:`edge.core.bus.Bus.dispatch` on the loop thread. Every message gets exactly
one answer on ``cmd/result``: ``{"id", "command", "ok": true, "result"}`` or
``{"id", "command", "ok": false, "error": {"code", "message"}}``. Nothing acts on a command that
failed validation. Commands are rate-limited (a token bucket for all command topics: the broker does
not say who sent what); refusals answer ``rate_limited``.

Retained commands: MQTT 3.1.1 shows the retain flag only on messages the broker replays at subscribe
time, so a command published retained while the device is subscribed runs once like any other. When
the device subscribes and finds a retained command, it refuses it (``retained``) and clears it with an
empty retained publish, so it cannot run on any later reconnect either. At shutdown, commands still
running are answered ``shutting_down`` before the bridge publishes ``offline``.

A part of the MQTT transport (:class:`~edge.transports.mqtt.bridge.BridgePart`): the device builds it with
the bridge, the bus's command dispatch and the names of the commands it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import orjson

from edge.core.commands import Command, CommandError, decode_object, validate_command
from edge.protocol import messages
from edge.protocol.command_specs import COMMANDS
from edge.protocol.messages import Message, MessageType
from edge.transports.mqtt.bridge import BridgePart, MqttBridge
from edge.util import clock
from edge.util.homesig import COMMAND_SIG_FIELD, command_verified
from edge.util.ratelimit import RateLimiter
from edge.util.spell import Spell

log = logging.getLogger(__name__)

RESULT_LEAF = "result"
# e.g. resume: it replays into a WebSocket client's queue, meaningless over MQTT
WS_ONLY = frozenset(name for name, spec in COMMANDS.items() if "mqtt" not in spec.transports)
MAX_PAYLOAD = 64 * 1024
MAX_RUNNING = 8
COMMAND_RATE = 5.0    # commands per second over MQTT, all topics together …
COMMAND_BURST = 10.0  # … with this many in reserve (a Home Assistant dashboard pressing a few buttons)
SHUTDOWN_WAIT = 0.5   # seconds running commands get to finish at shutdown before they are answered

Dispatch = Callable[[Command, dict[str, Any]], Awaitable[Message]]  # runs a command: Bus.dispatch


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


def check_home_sig(name: str, payload: bytes, secret: str) -> None:
    """A command relayed by another device of the home carries ``home_sig``: it must be this home's and fresh
    (CommandError ``unauthorized`` otherwise). Commands without one are judged as before (the broker's ACL)."""
    if COMMAND_SIG_FIELD.encode() not in payload:
        return
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return  # parse_mqtt_command says what is wrong with it
    if isinstance(body, dict) and COMMAND_SIG_FIELD in body and not command_verified(secret, name, body):
        request_id = body.get("id") if isinstance(body.get("id"), str | int) else None
        raise CommandError("unauthorized", "home_sig does not verify: not signed with this home's "
                                           "DOGMON_HOME_SECRET, or older than two minutes", request_id)


def result_payload(name: str, answer: Message, device_id: str) -> bytes:
    """The ``cmd/result`` message for a ``reply`` or ``error`` from the bus."""
    data = dict(answer.data)
    request_id = data.pop("id", None)
    out: dict[str, Any] = {"id": request_id, "command": name, "device_id": device_id, "ts": round(clock.now(), 3)}
    if answer.type is MessageType.REPLY:
        data.pop("type", None)
        out.update(ok=True, result=data)
    else:
        out.update(ok=False, error={"code": data.get("code"), "message": data.get("message")})
    return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


class MqttCommands(BridgePart):
    """Subscribes to ``cmd/+`` on the bridge and answers each message on ``cmd/result``."""

    name = "mqtt_commands"

    def __init__(self, bridge: MqttBridge, dispatch: Dispatch, commands: Callable[[], Collection[str]],
                 device_id: str, rate: float = COMMAND_RATE, burst: float = COMMAND_BURST,
                 home_secret: str = "") -> None:
        self.bridge, self.dispatch, self.commands, self.device_id = bridge, dispatch, commands, device_id
        self.home_secret = home_secret
        self.running: set[asyncio.Task] = set()
        self.handled = 0
        self.rejected = 0
        self.rate_limited = 0
        self.retained_cleared = 0
        self.limiter = RateLimiter(rate, burst)
        self.rate = rate
        self.closing = False
        self._limited_spell = Spell()        # refusals by the rate limit, until a command is let through
        self._clearing: set[str] = set()     # topics whose empty retained publish (ours) is still to come back
        bridge.subscribe(bridge.topic("cmd/+"), self._on_message)

    def supported(self) -> set[str]:
        return set(self.commands()) - WS_ONLY

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        name = topic.rsplit("/", 1)[-1]
        if name == RESULT_LEAF:
            return  # our own answers (MQTT 3.1.1 has no "no local")
        if not payload and not retained and topic in self._clearing:
            self._clearing.discard(topic)  # our own clearing publish coming back: not a command
            return
        if retained and payload:
            self._clear_retained(topic)
        try:
            if self.closing:
                raise CommandError("shutting_down", "the device is shutting down; send the command again later")
            if not retained and not self.limiter.allow():
                self._limited()
                raise CommandError("rate_limited", f"more than {self.rate:g} MQTT commands per second; slow down",
                                   _request_id(payload))
            if len(self.running) >= MAX_RUNNING:
                raise CommandError("busy", f"more than {MAX_RUNNING} commands running; try again")
            check_home_sig(name, payload, self.home_secret)
            command = parse_mqtt_command(name, payload, retained, self.supported())
        except CommandError as exc:
            self.rejected += 1
            if exc.code != "rate_limited":
                log.info("MQTT command %r rejected: %s", name[:40], exc.message)
            self._answer(name, _error_message(exc))
            return
        if missed := self._limited_spell.end():
            log.warning("MQTT commands: %d more refused by the rate limit (%g per second)", missed, self.rate)
        task = asyncio.ensure_future(self._run(name, command))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def _limited(self) -> None:
        self.rate_limited += 1
        if self._limited_spell.occur().first:
            log.warning("MQTT commands arrive faster than %g per second: refusing them (rate_limited)", self.rate)

    def _clear_retained(self, topic: str) -> None:
        """Remove a retained command from the broker (an empty retained message deletes it)."""
        if self.bridge.publish(topic, b"", qos=1, retain=True):
            self._clearing.add(topic)
            self.retained_cleared += 1
            log.warning("MQTT: a retained command on %s was refused and cleared from the broker", topic)

    async def _run(self, name: str, command: Command) -> None:
        try:
            answer = await self.dispatch(command, {"transport": "mqtt"})
        except asyncio.CancelledError:
            self._answer(name, messages.error("shutting_down", f"the device shut down before {name} finished",
                                              command.id))
            raise
        self.handled += 1
        self._answer(name, answer)

    async def close(self) -> None:
        """Refuse new commands; give running ones a moment, then answer them ``shutting_down``."""
        self.closing = True
        if self.running:
            _, pending = await asyncio.wait(set(self.running), timeout=SHUTDOWN_WAIT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    def telemetry(self) -> dict[str, Any]:
        return {"handled": self.handled, "rejected": self.rejected, "rate_limited": self.rate_limited,
                "retained_cleared": self.retained_cleared}

    def _answer(self, name: str, answer: Message) -> None:
        self.bridge.publish(self.bridge.topic(f"cmd/{RESULT_LEAF}"),
                            result_payload(name[:64], answer, self.device_id), qos=1)


def _request_id(payload: bytes) -> str | int | None:
    """The ``id`` of a command that is refused before validation, so the sender can match the refusal."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None


def _error_message(exc: CommandError) -> Message:
    data: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.request_id is not None:
        data["id"] = exc.request_id
    return Message(MessageType.ERROR, data)
