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

from edge import __version__
from edge.audio.feature import audio_features
from edge.behaviour.diary_feature import DiaryFeature
from edge.behaviour.feature import BehaviourFeature
from edge.behaviour.posture_feature import posture_feature
from edge.config import Config
from edge.core.bus import Bus
from edge.core.device_commands import DeviceCommands
from edge.core.device_report import DeviceReport
from edge.core.feature import Feature, Host, StartupError
from edge.core.models import fetch_all, find_manifest, is_present
from edge.core.store import EventStore
from edge.core.telemetry import StageTimers, system_sample
from edge.media.feature import MediaFeature
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.transports.live import LiveView
from edge.transports.mqtt import HomeAssistantDiscovery, MqttBridge, MqttCommands
from edge.transports.mqtt.peers import MqttPeers
from edge.transports.peerproxy import PeerProxy
from edge.transports.rest import RestApi
from edge.transports.ws import WebSocketHub
from edge.util import clock
from edge.util.homesig import peer_token
from edge.vision.capture import CaptureThread, LatestFrame, resolve_source
from edge.vision.detector import Detector
from edge.vision.gating import DetectGate
from edge.vision.pipeline import FramePipeline
from edge.vision.runtime import create_session
from edge.vision.tracking import DogTracker
from edge.web.access import WebAccess
from edge.web.pairing import device_token, pairing_lines
from edge.web.portcheck import PortInUseError, ensure_port_free
from edge.web.server import WebServer

log = logging.getLogger(__name__)

STORE_CHECK_SECONDS = 2.0  # how soon a deleted data dir or a freed disk is noticed when no event is committed


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
    features.append(DiaryFeature(config))  # get_diary, the finished day retained, unusual_activity
    features.append(MediaFeature(config, LiveView()))  # snapshots, clips, bookmarks, /media, /snapshot.jpg, /ws/video
    features += integration_features(config)
    return features


