"""The bus: one dispatcher between the pipeline and every transport.

Owns the order of messages, event numbering and durability, encoding and fan-out. On the event-loop
thread, :meth:`Bus.publish` takes a :class:`~edge.protocol.messages.Message`; an event gets its ``seq`` and is
committed to the event log first (durable before visible), every message is encoded **once**, and
the same bytes go to every transport. Other threads hand messages over with :meth:`Bus.post`.
Inbound commands from any transport go through :meth:`Bus.dispatch`: one validation, one handler.

Delivery guarantee when the event log cannot be written (a full disk): an event that is not committed
gets **no** ``seq`` — it is sent live to WebSocket clients only, never acknowledged as stored (a command
that creates it answers ``storage_full``), never on MQTT (whose outbox is the log) — so every ``seq`` a
client or a reply ever sees is in the log and the numbers stay gap-free. One ``error`` event (live)
starts the spell; events of the spell are not tried (a nearly full disk that takes some small writes
must not turn one spell into many). :meth:`Bus.retry_store` (the device calls it every 2 s) tries to
store the closing ``error`` event that counts what was not stored; once it is in, events are stored again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
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
from edge.util import clock

log = logging.getLogger(__name__)

Handler = Callable[[Command, dict[str, Any]], Awaitable[dict[str, Any]]]
# Runs a command on another device of the home (``device`` names it) and returns its result; raises CommandError.
Remote = Callable[[Command, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class Outage:
    """A spell of events that could not be stored: what failed and which events went out live only."""

    detail: str
    first_ts: float
    last_ts: float
    unstored: int = 0
    free_bytes: int | None = None   # room on the data disk when the last try failed

    def retry_due(self, free_now: int | None) -> bool:
        """Worth trying again: the data disk has more room than when the last try failed."""
        return free_now is not None and (self.free_bytes is None or free_now > self.free_bytes)


def stored_seq(message: Message, what: str) -> int:
    """The seq of a published event, for a command's reply; ``storage_full`` when it was not stored."""
    if message.seq is None:
        raise CommandError("storage_full", f"{what} was sent live but not stored: the event log cannot be written "
                                           "(data disk full); nothing with a seq was given")
    return message.seq


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
        self.outage: Outage | None = None   # events are not being stored just now
        self.remote: Remote | None = None   # set when peers are on (DOGMON_HOME_SECRET and a broker)
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
            # stage timers are real seconds; the frame's capture time is on the device's clock
            self.timers.record("publish", time.monotonic() - posted)
            self.timers.record("total", clock.real_seconds(clock.monotonic() - message.captured))

    def publish(self, message: Message) -> bytes:
        """Number, persist, encode once and fan out. Event-loop thread only."""
        payload = self._commit(message) if message.is_event else messages.encode(message, self.device_id)
        self._fan_out(message, payload)
        return payload

    def _fan_out(self, message: Message, payload: bytes) -> None:
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

    def relay(self, message: Message, payload: bytes) -> None:
        """A peer's message as it came (``message.origin`` names the peer): to the transports that show peers'
        messages (``shows_peers``), never stored, counted in state, mirrored or heard by listeners."""
        for transport in self.transports:
            if getattr(transport, "shows_peers", False):
                try:
                    transport.deliver(message, payload)
                except Exception:
                    log.exception("transport %r failed to take a peer's message", transport)

    def update_state(self, **values: Any) -> None:
        """Set state keys (posture, zones, bark …) from the loop thread; subscribers hear of changes."""
        if any([self.state.set(k, v) for k, v in values.items()]):
            self._notify_state()

    def _notify_state(self) -> None:
        snapshot = self.state.snapshot()
        for callback in self.state_listeners:
            callback(snapshot)

    def _commit(self, message: Message) -> bytes:
        if self.store.closed:  # a thread's last message arriving after shutdown closed the log
            log.warning("%s event after the event log closed is not stored", message.event_type)
            message.seq = None
            return messages.encode(message, self.device_id)
        # During a spell an event is not tried on its own (a spell is one spell, not a flicker of small writes
        # that still fit); once the disk has more room than at the last failed try, the event first gives the
        # spell's closing report a try, so a command right after space came back is stored at once.
        if self.outage is not None and not (self.outage.retry_due(self._free_bytes()) and self.retry_store()):
            return self._not_stored(message, None)
        try:
            _, payload = self.store.append(message.ts, str(message.event_type), self._encoder(message))
            return payload
        except StoreWriteError as exc:
            return self._not_stored(message, exc.cause)

    def _encoder(self, message: Message) -> Callable[[int], bytes]:
        def encode_with_seq(seq: int) -> bytes:
            message.seq = seq
            return messages.encode(message, self.device_id)
        return encode_with_seq

    def _not_stored(self, message: Message, cause: Exception | None) -> bytes:
        """The event goes out live without a seq; the first of a spell is logged and reported (live)."""
        message.seq = None
        if self.outage is None:
            detail = str(cause)
            self.outage = Outage(detail, message.ts, message.ts, free_bytes=self._free_bytes())
            log.error("event log write failed: %s; events are sent live only, without a seq, until it can be "
                      "written again", detail)
            self.loop.call_soon(self._publish_live, messages.event(EventType.ERROR, {
                "component": "store", "detail": detail,
                "effect": "events are sent live only, without a seq, and not stored (nor sent to MQTT) until "
                          "the event log can be written again; commands that store an event answer storage_full"}))
        self.outage.unstored += 1
        self.outage.last_ts = max(self.outage.last_ts, message.ts)
        return messages.encode(message, self.device_id)

    def _publish_live(self, message: Message) -> None:
        """An event about the spell itself: live only (not counted, never stored later)."""
        self._fan_out(message, messages.encode(message, self.device_id))

    def _free_bytes(self) -> int | None:
        folder = self.store.data_dir
        try:
            return shutil.disk_usage(folder).free if folder is not None else None
        except OSError:
            return None

    def retry_store(self) -> bool:
        """While events are not stored: try to store the event that closes the spell (it counts what was
        not stored); when it is in the log, events are stored again. True when nothing is failing."""
        outage = self.outage
        if outage is None or self.store.closed:
            return outage is None
        report = messages.event(EventType.ERROR, {
            "component": "store", "detail": f"{outage.unstored} event(s) were not stored: {outage.detail}",
            "effect": "they were sent live only, without a seq; the event log is writable again and seq goes on "
                      "without a gap", "unstored": outage.unstored,
            "from_ts": round(outage.first_ts, 3), "to_ts": round(outage.last_ts, 3)})
        try:
            _, payload = self.store.append(report.ts, str(report.event_type), self._encoder(report))
        except StoreWriteError:
            outage.free_bytes = self._free_bytes()
            return False
        self.outage = None
        log.warning("event log writable again; %d event(s) between %s and %s were not stored", outage.unstored,
                    time.strftime("%H:%M:%S", time.localtime(outage.first_ts)),
                    time.strftime("%H:%M:%S", time.localtime(outage.last_ts)))
        self._fan_out(report, payload)
        return True

    def _store_recreated(self, detail: str) -> None:
        """The database file vanished under us and a new one was opened: say so once, as a durable event."""
        self.loop.call_soon(self.publish, messages.event(EventType.ERROR, {
            "component": "store", "detail": detail,
            "effect": "events and media stored before are lost; new events are stored and numbered on"}))

    @property
    def store_failing(self) -> bool:
        return self.outage is not None or self.store.degraded is not None

    async def dispatch(self, command: Command, context: dict[str, Any]) -> Message:
        """Run a validated command; always returns a ``reply`` or an ``error`` message."""
        device = command.args.get("device")
        handler = self.handlers.get(command.type)
        if device is not None and device != self.device_id:
            handler = self._remote_handler(context)
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

    def _remote_handler(self, context: dict[str, Any]) -> Handler:
        remote = self.remote
        if remote is not None and context.get("transport") != "mqtt":  # a relayed command is never relayed on
            return remote

        async def refuse(command: Command, context: dict[str, Any]) -> dict[str, Any]:
            raise CommandError("unknown_device", f"{command.args['device']!r} is no peer this device relays to "
                                                 "(peers need DOGMON_HOME_SECRET and a broker)")
        return refuse
