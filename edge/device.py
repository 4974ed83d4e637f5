"""The device process: wires capture, inference, bus, transports and telemetry, and runs them.

Owns the threads and the lifecycle. Runtime model: a capture thread (newest frame only), an
inference thread (detect → track → messages, handed to the loop with ``Bus.post``), paho's network
thread, and the asyncio loop (WebSocket server, telemetry timer, bus). SIGTERM/SIGINT stop capture,
close WebSocket clients with 1001, publish MQTT ``offline`` and return within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge import __version__
from edge.audio.feature import audio_features
from edge.behaviour.feature import BehaviourFeature
from edge.behaviour.posture_feature import posture_feature
from edge.config import Config
from edge.core.bus import Bus
from edge.core.commands import Command, CommandError
from edge.core.feature import DeviceStatus, Feature, Host, StartupError
from edge.core.models import fetch_all, find_manifest, is_present
from edge.core.store import EventStore
from edge.core.telemetry import StageTimers, system_sample
from edge.media.feature import MediaFeature
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.transports.live import LiveView
from edge.transports.mqtt import MqttBridge
from edge.transports.rest import RestApi
from edge.transports.ws import WebSocketHub
from edge.vision.capture import CaptureThread, LatestFrame, resolve_source
from edge.vision.detector import Detector
from edge.vision.gating import DetectGate
from edge.vision.pipeline import FramePipeline
from edge.vision.runtime import create_session
from edge.vision.tracking import DogTracker
from edge.web.auth import authenticated
from edge.web.portcheck import PortInUseError, ensure_port_free
from edge.web.server import WebServer, json_response

log = logging.getLogger(__name__)

STORE_CHECK_SECONDS = 2.0  # how soon a deleted data dir is noticed when no event is being committed


def ensure_models(config: Config, manifest_dir: Path | None = None) -> None:
    """Fetch whatever the manifests name and is missing (from the mirror when configured) before starting.

    The detector is required, and the demo clip when the source is ``demo``; any other model that cannot
    be fetched leaves its stage off with a warning rather than keeping the device from starting.
    "optional" manifests (e.g. YAMNet, which has no download URL) are fetched by the feature that needs them.
    """
    from edge.core.models import MANIFEST_DIR, FetchError, load_manifests

    required = {"detector"} | ({"media"} if config.source == "demo" else set())
    for manifest in load_manifests(manifest_dir or MANIFEST_DIR):
        if manifest.spec.get("optional") or all(is_present(config.model_dir, f) for f in manifest.files):
            continue
        log.info("fetching %s into %s", manifest.name, config.model_dir)
        try:
            fetch_all(config.model_dir, config.mirror, [manifest])
        except FetchError as exc:
            if manifest.kind in required:
                raise
            log.warning("%s; the stage that needs it stays off", exc)


def build_detector(config: Config) -> Detector:
    manifest = find_manifest("detector")
    if manifest is None:
        raise StartupError("no detector manifest in models/")
    session = create_session(config.model_dir / manifest.main_file, config.inference_threads,
                             config.graph_optimization, config.execution_providers)
    try:
        return Detector(session, manifest.spec, config.detect_classes, config.detect_threshold)
    except ValueError as exc:
        raise StartupError(f"DOGMON_DETECT_CLASSES: {exc}") from exc


def build_gate(config: Config, detector: Detector) -> DetectGate:
    """Motion gating from configuration; crops are never smaller than the model's input in source pixels."""
    return DetectGate(idle_seconds=config.detect_idle_seconds, max_fps=config.detect_fps,
                      min_side=max(detector.width, detector.height))


def build_features(config: Config) -> list[Feature]:
    """The optional stages this configuration turns on, in the order they see each frame."""
    features: list[Feature] = []
    features += audio_features(config)  # bark detection: only when DOGMON_AUDIO_SOURCE is set
    features.append(posture_feature(config))  # pose (when a model is installed) and sit/stand/lie events
    features.append(BehaviourFeature(config))  # zones, fetch_return, heat map, activity, analytics (after posture)
    features.append(MediaFeature(config, LiveView()))  # snapshots, clips, bookmarks, /media, /snapshot.jpg, /ws/video
    features += integration_features(config)
    return features


def integration_features(config: Config) -> list[Feature]:
    """MQTT commands, Home Assistant discovery and systemd notify: they take no part in frames."""
    import os

    from edge.system.systemd import SystemdFeature
    from edge.transports.ha_feature import HomeAssistantFeature
    from edge.transports.mqtt_commands import MqttCommandsFeature

    out: list[Feature] = []
    if config.mqtt is not None:
        # With discovery off the feature still runs once to clear entities it announced before.
        out += [MqttCommandsFeature(), HomeAssistantFeature(config, enabled=config.ha_discovery)]
    if os.environ.get("NOTIFY_SOCKET"):
        out.append(SystemdFeature(config))
    return out