def integration_features(config: Config) -> list[Feature]:
    """systemd notify: it takes no part in frames."""
    import os

    from edge.system.systemd import SystemdFeature

    out: list[Feature] = []
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
    """The composition root: builds every part in dependency order, starts them, and stops them in reverse."""

    store: EventStore
    bus: Bus
    web: WebServer
    access: WebAccess
    hub: WebSocketHub
    rest: RestApi
    mqtt: MqttBridge | None
    detector: Detector
    features: list[Feature]
    holder: LatestFrame
    pipeline: FramePipeline
    capture: CaptureThread
    inference: InferenceThread
    report: DeviceReport

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self.timers = StageTimers()
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def run(self) -> int:
        self._check_port()
        self._start_clock()
        self._load_detector()
        self._open_store()
        self._build_web()
        self._build_transports()
        self._build_pipeline()
        self._build_report()
        self._attach_features()
        await self._start()
        await self.stopping.wait()
        log.info("stopping")
        await self._shutdown()
        return 0

    def _check_port(self) -> None:
        """Before the model loads and the data dir opens: a second instance fails at once, and says why."""
        try:
            ensure_port_free(self.config.ws_host, self.config.ws_port)
            if self.config.tls != "off" and self.config.setup_port:
                ensure_port_free(self.config.ws_host, self.config.setup_port, "DOGMON_SETUP_PORT")
        except PortInUseError as exc:
            raise StartupError(str(exc)) from None

    def _start_clock(self) -> None:
        """``DOGMON_TEST_CLOCK``: the dog's world starts at the given moment and runs faster (tests only)."""
        start = self.config.test_clock_start
        if start is not None:
            clock.start(*start)
            log.warning("test clock: the device's time starts at %s and runs %gx faster than real time",
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start[0])), start[1])

    def _load_detector(self) -> None:
        ensure_models(self.config)
        self.detector = build_detector(self.config)

    def _open_store(self) -> None:
        """The event store, the bus that numbers and fans out messages, and the device's own commands."""
        config = self.config
        self.store = EventStore(config.data_dir)
        self.bus = Bus(config.device_id, self.store, asyncio.get_running_loop())
        self.bus.timers = self.timers
        self.bus.listeners.append(log_event)
        DeviceCommands(self.bus, self.store, test_events=config.test_events).register()

    def _build_web(self) -> None:
        """The one web server, with the tablets' WebSocket hub and the REST API on it."""
        config = self.config
        self.web = WebServer(config.ws_host, config.ws_port, device_token(config.ws_token, config.data_dir),
                             config.ws_origins, config.ws_max_message_bytes, data_dir=config.data_dir)
        self.access = WebAccess(config, self.web)  # HTTPS, the setup port, mDNS
        self.access.prepare()
        if self.access.scheme == "https":  # origins, Host checks and printed URLs are the HTTPS ones
            self.web.names.schemes = ("https",)
        self.hub = WebSocketHub(self.bus, max_clients=config.ws_max_clients, max_pending=config.ws_max_pending,
                                rate=config.ws_rate, burst=2 * config.ws_rate, web=self.web)
        self.rest = RestApi(self.bus, self.web, config.test_events, rate=config.ws_rate, burst=2 * config.ws_rate,
                            max_body=config.ws_max_message_bytes)

    def _build_transports(self) -> None:
        config = self.config
        self.mqtt = None
        if config.mqtt is not None:  # the MQTT transport and its parts; they start with it, after the features attach
            self.mqtt = mqtt = MqttBridge(self.bus, self.store, config.mqtt, config.mqtt_prefix, config.device_id,
                                          config.mqtt_overlay_hz)
            bus = self.bus
            mqtt.add(MqttCommands(mqtt, bus.dispatch, lambda: bus.handlers, config.device_id,
                                  home_secret=config.home_secret))
            # With discovery off it still runs, to clear the entities it announced before.
            mqtt.add(HomeAssistantDiscovery(mqtt, config, commands=lambda: bus.handlers, features=lambda: self.features,
                                            web_port=lambda: self.hub.port, enabled=config.ha_discovery))
        self._build_peers()

    def _build_peers(self) -> None:
        """The other devices of the home (DOGMON_HOME_SECRET and a broker): their list, their events, commands
        relayed to them, and their pictures through this device's web server."""
        config, mqtt = self.config, self.mqtt
        if mqtt is None or not config.home_secret:
            async def no_peers(command: Any, context: dict[str, Any]) -> dict[str, Any]:
                return {"peers": []}
            self.bus.handle("get_peers", no_peers)
            return
        peers = MqttPeers(mqtt, self.bus, config.mqtt_prefix, config.device_id, config.home_secret,
                          config.device_name or config.device_id, __version__, self._own_urls)
        mqtt.add(peers)
        token = peer_token(config.home_secret)
        self.web.auth.accept_also(token)
        PeerProxy(self.web, peers.peer, token)

    def _own_urls(self) -> list[str]:
        """This device's base URL as the home's network reaches it: the bound address, else the one the broker sees."""
        host = self.config.ws_host
        if host in ("", "0.0.0.0", "::") and self.mqtt is not None:
            host = self.mqtt.local_address() or ""
        if not host:
            return []
        return [f"http://{f'[{host}]' if ':' in host else host}:{self.web.port}/"]

    def _build_pipeline(self) -> None:
        """Capture → newest frame → inference (detect, track, then each feature's stage); nothing runs yet.
        The features are made here and attached once the report they may ask for exists."""
        config = self.config
        self.features = build_features(config)
        self.holder = LatestFrame()
        tracker = DogTracker(absence_seconds=config.absence_seconds)
        self.pipeline = FramePipeline(self.detector, tracker, self.timers, self.features,
                                      gate=build_gate(config, self.detector))
        self.capture = CaptureThread(
            resolve_source(config.source, config.model_dir), self.holder, self._camera_status,
            loop=config.source_loop, realtime=config.source_realtime,
            width=config.capture_width, height=config.capture_height, fps=config.capture_fps,
            stall_seconds=config.camera_stall_seconds, on_frame=lambda: self.timers.tick("capture"),
            analyse=self.pipeline.analyse if self.pipeline.gate.enabled else None)
        self.inference = InferenceThread(self.holder, self.pipeline, self.bus, self.capture)

    def _build_report(self) -> None:
        """The ``connection`` message, ``/healthz``, telemetry and the service manager's status."""
        self.report = DeviceReport(
            bus=self.bus, store=self.store, auth=self.web.auth, timers=self.timers, started=self.started,
            capture=self.capture, inference=self.inference, holder=self.holder, pipeline=self.pipeline,
            hub=self.hub, mqtt=self.mqtt, features=self.features, access_info=self.access.connection_info)
        self.hub.connection_info = self.report.connection_info
        self.web.add_route("/healthz", self.report.healthz, needs_token=False)

    def _attach_features(self) -> None:
        web = self.web
        host = Host(bus=self.bus, store=self.store, web=web, web_port=lambda: web.port, features=self.features,
                    status=self.report.status)
        for feature in self.features:
            feature.attach(host)

    async def _start(self) -> None:
        """Transports first, then the features, then the threads that feed them; then the timers."""
        config, loop = self.config, asyncio.get_running_loop()
        await self.web.start()
        await self.access.start()
        ws = "wss" if self.access.scheme == "https" else "ws"
        log.info("dogmonitor %s: device %s, source %s, WebSocket %s://%s:%d/ws/ui%s; open %s", __version__,
                 config.device_id, self.capture.spec.display, ws, config.ws_host, self.web.port,
                 f", MQTT {config.mqtt.host}:{config.mqtt.port}" if config.mqtt else ", MQTT off",
                 "  ".join(self.access.urls()))
        for line in pairing_lines(self.web.names.urls(), self.web.pairing, self.web.auth.required, qr=True):
            log.log(logging.INFO if self.web.auth.required else logging.WARNING, "%s", line)
        if self.mqtt is not None:
            self.mqtt.start()
        for feature in self.features:
            await feature.start()
        self.capture.start()
        self.inference.start()
        if self.store.degraded:
            self.bus.publish(messages.event(EventType.ERROR, {
                "component": "store", "detail": self.store.degraded,
                "effect": "events are streamed live but lost on restart"}))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self._tasks = [asyncio.create_task(self._telemetry_loop()), asyncio.create_task(self._retention_loop()),
                       asyncio.create_task(self._store_watch())]

    async def _shutdown(self) -> None:
        """Stop in dependency order: timers, producers, features (their last events and command answers),
        clients, the MQTT bridge (acks marked, ``offline`` once), and only then the event store they all
        write to."""
        for task in self._tasks:
            task.cancel()
        self.capture.stop()
        self.inference.stop()
        await asyncio.to_thread(self.inference.join, 1.0)
        for feature in self.features:
            try:
                await feature.stop()
            except Exception:
                log.exception("feature %s failed to stop", feature.name)
        await self.hub.stop()
        await self.access.stop()
        await self.web.stop()
        if self.mqtt is not None:
            await self.mqtt.aclose()
        await asyncio.sleep(0)  # messages other threads posted meanwhile are committed before the store closes
        self.store.close()
        if self.config.test_clock_start is not None:
            clock.reset()   # a device run in-process (the benches) leaves the process on the system's clocks

    async def _retention_loop(self) -> None:
        while True:
            removed = await self.store.prune_async(self.config.event_retention_days, self.config.event_max_rows)
            if removed:
                log.info("event retention removed %d old events", removed)
            await asyncio.sleep(600)

    async def _store_watch(self) -> None:
        """Notice the database file being deleted or replaced, and the event log being writable again after
        a full disk, even while no event is committed."""
        while True:
            await asyncio.sleep(STORE_CHECK_SECONDS)
            self.store.check()
            self.bus.retry_store()

    async def _telemetry_loop(self) -> None:
        while True:
            try:
                system = await asyncio.to_thread(system_sample, self.config.data_dir)
                self.bus.publish(messages.telemetry(self.report.telemetry(system)))
            except Exception:
                log.exception("telemetry sample failed")
            await asyncio.sleep(self.config.telemetry_interval)

    def _camera_status(self, online: bool, info: dict[str, Any]) -> None:
        """Capture-thread callback: turn transitions into events on the bus."""
        kind = EventType.CAMERA_ONLINE if online else EventType.CAMERA_OFFLINE
        self.bus.post(messages.event(kind, info))


async def run_device(config: Config) -> int:
    device = Device(config)
    with contextlib.suppress(asyncio.CancelledError):
        return await device.run()
    return 0
