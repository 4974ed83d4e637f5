"""MQTT bridge: mirrors the bus to a broker under ``{prefix}/{device_id}/``, through paho-mqtt.

A thin adapter over the paho-mqtt 2 client (its own network thread via ``loop_start``): paho's callbacks
only hand over to the loop (``call_soon_threadsafe``), where they feed the pure :class:`Connection` (what
the broker said, what to do about it) and :class:`Outbox` (which stored events go out, which are acked).
Topics: ``availability`` (retained, QoS 1, also the last will), ``events`` (QoS 1), ``overlay`` (QoS 0,
rate-limited), ``telemetry`` (QoS 0, retained), ``state`` (retained), and one retained topic per piece of
retained state on the bus (a message's ``retain`` key: ``zones``, ``analytics``, ``heatmap``, ``snapshot``),
kept and sent again after each reconnect.

The parts of the transport (:class:`BridgePart`: Home Assistant discovery, MQTT commands) are built by
the device with what they need and added here; the bridge starts them, calls them after each (re)connect
and with every bus message, and closes them before it says ``offline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.config import MqttTarget
from edge.core.bus import Bus
from edge.protocol import messages
from edge.protocol.messages import EventType, Message, MessageType
from edge.transports.mqtt.connection import AUTH_RETRY_SECONDS, Connection
from edge.transports.mqtt.outbox import Ack, EventLog, Outbox
from edge.util import clock

log = logging.getLogger(__name__)

RECONNECT_MAX_DELAY = 8  # seconds; a LAN broker that returns is found again within this
ACK_BATCH_SECONDS = 0.05  # acks arriving within this are marked delivered together (one transaction, one fsync)


class BridgePart:
    """Something that lives on the MQTT connection; no-op defaults (loop thread)."""

    name = "part"

    def start(self) -> None:
        """The bridge starts: every feature is attached, no connection yet."""

    def connected(self) -> None:
        """After each (re)connect, once availability and retained state are sent."""

    def deliver(self, message: Message) -> None:
        """Every message on the bus, after the bridge published its own topics for it."""

    async def close(self) -> None:
        """Shutdown, while the connection is still up."""

    def telemetry(self) -> dict[str, Any]:
        """Reported in telemetry under ``name``."""
        return {}


class MqttBridge:
    def __init__(self, bus: Bus, events: EventLog, target: MqttTarget, prefix: str, device_id: str,
                 overlay_hz: float = 2.0, max_inflight: int = 32, client_id: str | None = None) -> None:
        self.bus, self.target = bus, target
        self.base = f"{prefix}/{device_id}"
        self.overlay_interval = 1.0 / overlay_hz if overlay_hz > 0 else None
        self.loop = bus.loop
        self.client_id = client_id or f"dogmonitor-{device_id}"
        self.connection = Connection(self.client_id)
        self.outbox = Outbox(events, max_inflight)
        self.parts: list[BridgePart] = []
        self.subscriptions: dict[str, Callable[[str, bytes, bool], None]] = {}
        self._last_overlay: dict[str, float] = {}  # per overlay type: pose/zones are not starved by detection
        self._last_state: bytes | None = None
        self._last_telemetry: bytes | None = None
        self._retained: dict[str, bytes] = {}  # retained-state key -> newest payload (also its topic leaf)
        self._drained = asyncio.Event()       # set when no event is waiting for its PUBACK
        self._retry: asyncio.Task | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        if target.username:
            self.client.username_pw_set(target.username, target.password)
        if target.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_DELAY)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        bus.attach(self)
        bus.state_listeners.append(self._on_state)

    def topic(self, leaf: str) -> str:
        return f"{self.base}/{leaf}"

    @property
    def connected(self) -> bool:
        return self.connection.connected

    @property
    def status(self) -> str:
        return self.connection.state.value

    def add(self, part: BridgePart) -> None:
        """A part of this transport (before :meth:`start`)."""
        self.parts.append(part)

    # --- lifecycle ---
    def start(self) -> None:
        for part in self.parts:
            part.start()
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()
        self._pump()

    async def aclose(self, timeout: float = 1.0) -> None:
        """Shut down in an order that loses and repeats nothing; the event store must stay open until it returns.

        The parts close first (commands still running are answered); then no new event is handed to paho
        and nothing else is published; the PUBACKs of the events in flight are awaited (at most ``timeout``)
        and marked delivered in one transaction, so a restart does not send them again; then ``offline`` is
        published once and the connection closed.
        """
        for part in self.parts:
            try:
                await part.close()
            except Exception:
                log.exception("MQTT part %s failed to close", part.name)
        if self._retry is not None:
            self._retry.cancel()
        was_up = self.connection.close()
        self.outbox.close()
        if was_up and not self.outbox.drained:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        self.outbox.flush()
        self.connection.closed()
        await asyncio.to_thread(self._disconnect, timeout)
        await asyncio.sleep(0)  # PUBACKs paho handed to the loop before its thread ended
        self.outbox.flush()

    def _disconnect(self, timeout: float) -> None:
        """Publish ``offline`` ourselves (the will only fires on an unclean loss), then disconnect (any thread)."""
        if self.client.is_connected():
            info = self.client.publish(self.topic("availability"), "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not queued: the broker went away meanwhile
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho thread -> loop ---
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.loop.call_soon_threadsafe(self._connected, not reason.is_failure, str(reason))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.loop.call_soon_threadsafe(self._disconnected, str(reason))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.loop.call_soon_threadsafe(self._unreachable)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self.loop.call_soon_threadsafe(self._puback, mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.loop.call_soon_threadsafe(self._message, message.topic, bytes(message.payload), bool(message.retain))

    # --- what the parts use (loop thread) ---
    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes, bool], None]) -> None:
        """Call ``handler(topic, payload, retained)`` on the loop for messages on ``topic_filter``."""
        self.subscriptions[topic_filter] = handler
        if self.connected:
            self.client.subscribe(topic_filter, qos=1)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        """Publish when connected (False otherwise, and once shutdown began); parts re-send on ``connected``."""
        if not self.connected:
            return False
        self.client.publish(topic, payload, qos=qos, retain=retain)
        return True

    def publish_retained(self, topic: str, payload: bytes | str) -> bool:
        return self.publish(topic, payload, qos=1, retain=True)

    def republish_state(self) -> None:
        """Send the retained state and telemetry again (after discovery, so new entities get values)."""
        if self._last_state is not None:
            self.publish_retained(self.topic("state"), self._last_state)
        if self._last_telemetry is not None:
            self.publish(self.topic("telemetry"), self._last_telemetry, qos=0, retain=True)

    def local_address(self) -> str | None:
        """This device's IP address as the broker's network sees it (for links shown to users)."""
        sock = self.client.socket()
        try:
            return sock.getsockname()[0] if isinstance(sock, socket.socket) else None
        except OSError:
            return None

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        for topic_filter, handler in list(self.subscriptions.items()):
            if mqtt.topic_matches_sub(topic_filter, topic):
                try:
                    handler(topic, payload, retained)
                except Exception:
                    log.exception("MQTT handler for %s failed", topic_filter)

    # --- the connection (loop thread) ---
    def _connected(self, ok: bool, reason: str) -> None:
        if not ok:
            self._refused(reason)
            return
        back = self.connection.accepted(time.monotonic())
        if back is None:  # shutting down: nothing more is published
            return
        self.client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_DELAY)
        log.info("MQTT connected to %s:%s as %s (client id %s)", self.target.host, self.target.port, self.base,
                 self.client_id)
        self.publish_retained(self.topic("availability"), "online")
        self.republish_state()
        if back:
            self.bus.publish(messages.event(EventType.BROKER_ONLINE, {"broker": self._broker_name()}))
        for topic_filter in self.subscriptions:
            self.client.subscribe(topic_filter, qos=1)
        for leaf, payload in self._retained.items():
            self.publish_retained(self.topic(leaf), payload)
        for part in self.parts:
            try:
                part.connected()
            except Exception:
                log.exception("MQTT part %s failed after connect", part.name)
        self._pump()

    def _refused(self, reason: str) -> None:
        refusal = self.connection.refused(reason)
        if refusal is None:
            return
        if refusal.retry_later:
            # Retrying wrong credentials every second only fills the broker's log: stop paho's own
            # reconnect loop and try again after AUTH_RETRY_SECONDS (the password may be fixed meanwhile).
            self._retry = self.loop.create_task(self._retry_later(AUTH_RETRY_SECONDS))
        log.error("MQTT broker %s:%s refused the connection: %s%s", self.target.host, self.target.port, reason,
                  " (check the user and password in DOGMON_MQTT_URL)" if refusal.auth else "")
        if refusal.report_offline:
            self._report_offline(reason)

    async def _retry_later(self, delay: float) -> None:
        await asyncio.to_thread(self.client.loop_stop)
        await asyncio.sleep(delay)
        if self.connection.retry_due():
            self.client.connect_async(self.target.host, self.target.port, keepalive=30)
            self.client.loop_start()

    def _disconnected(self, reason: str) -> None:
        loss = self.connection.lost(time.monotonic(), reason)
        if loss is None:  # it was not up, or this is our own disconnect at shutdown
            return
        log.warning("MQTT connection lost (%s); paho reconnects with backoff", reason)
        if loss.warning:
            log.error("%s", loss.warning)
        if loss.report_offline:
            self._report_offline(reason)

    def _unreachable(self) -> None:
        first = self.connection.unreachable()
        if first is None:
            return
        log.warning("MQTT broker %s unreachable; retrying with backoff", self._broker_name())
        if first:
            self._report_offline("broker unreachable")

    def _report_offline(self, reason: str) -> None:
        self.bus.publish(messages.event(EventType.BROKER_OFFLINE, {
            "broker": self._broker_name(), "reason": reason,
            "effect": "events are kept in the outbox and published when the broker returns"}))

    def _broker_name(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    # --- the outbox (loop thread) ---
    def _puback(self, mid: int) -> None:
        ack = self.outbox.acked(mid)
        if ack is Ack.UNKNOWN:
            return
        if ack is Ack.NEW_BATCH:
            self.loop.call_later(ACK_BATCH_SECONDS, self.outbox.flush)
        if self.outbox.drained:
            self._drained.set()
        self._pump()

    def _pump(self) -> None:
        """Hand the next undelivered events to paho, in order, while fewer than max_inflight are out."""
        for send in self.outbox.due():
            info = self.client.publish(self.topic("events"), send.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("paho refused event %s (%s); will retry", send.seq, info.rc)
                break
            self.outbox.sent(send, info.mid)

    # --- Transport ---
    def deliver(self, message: Message, payload: bytes) -> None:
        if message.type is MessageType.EVENT:
            self._pump()
        elif message.type is MessageType.OVERLAY:
            now = time.monotonic()
            kind = str(message.overlay_type)
            due = self.overlay_interval is not None and now - self._last_overlay.get(kind, 0.0) >= self.overlay_interval
            if due and self.publish(self.topic("overlay"), payload, qos=0):
                self._last_overlay[kind] = now
        elif message.type is MessageType.TELEMETRY:
            self._last_telemetry = payload
            self.publish(self.topic("telemetry"), payload, qos=0, retain=True)
        if message.retain is not None:  # after the message's own topic, as a subscriber of both expects
            self._retained[message.retain] = payload
            self.publish_retained(self.topic(message.retain), payload)
        for part in self.parts:
            try:
                part.deliver(message)
            except Exception:
                log.exception("MQTT part %s failed on %s", part.name, message.type)

    def _on_state(self, state: dict[str, Any]) -> None:
        payload = orjson.dumps({"device_id": self.bus.device_id, "ts": round(clock.now(), 3), **state})
        self._last_state = payload
        self.publish_retained(self.topic("state"), payload)

    def telemetry(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "status": self.status,
            "auth_failed": self.connection.auth_failed,
            "outbox_pending": self.outbox.pending(),
            "inflight": len(self.outbox.in_flight),
            "connects": self.connection.connects,
            "disconnects": self.connection.disconnects,
            "client_id": self.client_id,
            "duplicate_client_id_suspected": self.connection.kick_loop.suspected,
        }

    def parts_telemetry(self) -> dict[str, dict[str, Any]]:
        """Each part's telemetry under its name (``home_assistant``, ``mqtt_commands``)."""
        return {part.name: part.telemetry() for part in self.parts}
