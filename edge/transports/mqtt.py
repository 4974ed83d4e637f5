"""MQTT bridge: mirrors the bus to a broker under ``{prefix}/{device_id}/``.

Owns the paho-mqtt 2 client (its own network thread via ``loop_start``), availability and the
event outbox. Topics: ``availability`` (retained, QoS 1, also the last will), ``events`` (QoS 1),
``overlay`` (QoS 0, rate-limited), ``telemetry`` (QoS 0, retained), ``state`` (retained), and one
retained topic per piece of retained state on the bus (a message's ``retain`` key: ``zones``,
``analytics``, ``heatmap``, ``snapshot``), kept and sent again after each reconnect.

Events are never published from memory only: the outbox *is* the event log. At most
``max_inflight`` events are handed to paho at a time, in seq order; an event is marked delivered
when the broker's PUBACK arrives. paho re-sends what it holds after a reconnect, and after a restart
the undelivered rows are published again, so a subscriber may see an event twice, always with the
same ``seq`` (dedupe on it). paho callbacks run on paho's thread and only hand over to the loop.
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
from edge.transports.kickloop import KickLoopDetector

log = logging.getLogger(__name__)

AUTH_RETRY_SECONDS = 60
RECONNECT_MAX_DELAY = 8  # seconds; a LAN broker that returns is found again within this
AUTH_FAILURES = {"Bad user name or password", "Not authorized", "Bad username or password"}


class MqttBridge:
    def __init__(self, bus: Bus, target: MqttTarget, prefix: str, device_id: str, overlay_hz: float = 2.0,
                 max_inflight: int = 32, client_id: str | None = None) -> None:
        self.bus, self.target = bus, target
        self.base = f"{prefix}/{device_id}"
        self.overlay_interval = 1.0 / overlay_hz if overlay_hz > 0 else None
        self.max_inflight = max_inflight
        self.loop = bus.loop
        self.connected = False
        self.stopping = False   # shutdown began: nothing new is handed to paho
        self.stopped = False
        self.status = "connecting"
        self.ever_connected = False
        self.connects = 0
        self.disconnects = 0
        self.auth_failed = False
        self.inflight: dict[int, int] = {}  # paho mid -> seq
        self._cursor = 0                      # highest seq handed to paho
        self._acked: list[int] = []
        self._last_overlay: dict[str, float] = {}  # per overlay type: pose/zones are not starved by detection
        self._last_state: bytes | None = None
        self._last_telemetry: bytes | None = None
        self._retained: dict[str, bytes] = {}  # retained-state key -> newest payload (also its topic leaf)
        self._offline_reported = False
        self._drained = asyncio.Event()       # set when no event is waiting for its PUBACK
        self.client_id = client_id or f"dogmonitor-{device_id}"
        self.kick_loop = KickLoopDetector(self.client_id)
        # Extension hooks (loop thread): called after each (re)connect (``on_connect``), and per subscribed
        # topic filter (``subscribe``).
        self._connect_hooks: list[Callable[[], None]] = []
        self.subscriptions: dict[str, Callable[[str, bytes, bool], None]] = {}
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

    # --- lifecycle ---
    def start(self) -> None:
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()
        self._pump()

    async def aclose(self, timeout: float = 1.0) -> None:
        """Shut down in an order that loses and repeats nothing; the event store must stay open until it returns.

        No new event is handed to paho and nothing else is published; the PUBACKs of the events in flight
        are awaited (at most ``timeout``) and marked delivered in one transaction, so a restart does not
        send them again; then ``offline`` is published once and the connection closed.
        """
        self.stopping = True
        if self.inflight and self.connected:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        self._flush_acks()
        await asyncio.to_thread(self.stop, timeout)
        await asyncio.sleep(0)  # PUBACKs paho handed to the loop before its thread ended
        self._flush_acks()

    def stop(self, timeout: float = 1.0) -> None:
        """Publish ``offline`` ourselves (the will only fires on an unclean loss), then disconnect."""
        self.stopping = True
        self.stopped = True
        if self.connected:
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

    # --- extension surface (loop thread) ---
    def on_connect(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` on the loop after each (re)connect, once availability and retained state are sent."""
        self._connect_hooks.append(hook)

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes, bool], None]) -> None:
        """Call ``handler(topic, payload, retained)`` on the loop for messages on ``topic_filter``."""
        self.subscriptions[topic_filter] = handler
        if self.connected:
            self.client.subscribe(topic_filter, qos=1)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        """Publish when connected (False otherwise, and once shutdown began); callers re-send from a connect hook."""
        if not self.connected or self.stopping:
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

    # --- loop thread ---
    def _connected(self, ok: bool, reason: str) -> None:
        if not ok:
            retry_pending = self.status == "auth_failed"
            self.status = "refused"
            self.auth_failed = reason in AUTH_FAILURES
            if self.auth_failed:
                # Retrying wrong credentials every second only fills the broker's log: stop paho's own
                # reconnect loop and try again after AUTH_RETRY_SECONDS (the password may be fixed meanwhile).
                if not retry_pending:  # refusals that arrive before paho's loop stops share one retry
                    self.loop.create_task(self._retry_later(AUTH_RETRY_SECONDS))
                self.status = "auth_failed"
            log.error("MQTT broker %s:%s refused the connection: %s%s", self.target.host, self.target.port, reason,
                      " (check the user and password in DOGMON_MQTT_URL)" if self.auth_failed else "")
            self._report_offline(reason)
            return
        self.connected, self.status, self.auth_failed = True, "connected", False
        self.client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_DELAY)
        self.connects += 1
        self.kick_loop.connected(time.monotonic())
        log.info("MQTT connected to %s:%s as %s (client id %s)", self.target.host, self.target.port, self.base,
                 self.client_id)
        if self.stopping:
            return
        self.publish_retained(self.topic("availability"), "online")
        self.republish_state()
        if self._offline_reported:
            self._offline_reported = False
            self.bus.publish(messages.event(EventType.BROKER_ONLINE, {"broker": self._broker_name()}))
        self.ever_connected = True
        for topic_filter in self.subscriptions:
            self.client.subscribe(topic_filter, qos=1)
        for leaf, payload in self._retained.items():
            self.publish_retained(self.topic(leaf), payload)
        for hook in self._connect_hooks:
            try:
                hook()
            except Exception:
                log.exception("MQTT connect hook failed")
        self._pump()

    async def _retry_later(self, delay: float) -> None:
        await asyncio.to_thread(self.client.loop_stop)
        await asyncio.sleep(delay)
        if self.stopped:
            return
        self.status = "connecting"
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()

    def _disconnected(self, reason: str) -> None:
        if self.stopped:  # our own clean disconnect at shutdown is not an outage
            self.connected = False
            return
        was = self.connected
        self.connected = False
        if self.status == "connected":
            self.status = "disconnected"
        if was:
            self.disconnects += 1
            log.warning("MQTT connection lost (%s); paho reconnects with backoff", reason)
            warning = self.kick_loop.disconnected(time.monotonic(), reason)
            if warning:
                self.status = "kicked_repeatedly"
                log.error("%s", warning)
            self._report_offline(reason)

    def _unreachable(self) -> None:
        if self.status != "auth_failed":
            self.status = "unreachable"
        log.warning("MQTT broker %s unreachable; retrying with backoff", self._broker_name())
        self._report_offline("broker unreachable")

    def _report_offline(self, reason: str) -> None:
        if not self._offline_reported:
            self._offline_reported = True
            self.bus.publish(messages.event(EventType.BROKER_OFFLINE, {
                "broker": self._broker_name(), "reason": reason,
                "effect": "events are kept in the outbox and published when the broker returns"}))

    def _broker_name(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def _puback(self, mid: int) -> None:
        seq = self.inflight.pop(mid, None)
        if seq is None:
            return
        if not self._acked:
            # Acks arriving within 50 ms are marked together: mark_delivered is one transaction, one fsync.
            self.loop.call_later(0.05, self._flush_acks)
        self._acked.append(seq)
        if not self.inflight:
            self._drained.set()
        self._pump()

    def _flush_acks(self) -> None:
        acked, self._acked = self._acked, []
        if acked:
            self.bus.store.mark_delivered(acked)

    def _pump(self) -> None:
        """Hand the next undelivered events to paho, in order, while fewer than max_inflight are out."""
        room = self.max_inflight - len(self.inflight)
        if room <= 0 or self.stopping:
            return
        for seq, payload in self.bus.store.undelivered(self._cursor, room):
            info = self.client.publish(self.topic("events"), payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("paho refused event %s (%s); will retry", seq, info.rc)
                break
            self.inflight[info.mid] = seq
            self._cursor = seq

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

    def _on_state(self, state: dict[str, Any]) -> None:
        payload = orjson.dumps({"device_id": self.bus.device_id, "ts": round(time.time(), 3), **state})
        self._last_state = payload
        self.publish_retained(self.topic("state"), payload)

    def telemetry(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "status": self.status,
            "auth_failed": self.auth_failed,
            "outbox_pending": self.bus.store.undelivered_count(),
            "inflight": len(self.inflight),
            "connects": self.connects,
            "disconnects": self.disconnects,
            "client_id": self.client_id,
            "duplicate_client_id_suspected": self.kick_loop.suspected,
        }