event_log = logging.getLogger("edge.events")


def log_event(message: messages.Message) -> None:
    """Bus listener: one INFO line per event in the device's own terminal/journal (a dog seen shows up)."""
    if message.is_event:
        event_log.info("event %s", messages.event_summary(str(message.event_type), message.seq, message.data))


class InferenceThread(threading.Thread):
    """Takes the newest frame, runs the pipeline, posts messages; watches for a stalled camera."""

    def __init__(self, holder: LatestFrame, pipeline: FramePipeline, bus: Bus, capture: CaptureThread) -> None:
        super().__init__(name="inference", daemon=True)
        self.holder, self.pipeline, self.bus, self.capture = holder, pipeline, bus, capture
        self.stop_event = threading.Event()
        self.frames = 0
        self.last_progress = time.monotonic()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            frame = self.holder.get(timeout=0.5)
            now = time.monotonic()
            self.last_progress = now
            try:
                if frame is None:
                    out = self.pipeline.idle(now)
                    last = self.capture.last_frame_at
                    if self.capture.online and last is not None and now - last > self.capture.stall_seconds:
                        self.capture.mark_stalled()
                else:
                    out = self.pipeline.process(frame)
                    self.frames += 1
            except Exception:  # a bad frame or model error must not end inference for good
                log.exception("pipeline failed on a frame")
                self.stop_event.wait(0.5)
                continue
            for message in out:
                self.bus.post(message)


