"""What the running device says about itself: the ``connection`` message, ``/healthz``, telemetry and the
status the service manager watches, each assembled from the parts that know it.

The parts are described here by what is read of them (the capture and inference threads, the frame holder,
the vision pipeline, the WebSocket hub, the MQTT bridge), so this module stays below the layers that build
them; ``edge.device`` passes the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence, Sized
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from edge import __version__
from edge.core.bus import Bus
from edge.core.feature import DeviceStatus, Feature
from edge.core.store import EventStore
from edge.core.telemetry import StageTimers
from edge.web.auth import Auth, authenticated
from edge.web.server import json_response


class Source(Protocol):
    @property
    def display(self) -> str: ...


class Capture(Protocol):
    @property
    def spec(self) -> Source: ...
    @property
    def online(self) -> bool | None: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def offline_reason(self) -> str | None: ...
    @property
    def source_fps(self) -> float: ...
    @property
    def frame_size(self) -> tuple[int, int] | None: ...
    @property
    def ident(self) -> int | None: ...
    def is_alive(self) -> bool: ...


class Inference(Protocol):
    @property
    def frames(self) -> int: ...
    @property
    def last_progress(self) -> float: ...


class Holder(Protocol):
    @property
    def dropped(self) -> int: ...


class Pipeline(Protocol):
    def gating_telemetry(self) -> dict[str, Any]: ...


class Hub(Protocol):
    @property
    def clients(self) -> Sized: ...
    @property
    def slow_closed(self) -> int: ...


class Broker(Protocol):
    @property
    def connected(self) -> bool: ...
    @property
    def status(self) -> str: ...
    def telemetry(self) -> dict[str, Any]: ...
    def parts_telemetry(self) -> dict[str, Any]: ...


class DeviceReport:
    def __init__(self, *, bus: Bus, store: EventStore, auth: Auth, timers: StageTimers, started: float,
                 capture: Capture, inference: Inference, holder: Holder, pipeline: Pipeline, hub: Hub,
                 mqtt: Broker | None, features: Sequence[Feature],
                 access_info: Callable[[], dict[str, Any]] = dict) -> None:
        self.bus, self.store, self.auth, self.timers, self.started = bus, store, auth, timers, started
        self.capture, self.inference, self.holder, self.pipeline = capture, inference, holder, pipeline
        self.hub, self.mqtt, self.features = hub, mqtt, features
        self.access_info = access_info  # how the device is reached (the web layer's, given by the device)

    def connection_info(self) -> dict[str, Any]:
        """The data of the ``connection`` message each WebSocket client gets first."""
        size = self.capture.frame_size or (0, 0)
        return {
            "device_id": self.bus.device_id,
            "software_version": __version__,
            "frame": {"w": size[0], "h": size[1]},
            "state": self.bus.state.snapshot(),
            "last_seq": self.store.last_seq,
            "source": self.capture.spec.display,
            **{k: v for f in self.features for k, v in f.connection_info().items()},
            **self.access_info(),
        }

    def healthz(self, request: Request) -> Response:
        """``GET /healthz`` for anyone (a load balancer, a curl); the problems, which name paths, only with
        the token."""
        health = self.health()
        if not authenticated(request):
            health = {"status": health["status"]}
        return json_response(health)

    def health(self) -> dict[str, Any]:
        problems = []
        if not self.capture.online:
            problems.append("camera offline")
        if self.mqtt is not None and not self.mqtt.connected:
            problems.append("broker disconnected")
        if self.bus.store_failing:
            problems.append("event log not writable")
        problems += self.store.problems()
        for feature in self.features:
            problems += feature.problems()
        return {
            "status": "ok" if not problems else "degraded",
            "problems": problems,
            "device_id": self.bus.device_id,
            "software_version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "last_seq": self.store.last_seq,
            "clients": len(self.hub.clients),
        }

    def status(self) -> DeviceStatus:
        capture, inference = self.capture, self.inference
        return DeviceStatus(frames=inference.frames, reconnects=capture.reconnects,
                            inference_beat=inference.last_progress, camera_online=bool(capture.online),
                            capture_alive=capture.ident is None or capture.is_alive(),
                            inference_fps=self.timers.rate("inference"), clients=len(self.hub.clients),
                            mqtt_status=self.mqtt.status if self.mqtt is not None else None)

    def telemetry(self, system: dict[str, Any]) -> dict[str, Any]:
        """The ``telemetry`` message's data: ``system`` (CPU, memory, disk …) and every part's figures."""
        capture, store = self.capture, self.store
        return {
            **system,
            "health": self.health()["status"],  # what the other devices of the home show for this one
            "pipeline": {
                "capture_fps": self.timers.rate("capture"),
                "source_fps": round(capture.source_fps, 2),
                "inference_fps": self.timers.rate("inference"),
                "frames_processed": self.inference.frames,
                "dropped_frames": self.holder.dropped,
                "latency_ms": self.timers.percentiles(),
            },
            "detect": self.pipeline.gating_telemetry(),
            "camera": {"online": capture.online, "source": capture.spec.display,
                       "reconnects": capture.reconnects, "reason": capture.offline_reason},
            "websocket": {"clients": len(self.hub.clients), "slow_closed": self.hub.slow_closed},
            "mqtt": self.mqtt.telemetry() if self.mqtt is not None else None,
            **(self.mqtt.parts_telemetry() if self.mqtt is not None else {}),
            **{f.name: f.telemetry() for f in self.features},
            "store": {"ok": not self.bus.store_failing and not store.problems(), "degraded": store.degraded,
                      "write_errors": store.write_errors, "last_seq": store.last_seq,
                      "recreated": store.recreated, "problem": store.problem},
        }
