"""What a feature sees of the running device: :class:`Host`, the narrow interface handed to ``Feature.attach``.

A feature registers commands, listens to outgoing messages, publishes messages and state (retained state
included, as a bus message each transport maps), adds HTTP routes and WebSocket paths on the one web server,
runs hooks when the broker (re)connects, and stores its own values through :class:`FeatureStore`. It never
gets the ``Device``, the WebSocket hub, the store's SQLite connection or the MQTT bridge's hook lists; the
MQTT-side integrations (Home Assistant discovery, MQTT commands: parts of that transport) get the bridge
itself as ``Host.mqtt``. Built by ``edge.app.Device``; this module imports nothing of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from edge import messages
from edge.bus import Bus, Handler
from edge.media.index import MediaIndex
from edge.messages import Message
from edge.store import EventStore
from edge.web.server import WebHost

if TYPE_CHECKING:
    from edge.features import Feature
    from edge.transports.mqtt import MqttBridge

F = TypeVar("F")


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceStatus:
    """How the pipeline is doing, for the service manager (systemd notify)."""

    frames: int               # frames processed by the inference thread
    reconnects: int           # capture reconnect attempts
    inference_beat: float     # monotonic time the inference loop last went round
    camera_online: bool
    capture_alive: bool       # the capture thread is running (or not started yet)
    inference_fps: float
    clients: int              # WebSocket clients on /ws/ui
    mqtt_status: str | None   # None with MQTT off


class FeatureStore:
    """The event store as features use it: named values (``meta``), the media index, news of a recreated file."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._store.get_meta(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self._store.set_meta(key, value)

    def media_index(self) -> MediaIndex:
        """The media index on the current database (ask again after ``on_recreated``: the file is new)."""
        return MediaIndex(self._store.db)

    def on_recreated(self, callback: Callable[[str], None]) -> None:
        """``callback(detail)`` on the loop after the database file vanished and a new one was opened."""
        self._store.on_recreated.append(callback)


class Host:
    """The device as a feature sees it (loop thread, unless a method says otherwise)."""

    def __init__(self, bus: Bus, store: EventStore, web: WebHost, web_port: Callable[[], int],
                 features: Callable[[], Sequence[Feature]], status: Callable[[], DeviceStatus],
                 mqtt: MqttBridge | None = None) -> None:
        self._bus = bus
        self.device_id = bus.device_id
        self.loop: asyncio.AbstractEventLoop = bus.loop
        self.web = web
        self.store = FeatureStore(store)
        self.mqtt = mqtt
        self._web_port, self._features, self._status = web_port, features, status

    # --- commands and messages ---
    def handle(self, name: str, handler: Handler) -> None:
        """Answer the command ``name`` on every transport (WebSocket, REST, MQTT)."""
        self._bus.handle(name, handler)

    def commands(self) -> set[str]:
        return set(self._bus.handlers)

    def listen(self, listener: Callable[[Message], None]) -> None:
        """``listener(message)`` for every message published, after the transports took it."""
        self._bus.listeners.append(listener)

    def publish(self, message: Message) -> None:
        self._bus.publish(message)

    def post(self, message: Message) -> None:
        """Any thread: hand a message to the loop."""
        self._bus.post(message)

    def publish_retained(self, key: str, content: Message | bytes) -> None:
        """Newest value of retained state ``key`` that is no message of its own (e.g. the newest snapshot's
        JPEG); a message that is one is published with its ``retain`` field set instead."""
        self._bus.publish(messages.retained(key, content))

    def update_state(self, **values: Any) -> None:
        self._bus.update_state(**values)

    def post_state(self, **values: Any) -> None:
        """Any thread: set state keys on the loop."""
        self.loop.call_soon_threadsafe(functools.partial(self._bus.update_state, **values))

    def on_connect(self, hook: Callable[[], None]) -> None:
        """``hook()`` after each broker (re)connect; nothing happens with MQTT off."""
        if self.mqtt is not None:
            self.mqtt.on_connect(hook)

    # --- the rest of the device ---
    @property
    def web_port(self) -> int:
        return self._web_port()

    def features(self) -> Sequence[Feature]:
        return self._features()

    def feature(self, kind: type[F]) -> F | None:
        """The attached feature of this class, if it is on."""
        return next((f for f in self._features() if isinstance(f, kind)), None)

    def status(self) -> DeviceStatus:
        return self._status()