class Device:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self.timers = StageTimers()
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        try:  # before the model loads and the data dir opens: a second instance fails at once, and says why
            ensure_port_free(config.ws_host, config.ws_port)
        except PortInUseError as exc:
            raise StartupError(str(exc)) from None
        ensure_models(config)
        detector = build_detector(config)
        self.store = store = EventStore(config.data_dir)
        self.bus = bus = Bus(config.device_id, store, loop)
        bus.timers = self.timers
        bus.listeners.append(log_event)
        self.web = WebServer(config.ws_host, config.ws_port, config.ws_token, config.ws_origins,
                             config.ws_max_message_bytes)
        self.hub = WebSocketHub(bus, max_clients=config.ws_max_clients, connection_info=self.connection_info,
                                max_pending=config.ws_max_pending, rate=config.ws_rate, burst=2 * config.ws_rate,
                                web=self.web)
        self.rest = RestApi(bus, self.web, config.test_events, rate=config.ws_rate, burst=2 * config.ws_rate,
                            max_body=config.ws_max_message_bytes)
        bus.handle("emit_test_event", self._cmd_emit_test_event)
        bus.handle("get_events", self._cmd_get_events)
        bus.handle("get_state", self._cmd_get_state)
        self.web.add_route("/healthz", self._http_health, needs_token=False)
        self.mqtt = None
        if config.mqtt is not None:
            self.mqtt = MqttBridge(bus, config.mqtt, config.mqtt_prefix, config.device_id, config.mqtt_overlay_hz)
        holder = LatestFrame()
        self.holder = holder
        spec = resolve_source(config.source, config.model_dir)
        tracker = DogTracker(absence_seconds=config.absence_seconds)
        self.features = build_features(config)
        host = Host(bus, store, self.web, lambda: self.hub.port, lambda: self.features, self.status, self.mqtt)
        for feature in self.features:
            feature.attach(host)
        self.pipeline = FramePipeline(detector, tracker, self.timers, self.features, gate=build_gate(config, detector))
        self.capture = CaptureThread(
            spec, holder, self._camera_status, loop=config.source_loop, realtime=config.source_realtime,
            width=config.capture_width, height=config.capture_height, fps=config.capture_fps,
            stall_seconds=config.camera_stall_seconds, on_frame=lambda: self.timers.tick("capture"),
            analyse=self.pipeline.analyse if self.pipeline.gate.enabled else None)
        self.inference = InferenceThread(holder, self.pipeline, bus, self.capture)

        await self.web.start()
        log.info("dogmonitor %s: device %s, source %s, WebSocket ws://%s:%d/ws/ui%s", __version__,
                 config.device_id, spec.display, config.ws_host, self.hub.port,
                 f", MQTT {config.mqtt.host}:{config.mqtt.port}" if config.mqtt else ", MQTT off")
        if self.mqtt is not None:
            self.mqtt.start()
        for feature in self.features:
            await feature.start()
        self.capture.start()
        self.inference.start()
        if store.degraded:
            bus.publish(messages.event(EventType.ERROR, {
                "component": "store", "detail": store.degraded,
                "effect": "events are streamed live but lost on restart"}))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        tasks = [asyncio.create_task(self._telemetry_loop()), asyncio.create_task(self._retention_loop()),
                 asyncio.create_task(self._store_watch())]
        await self.stopping.wait()
        log.info("stopping")
        for task in tasks:
            task.cancel()
        await self._shutdown()
        return 0

    async def _shutdown(self) -> None:
        """Stop in dependency order: producers, features (their last events and command answers), clients,
        the MQTT bridge (acks marked, ``offline`` once), and only then the event store they all write to."""
        self.capture.stop()
        self.inference.stop()
        await asyncio.to_thread(self.inference.join, 1.0)
        for feature in self.features:
            try:
                await feature.stop()
            except Exception:
                log.exception("feature %s failed to stop", feature.name)
        await self.hub.stop()
        await self.web.stop()
        if self.mqtt is not None:
            await self.mqtt.aclose()
        await asyncio.sleep(0)  # messages other threads posted meanwhile are committed before the store closes
        self.store.close()

    async def _cmd_emit_test_event(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        """The seed's test broadcast: a ``test`` event through exactly the path real events take."""
        if not self.config.test_events:
            raise CommandError("disabled", "test events are off; set DOGMON_TEST_EVENTS=1 to allow them")
        message = messages.event(EventType.TEST, {**command.args["data"], "origin": context.get("transport")})
        self.bus.publish(message)
        return {"seq": message.seq}

    async def _cmd_get_events(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        args = command.args
        rows = self.store.events(args["since"], args["limit"], args["event_types"], args["from_ts"], args["to_ts"])
        return {"events": [orjson.Fragment(payload) for _, payload in rows],
                "last_seq": self.store.last_seq, "first_seq": self.store.first_seq()}

    async def _cmd_get_state(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return {"state": self.bus.state.snapshot(), "last_seq": self.store.last_seq}

    async def _retention_loop(self) -> None:
        while True:
            removed = await self.store.prune_async(self.config.event_retention_days, self.config.event_max_rows)
            if removed:
                log.info("event retention removed %d old events", removed)
            await asyncio.sleep(600)

    async def _store_watch(self) -> None:
        """Notice the database file being deleted or replaced even while no event is committed."""
        while True:
            await asyncio.sleep(STORE_CHECK_SECONDS)
            self.store.check()

    def _camera_status(self, online: bool, info: dict[str, Any]) -> None:
        """Capture-thread callback: turn transitions into events on the bus."""
        kind = EventType.CAMERA_ONLINE if online else EventType.CAMERA_OFFLINE
        self.bus.post(messages.event(kind, info))

    def connection_info(self) -> dict[str, Any]:
        size = self.capture.frame_size or (0, 0)
        return {
            "device_id": self.config.device_id,
            "software_version": __version__,
            "frame": {"w": size[0], "h": size[1]},
            "state": self.bus.state.snapshot(),
            "last_seq": self.store.last_seq,
            "source": self.capture.spec.display,
            **{k: v for f in self.features for k, v in f.connection_info().items()},
        }

    def _http_health(self, request: Request) -> Response:
        """Status for anyone (a load balancer, a curl); the problems, which name paths, only with the token."""
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
            "device_id": self.config.device_id,
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
        return {
            **system,
            "pipeline": {
                "capture_fps": self.timers.rate("capture"),
                "source_fps": round(self.capture.source_fps, 2),
                "inference_fps": self.timers.rate("inference"),
                "frames_processed": self.inference.frames,
                "dropped_frames": self.holder.dropped,
                "latency_ms": self.timers.percentiles(),
            },
            "detect": self.pipeline.gating_telemetry(),
            "camera": {"online": self.capture.online, "source": self.capture.spec.display,
                       "reconnects": self.capture.reconnects, "reason": self.capture.offline_reason},
            "websocket": {"clients": len(self.hub.clients), "slow_closed": self.hub.slow_closed},
            "mqtt": self.mqtt.telemetry() if self.mqtt is not None else None,
            **{f.name: f.telemetry() for f in self.features},
            "store": {"ok": not self.bus.store_failing and not self.store.problems(), "degraded": self.store.degraded,
                      "write_errors": self.store.write_errors, "last_seq": self.store.last_seq,
                      "recreated": self.store.recreated, "problem": self.store.problem},
        }

    async def _telemetry_loop(self) -> None:
        while True:
            try:
                system = await asyncio.to_thread(system_sample, self.config.data_dir)
                self.bus.publish(messages.telemetry(self.telemetry(system)))
            except Exception:
                log.exception("telemetry sample failed")
            await asyncio.sleep(self.config.telemetry_interval)


async def run_device(config: Config) -> int:
    device = Device(config)
    with contextlib.suppress(asyncio.CancelledError):
        return await device.run()
    return 0
