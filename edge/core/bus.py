"""The bus: one dispatcher between the pipeline and every transport.

Owns the order of messages, event numbering and durability, encoding and fan-out. On the event-loop
thread, :meth:`Bus.publish` takes a :class:`~edge.protocol.messages.Message`; an event gets its ``seq`` and is
committed to the event log first (durable before visible), every message is encoded **once**, and
the same bytes go to every transport. Other threads hand messages over with :meth:`Bus.post`.
Inbound commands from any transport go through :meth:`Bus.dispatch`: one validation, one handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edge.core.commands import Command, CommandError
from edge.core.state import DeviceState
from edge.core.store import EventStore, StoreWriteError
from edge.core.telemetry import StageTimers
from edge.protocol import messages
from edge.protocol.messages import EventType, Message
from edge.util.spell import Spell

log = logging.getLogger(__name__)

Handler = Callable[[Command, dict[str, Any]], Awaitable[dict[str, Any]]]


class Transport(Protocol):
    """What the bus needs of a transport: take an encoded message without blocking."""

    def deliver(self, message: Message, payload: bytes) -> None: ...


class Bus:
    def __init__(self, device_id: str, store: EventStore, loop: asyncio.AbstractEventLoop) -> None:
        self.device_id = device_id
        self.store = store
        self.loop = loop
        self.state = DeviceState()
        self.transports: list[Transport] = []
        self.listeners: list[Callable[[Message], None]] = []
        self.state_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.handlers: dict[str, Handler] = {}
        self.counts: Counter[str] = Counter()
        self.timers: StageTimers | None = None  # set to measure hand-over and end-to-end latency
        self._store_spell = Spell()  # event log write failures, until a write works again
        store.on_recreated.append(self._store_recreated)

    def attach(self, transport: Transport) -> None:
        self.transports.append(transport)

    def handle(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def post(self, message: Message) -> None:
        """Thread-safe hand-over from capture/inference/audio threads."""
        self.loop.call_soon_threadsafe(self._publish_posted, message, time.monotonic())

    def _publish_posted(self, message: Message, posted: float) -> None:
        self.publish(message)
        if self.timers is not None and message.captured is not None:
            now = time.monotonic()
            self.timers.record("publish", now - posted)
            self.timers.record("total", now - message.captured)

    def publish(self, message: Message) -> bytes:
        """Number, persist, encode once and fan out. Event-loop thread only."""
        payload = self._commit(message) if message.is_event else messages.encode(message, self.device_id)
        self.counts[message.event_type or message.overlay_type or message.type] += 1
        changed = self.state.apply(message)
        for transport in self.transports:
            try:
                transport.deliver(message, payload)
            except Exception:  # one broken transport must not starve the others
                log.exception("transport %r failed to take a message", transport)
        for listener in self.listeners:
            try:
                listener(message)
            except Exception:
                log.exception("listener failed on %s", message.type)
        if changed:
            self._notify_state()
        return payload

    def update_state(self, **values: Any) -> None:
        """Set state keys (posture, zones, bark …) from the loop thread; subscribers hear of changes."""
        if any([self.state.set(k, v) for k, v in values.items()]):
            self._notify_state()

    def _notify_state(self) -> None:
        snapshot = self.state.snapshot()
        for callback in self.state_listeners:
            callback(snapshot)

    def _commit(self, message: Message) -> bytes:
        def encode_with_seq(seq: int) -> bytes:
            message.seq = seq
            return messages.encode(message, self.device_id)

        if self.store.closed:  # a thread's last message arriving after shutdown closed the log
            log.warning("%s event after the event log closed is not stored", message.event_type)
            message.seq = None
            return messages.encode(message, self.device_id)
        try:
            _, payload = self.store.append(message.ts, str(message.event_type), encode_with_seq)
            self._store_spell.end()
            return payload
        except StoreWriteError as exc:
            log.error("event log write failed: %s", exc.cause)
            if self._store_spell.occur().first:
                # Reported once per failure spell; it is itself not storable, so it is sent live only.
                self.loop.call_soon(self.publish, messages.event(
                    EventType.ERROR, {"component": "store", "detail": str(exc.cause),
                                      "effect": "events are streamed live but not persisted"}))
            return exc.payload

    def _store_recreated(self, detail: str) -> None:
        """The database file vanished under us and a new one was opened: say so once, as a durable event."""
        self.loop.call_soon(self.publish, messages.event(EventType.ERROR, {
            "component": "store", "detail": detail,
            "effect": "events and media stored before are lost; new events are stored and numbered on"}))

    @property
    def store_failing(self) -> bool:
        return self._store_spell.active or self.store.degraded is not None

    async def dispatch(self, command: Command, context: dict[str, Any]) -> Message:
        """Run a validated command; always returns a ``reply`` or an ``error`` message."""
        handler = self.handlers.get(command.type)
        if handler is None:
            return messages.error("unsupported", f"{command.type} is not available on this device", command.id)
        try:
            result = await handler(command, context)
        except CommandError as exc:
            return messages.error(exc.code, exc.message, command.id, exc.extra)
        except Exception as exc:
            log.exception("command %s failed", command.type)
            return messages.error("internal", f"{command.type} failed: {exc}", command.id)
        return messages.reply(command.id, {"type": command.type, **result})
