"""The other devices of the home through the broker: this device's ``info``, its peers, and commands relayed to them.

A part of the MQTT transport (:class:`~edge.transports.mqtt.bridge.BridgePart`), on only with
``DOGMON_HOME_SECRET``. It publishes this device's retained, signed ``info`` (on connect and hourly),
subscribes to ``{prefix}/+/info|availability|state|telemetry|events`` and feeds the pure
:class:`~edge.transports.mqtt.registry.PeerRegistry`; the list goes out as a ``peers`` message on every
change and answers ``get_peers``; a verified peer's events reach this device's tablets as they came
(``Bus.relay``: their ``device_id`` and ``seq`` are the peer's). A command with ``device`` set to a peer
(``Bus.remote``) is published on the peer's ``cmd/<name>`` with a ``home_sig`` and its ``cmd/result``
comes back as the reply. With the broker down the list stays, ``online`` unknown (null).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from edge.core.bus import Bus
from edge.core.commands import Command, CommandError
from edge.protocol import messages
from edge.protocol.errors import ERROR_CODES
from edge.protocol.messages import Message, MessageType
from edge.transports.mqtt.bridge import BridgePart, MqttBridge
from edge.transports.mqtt.registry import LEAVES, Peer, PeerRegistry
from edge.util.homesig import sign_command, signed

log = logging.getLogger(__name__)

INFO_EVERY = 3600.0          # seconds between re-sent infos (its ts says the device is still around)
AGE_EVERY = 60.0             # seconds between ageing passes
TICK = 1.0                   # how often a lost broker connection is noticed (online becomes unknown)
PUSH_DELAY = 0.05            # changes within this are pushed as one ``peers`` message
RELAY_TIMEOUT = 15.0         # seconds a peer has to answer a relayed command (a snapshot waits for a frame)
MAX_RELAYED = 32             # relayed commands waiting for their answer at once


class MqttPeers(BridgePart):
    name = "peers"

    def __init__(self, bridge: MqttBridge, bus: Bus, prefix: str, device_id: str, secret: str, name: str,
                 version: str, urls: Callable[[], list[str]], relay_timeout: float = RELAY_TIMEOUT) -> None:
        self.bridge, self.bus, self.prefix, self.device_id = bridge, bus, prefix, device_id
        self.secret, self.display_name, self.version, self.urls = secret, name, version, urls
        self.relay_timeout = relay_timeout
        self.registry = PeerRegistry(secret, device_id, prefix)
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._push_due = False
        self._broker_up = False
        self._task: asyncio.Task | None = None
        self.pushes = 0
        self.handled = 0
        for leaf in LEAVES:  # info first: the broker replays each filter's retained messages in this order
            bridge.subscribe(f"{prefix}/+/{leaf}", self._on_message)
        bridge.subscribe(f"{prefix}/+/cmd/result", self._on_result)
        bus.handle("get_peers", self._cmd_get_peers)
        bus.remote = self._relay

    # --- BridgePart ---
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._housekeeping())

    def connected(self) -> None:
        self.publish_info()
        self._check_broker()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(CommandError("shutting_down", "the device is shutting down"))

    def telemetry(self) -> dict[str, Any]:
        listed = self.registry.peers(self.bridge.connected)
        return {"peers": len(listed), "online": sum(1 for p in listed if p["online"]),
                "messages": self.handled, "events_relayed": self.registry.relayed,
                "duplicates": self.registry.duplicates, "bad_signatures": self.registry.rejected,
                "commands_waiting": len(self.waiting)}

    # --- this device ---
    def info(self) -> dict[str, Any]:
        return signed(self.secret, {"device_id": self.device_id, "name": self.display_name, "version": self.version,
                                    "urls": self.urls(), "ts": round(time.time(), 3)})

    def publish_info(self) -> None:
        self.bridge.publish_retained(self.bridge.topic("info"), orjson.dumps(self.info()))

    async def _housekeeping(self) -> None:
        last_info = last_age = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            self._check_broker()
            now = time.monotonic()
            if now - last_age >= AGE_EVERY:
                last_age = now
                if self.registry.age(time.time()):
                    self._push()
            if now - last_info >= INFO_EVERY:
                last_info = now
                self.publish_info()

    def _check_broker(self) -> None:
        up = self.bridge.connected
        if up != self._broker_up:
            self._broker_up = up
            if self.registry.peers():
                self._push()

    # --- peers ---
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        self.handled += 1
        changed, event = self.registry.handle(topic, payload, time.time(), retained)
        if event is not None:
            device = str(event["device_id"])
            self.bus.relay(Message(MessageType.EVENT, event.get("data") or {}, event_type=event.get("event_type"),
                                   ts=float(event.get("ts") or time.time()), origin=device), payload)
        if changed:
            self._push()

    def _push(self) -> None:
        if self._push_due:
            return
        self._push_due = True
        self.bus.loop.call_later(PUSH_DELAY, self._push_now)

    def _push_now(self) -> None:
        self._push_due = False
        self.pushes += 1
        self.bus.publish(messages.peers(self.registry.peers(self.bridge.connected)))

    async def _cmd_get_peers(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return {"peers": self.registry.peers(self.bridge.connected)}

    def peer(self, device: str) -> Peer | None:
        """A verified peer (the HTTP proxy asks)."""
        return self.registry.get(device)

    # --- commands relayed to a peer ---
    async def _relay(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        device = str(command.args["device"])
        peer = self.registry.get(device)
        if peer is None:
            raise CommandError("unknown_device", f"{device!r} is no verified peer of this home")
        if peer.online is False:
            raise CommandError("unknown_device", f"{peer.name or device} is offline")
        if not self.bridge.connected:
            raise CommandError("unknown_device", f"the broker is not reachable, so {peer.name or device} is not")
        if len(self.waiting) >= MAX_RELAYED:
            raise CommandError("busy", f"more than {MAX_RELAYED} commands waiting for peers; try again")
        request_id = f"relay-{self.device_id}-{next(self._ids)}"[:64]
        fields = {k: v for k, v in command.args.items() if k != "device" and v is not None}
        body = sign_command(self.secret, command.type, {**fields, "id": request_id})
        future: asyncio.Future[dict[str, Any]] = self.bus.loop.create_future()
        self.waiting[request_id] = future
        try:
            self.bridge.publish(f"{self.prefix}/{device}/cmd/{command.type}", orjson.dumps(body), qos=1)
            answer = await asyncio.wait_for(future, self.relay_timeout)
        except TimeoutError:
            raise CommandError("timeout", f"{peer.name or device} did not answer {command.type} within "
                                          f"{self.relay_timeout:g} s") from None
        finally:
            self.waiting.pop(request_id, None)
        if answer.get("ok") is True and isinstance(answer.get("result"), dict):
            return dict(answer["result"])
        said = answer.get("error")
        error: dict[str, Any] = said if isinstance(said, dict) else {}
        code = error.get("code") if error.get("code") in ERROR_CODES else "internal"
        raise CommandError(str(code), f"{peer.name or device}: {error.get('message') or 'failed'}")

    def _on_result(self, topic: str, payload: bytes, retained: bool) -> None:
        if retained or not self.waiting:
            return
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        future = self.waiting.get(str(body.get("id")))
        if future is not None and not future.done() and topic == f"{self.prefix}/{body.get('device_id')}/cmd/result":
            future.set_result(body)
