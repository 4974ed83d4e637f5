"""Test-side clients: collect WebSocket and MQTT messages until a condition holds (real sockets)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.protocol_check import check_mqtt, check_ws

Msg = dict[str, Any]


class CheckedConnection(ClientConnection):
    """A WebSocket client that checks every text message it receives against the published schema."""

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes:
        raw = super().recv(timeout, decode)
        if isinstance(raw, str):  # /ws/ui sends JSON text; /ws/video sends binary JPEG frames
            check_ws(raw)
        return raw


def ws_connect(url: str, token: str | None = None, **kwargs: Any) -> ClientConnection:
    headers = {**(kwargs.pop("additional_headers", None) or {}),
               **({"Authorization": f"Bearer {token}"} if token else {})} or None
    kwargs.setdefault("create_connection", CheckedConnection)
    return connect(url, additional_headers=headers, open_timeout=10, **kwargs)


def ws_collect(ws: ClientConnection, until: Callable[[list[Msg]], bool], timeout: float,
               into: list[Msg] | None = None) -> list[Msg]:
    """Receive messages into a list until ``until(list)`` is true; fail with what arrived on timeout."""
    got: list[Msg] = [] if into is None else into
    deadline = time.monotonic() + timeout
    while not until(got):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout}s; got {summarise(got)}")
        try:
            raw = ws.recv(timeout=remaining)
        except TimeoutError:
            continue
        got.append(orjson.loads(raw))
    return got


def events(msgs: list[Msg], event_type: str | None = None) -> list[Msg]:
    return [m for m in msgs if m.get("type") == "event" and (event_type is None or m["event_type"] == event_type)]


def summarise(msgs: list[Msg]) -> list[str]:
    out = []
    for m in msgs:
        if m.get("type") == "event":
            out.append(f"event#{m.get('seq')}:{m.get('event_type')}")
        elif m.get("type") == "overlay":
            out.append(f"overlay:{m.get('overlay_type')}")
        else:
            out.append(str(m.get("type")))
    return out[-60:]


class MqttCollector:
    """A real paho subscriber on its own network thread; messages land in ``messages`` as (topic, payload)."""

    def __init__(self, host: str, port: int, topics: str | list[str], client_id: str = "",
                 persistent: bool = False, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topics = [topics] if isinstance(topics, str) else topics
        # persistent: a fixed session that the broker keeps (with its queued QoS 1 messages) while we are away
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{time.monotonic_ns()}",
                                  clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.reconnect_delay_set(0.2, 1)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("MQTT test subscriber could not subscribe")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        for topic in self.topics:
            client.subscribe(topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        check_mqtt(message.topic, payload)
        with self.lock:
            self.messages.append((message.topic, payload, bool(message.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def json_on(self, suffix: str) -> list[Msg]:
        return [orjson.loads(p) for t, p, _ in self.snapshot() if t.endswith(suffix) and p]

    def wait_for(self, until: Callable[[MqttCollector], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until(self):
                return
            time.sleep(0.05)
        topics = sorted({t for t, _, _ in self.snapshot()})
        raise AssertionError(f"MQTT: timed out waiting for {what}; topics seen: {topics}; "
                             f"events: {[(e.get('seq'), e.get('event_type')) for e in self.json_on('/events')]}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def recv_until_closed(ws: ClientConnection, timeout: float) -> ConnectionClosed | None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return exc
    except TimeoutError:
        return None
    return None


class EventEmitter(threading.Thread):
    """A WebSocket client that asks the device for ``test`` events at a steady rate (DOGMON_TEST_EVENTS=1).

    ``committed`` holds the seq of every event the device confirmed (it replies only after the commit).
    """

    def __init__(self, url: str, rate: float, blob: int = 0) -> None:
        super().__init__(daemon=True)
        self.url, self.period, self.blob = url, 1.0 / rate, "x" * blob
        self.committed: list[int] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with ws_connect(self.url) as ws:
                i = 0
                while not self.stop_event.is_set():
                    ws.send(orjson.dumps({"type": "emit_test_event", "id": i, "data": {"n": i, "blob": self.blob}}))
                    while True:
                        msg = orjson.loads(ws.recv(timeout=10))
                        if msg["type"] == "reply" and msg["data"]["id"] == i:
                            self.committed.append(msg["data"]["seq"])
                            break
                        if msg["type"] == "error":
                            raise AssertionError(f"emit_test_event refused: {msg}")
                    i += 1
                    self.stop_event.wait(self.period)
        except ConnectionClosed as exc:
            self.error = exc
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> list[int]:
        self.stop_event.set()
        self.join(15)
        return self.committed


class StalledClient:
    """A WebSocket client that really stops reading: a raw socket with a small receive window, driven by
    websockets' sans-I/O protocol, so the kernel applies back-pressure to the device as a frozen tablet would.
    ``drain()`` later reads everything the device managed to send, and the close frame if one came."""

    def __init__(self, host: str, port: int, path: str = "/ws/ui", rcvbuf: int = 4096) -> None:
        from websockets.client import ClientProtocol
        from websockets.http11 import Response
        from websockets.uri import parse_uri

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        self.protocol = ClientProtocol(parse_uri(f"ws://{host}:{port}{path}"), max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.messages: list[Msg] = []
        self.sock.settimeout(10)
        while not any(isinstance(e, Response) for e in self._pump(self.sock.recv(256))):
            pass  # read only as far as the handshake, then stop reading

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _pump(self, data: bytes) -> list:
        from websockets.frames import Frame, Opcode

        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        received = self.protocol.events_received()
        for event in received:
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                check_ws(event.data)
                self.messages.append(orjson.loads(event.data))
        self._flush()
        return received

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(orjson.dumps(message))
        self._flush()

    def drain(self, timeout: float, max_seconds: float = 60.0) -> int | None:
        """Read until the connection ends, ``timeout`` s pass without data, or ``max_seconds`` in all;
        return the close code the device sent (None: no close frame)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + max_seconds
        try:
            while time.monotonic() < deadline:
                data = self.sock.recv(65536)
                self._pump(data)
                if not data:
                    break
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.sock.close()
        close = self.protocol.close_rcvd
        return None if close is None else close.code
