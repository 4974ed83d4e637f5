"""The extension surface for optional stages (posture, zones, audio, media, Home Assistant …).

A :class:`Feature` is attached once the bus and transports exist, and sees the device only through
:class:`Host` (commands, messages and retained state, routes, reconnect hooks, its store).
It may take part in each frame (``process``, on the inference thread, after tracking), in idle ticks, in
the WebSocket ``connection`` message and in telemetry, and may register commands. Slow work (file
writes, folder scans, encoding, model runs) stays off the event loop, on the feature's own threads or
``asyncio.to_thread``; on the loop a feature does only small SQLite statements on the event store's
connection (the media index, analytics in ``meta``) and single metadata calls such as ``mkdir``.

What a feature sees of the running device is :class:`Host`:

A feature registers commands, listens to outgoing messages, publishes messages and state (retained state
included, as a bus message each transport maps), adds HTTP routes and WebSocket paths on the one web server,
and stores its own values through :class:`FeatureStore`. It never gets the ``Device``, the WebSocket hub, the
store's SQLite connection or a transport (Home Assistant discovery and MQTT commands are parts of the MQTT
transport, not features). Built by ``edge.device.Device``; this module imports nothing of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from edge.core.bus import Bus, Handler
from edge.core.frames import Detection, Frame, Track
from edge.core.store import EventStore
from edge.protocol import messages
from edge.protocol.messages import Message
from edge.web.server import WebHost


@dataclasses.dataclass(slots=True)
class FrameContext:
    """What the vision stages produced for one frame, for features to build on."""

    frame: Frame
    detections: list[Detection]   # every box this frame (dogs labelled "dog", toys by their label)
    tracks: list[Track]           # live dog tracks after this frame (confirmed or not)
    present: bool                 # dog presence after this frame
    detected: bool = True         # the detector ran on this frame (motion gating skips still frames)
    seen_at: float | None = None  # frame time of the last detector run (this frame's when ``detected``)

    @property
    def now(self) -> float:
        return self.frame.captured

    @property
    def wall(self) -> float:
        return self.frame.wall

    @property
    def size(self) -> tuple[int, int]:
        return self.frame.image.shape[1], self.frame.image.shape[0]

    def seen_tracks(self) -> list[Track]:
        """Confirmed tracks matched at the last detector run (this very frame unless the gate skipped it)."""
        return [t for t in self.tracks if t.confirmed and t.last_seen == self.seen_time]

    @property
    def seen_time(self) -> float:
        return self.frame.captured if self.detected or self.seen_at is None else self.seen_at


class StartupError(RuntimeError):
    """The device cannot start (models missing and not fetchable …); the message says what to do."""


class Feature:
    """No-op defaults; subclasses override what they need."""

    name = "feature"

    def attach(self, host: Host) -> None:
        """Called on the loop before threads start: register commands, listeners, HTTP routes."""

    async def start(self) -> None:
        """Called on the loop after the transports started."""

    async def stop(self) -> None:
        """Called on shutdown, before the transports stop."""

    def process(self, ctx: FrameContext) -> list[Message]:
        """Inference thread: called for every captured frame after tracking, whether or not the detector ran
        on it (``ctx.detected``); on a skipped frame the tracks are as the last detector run left them."""
        return []

    def idle(self, now: float) -> list[Message]:
        """Inference thread: called about twice a second when no frame came."""
        return []

    def connection_info(self) -> dict[str, Any]:
        """Merged into the ``connection`` message's data."""
        return {}

    def telemetry(self) -> dict[str, Any]:
        """Merged into telemetry under the feature's ``name``."""
        return {}

    def problems(self) -> list[str]:
        """Short phrases for ``/healthz`` (e.g. "microphone offline"); empty when healthy."""
        return []


F = TypeVar("F")
T = TypeVar("T")


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

    def events_between(self, from_ts: float, to_ts: float, types: Sequence[str] | None = None,
                       after_seq: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """One page of stored events with ``from_ts <= ts <= to_ts`` and seq above ``after_seq``, oldest seq
        first, as their envelopes (``type`` is the event type); page on with the last one's seq. Loop
        thread only: callers yield to the loop between pages."""
        rows = self._store.events(after_seq, limit, types, since_ts=from_ts, until_ts=to_ts)
        out = []
        for seq, payload in rows:
            envelope = orjson.loads(payload)
            out.append({"seq": seq, "type": envelope.get("event_type"), "ts": envelope.get("ts"),
                        "data": envelope.get("data") or {}})
        return out

    def table(self, accessor: Callable[[sqlite3.Connection], T]) -> T:
        """``accessor(connection)`` on the current database: a feature's own table object, such as the media
        index (ask again after ``on_recreated``: the file is new). Loop thread only, small statements only."""
        return accessor(self._store.db)

    def on_recreated(self, callback: Callable[[str], None]) -> None:
        """``callback(detail)`` on the loop after the database file vanished and a new one was opened."""
        self._store.on_recreated.append(callback)


class Host:
    """The device as a feature sees it (loop thread, unless a method says otherwise)."""

    def __init__(self, *, bus: Bus, store: EventStore, web: WebHost, web_port: Callable[[], int],
                 features: Sequence[Feature], status: Callable[[], DeviceStatus]) -> None:
        self._bus = bus
        self.device_id = bus.device_id
        self.loop: asyncio.AbstractEventLoop = bus.loop
        self.web = web
        self.store = FeatureStore(store)
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

    # --- the rest of the device ---
    @property
    def web_port(self) -> int:
        return self._web_port()

    def features(self) -> Sequence[Feature]:
        return self._features

    def feature(self, kind: type[F]) -> F | None:
        """The attached feature of this class, if it is on."""
        return next((f for f in self._features if isinstance(f, kind)), None)

    def status(self) -> DeviceStatus:
        return self._status()
