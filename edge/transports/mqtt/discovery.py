"""Home Assistant discovery, a part of the MQTT transport: publishes the configs from :mod:`.ha` over MQTT.

Owns when discovery is (re)sent and what is removed. On every broker connect it publishes the
retained configs, then the retained state and telemetry again so new entities get values at once.
When Home Assistant announces ``online`` on ``<ha_prefix>/status`` (it restarted) the configs are sent
again after a short random delay, so a house full of devices does not answer in the same instant.

Removal is reconciled against the broker, not remembered: it subscribes to its own node's
config topics, and any retained config the broker still holds that is no longer wanted (a deleted zone,
a feature switched off, or everything when ``DOGMON_HA_DISCOVERY=0``) is cleared with an empty retained
payload, which is how Home Assistant is told to remove an entity. This also works across restarts.

Dog events are mirrored to ``{prefix}/{id}/ha_event`` as ``{"event_type": …}`` for the ``event`` entity,
whose ``event_types`` follow what the device has now: presence, posture while a posture stage runs, zone
events while there are zones, and any other dog event once one happened. Entities for hardware the device
may lack (CPU temperature) wait for the first telemetry: announced if it has a value, removed if not.

The device builds it with the bridge, the configuration and what discovery describes: the device's
commands (buttons), its features (posture options and zones, read when the bridge starts) and its web port
(the entities' configuration link).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Sequence
from typing import Any

import orjson

from edge import __version__
from edge.config import Config
from edge.protocol.messages import Message, MessageType, OverlayType
from edge.transports.mqtt import ha
from edge.transports.mqtt.bridge import BridgePart, MqttBridge
from edge.web.local import web_scheme

log = logging.getLogger(__name__)

POSTURE_EVENT_TYPES = ha.POSTURE_EVENT_TYPES
ZONE_EVENT_TYPES = ha.ZONE_EVENT_TYPES


class HomeAssistantDiscovery(BridgePart):
    name = "home_assistant"

    def __init__(self, bridge: MqttBridge, config: Config, *, commands: Callable[[], Collection[str]],
                 features: Callable[[], Sequence[object]], web_port: Callable[[], int], enabled: bool = True,
                 resend_delay: tuple[float, float] = (0.5, 3.0)) -> None:
        self.bridge, self.config = bridge, config
        self.commands, self.features, self.web_port = commands, features, web_port
        self.enabled = enabled
        self.resend_delay = resend_delay
        self.ha_prefix: str = getattr(config, "ha_prefix", "homeassistant")
        self.posture_options: list[str] | None = None
        self.zones: list[tuple[str, str]] | None = None
        self.seen_event_types: list[str] = []  # dog events of stages that announce nothing else (fetch, bark …)
        self.optional_diagnostics: set[str] | None = None  # None until the first telemetry says what there is
        self.wanted: dict[str, dict[str, Any]] = {}
        self.published = 0
        self.removed = 0
        self.discovery_sends = 0
        self.started = False  # nothing is published or removed before every stage said what it offers
        self.broker_held: set[str] = set()  # retained configs the broker reported for this node
        self._resend_pending = False
        bridge.subscribe(f"{self.ha_prefix}/+/{self.info().node_id}/+/config", self._on_existing_config)
        if enabled:
            bridge.subscribe(f"{self.ha_prefix}/status", self._on_ha_status)

    # --- BridgePart ---
    def start(self) -> None:
        # Every feature is attached by now: learn what the optional stages offer, before the first connect
        # (connect_async only connects on paho's thread, after this loop turn).
        for feature in self.features():
            options = getattr(feature, "posture_options", None)
            if options:
                self.posture_options = [str(o) for o in options]
            zones = getattr(feature, "zones", None)
            if zones and all(hasattr(z, "name") for z in zones):
                self.zones = [(z.name, z.name) for z in zones]
        self.started = True
        if self.bridge.connected:
            self.publish_discovery()

    def connected(self) -> None:
        self.publish_discovery()

    def deliver(self, message: Message) -> None:
        if self.enabled:
            self._on_message(message)

    def telemetry(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "entities": len(self.wanted), "discovery_sends": self.discovery_sends,
                "removed": self.removed}

    # --- what other features call (loop thread) ---
    def set_posture_options(self, options: list[str] | None) -> None:
        self.posture_options = list(options) if options else None
        self.publish_discovery()

    def set_zones(self, zones: list[tuple[str, str]] | None) -> None:
        """Zones as ``(zone_id, display name)``; entities of vanished zones are removed."""
        self.zones = list(zones) if zones else None
        self.publish_discovery()

    def event_types(self) -> list[str]:
        """The dog events the device can fire now (the HA event entity's ``event_types``)."""
        types = list(ha.PRESENCE_EVENT_TYPES)
        if self.posture_options:
            types += POSTURE_EVENT_TYPES
        if self.zones:
            types += ZONE_EVENT_TYPES
        return types + [t for t in self.seen_event_types if t not in types]

    # --- discovery ---
    def info(self) -> ha.DeviceInfo:
        url = None
        address = self.bridge.local_address()
        if address:
            name = f"[{address}]" if ":" in address else address
            url = f"{web_scheme(self.config)}://{name}:{self.web_port()}/healthz"
        return ha.DeviceInfo(device_id=self.config.device_id, mqtt_prefix=self.config.mqtt_prefix,
                             ha_prefix=self.ha_prefix, sw_version=__version__, configuration_url=url,
                             telemetry_interval=self.config.telemetry_interval)

    def desired(self) -> dict[str, dict[str, Any]]:
        if not self.enabled:
            return {}
        return ha.discovery(self.info(), posture_options=self.posture_options, zones=self.zones,
                            commands=set(self.commands()), event_types=self.event_types(),
                            optional_diagnostics=self.optional_diagnostics or ())

    def undecided(self) -> set[str]:
        """Configs neither wanted nor unwanted yet: optional diagnostics before the first telemetry."""
        if self.optional_diagnostics is not None or not self.enabled:
            return set()
        return ha.diagnostic_topics(self.info(), ha.OPTIONAL_DIAGNOSTICS)

    def publish_discovery(self) -> None:
        """Publish every wanted config (retained), clear dropped ones, then re-send state for the new entities."""
        bridge = self.bridge
        if not bridge.connected or not self.started:
            return
        previous = (set(self.wanted) | self.broker_held) - self.undecided()
        self.wanted = self.desired()
        for topic in ha.removals(previous, self.wanted):
            self._clear(topic)
        for topic, payload in self.wanted.items():
            bridge.publish_retained(topic, orjson.dumps(payload))
            self.published += 1
        if self.wanted:
            self.discovery_sends += 1
            log.info("Home Assistant discovery: %d entities under %s/…/%s", len(self.wanted), self.ha_prefix,
                     self.info().node_id)
            bridge.republish_state()

    def _clear(self, topic: str) -> None:
        if self.bridge.publish_retained(topic, b""):
            self.broker_held.discard(topic)
            self.removed += 1
            log.info("Home Assistant discovery: removed %s", topic)

    def _on_existing_config(self, topic: str, payload: bytes, retained: bool) -> None:
        # A retained config the broker holds for this node (it arrives on subscribe). One we no longer want is
        # cleared now, or at the first publish if it came before every stage had started. Our own live
        # publishes echo back unretained and are ignored; empty payloads are removals already done.
        if not payload:
            self.broker_held.discard(topic)
            return
        if not (retained or not self.enabled):
            return
        self.broker_held.add(topic)
        if self.started and topic not in self.wanted and topic not in self.undecided():
            self._clear(topic)

    def _on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip().lower() != b"online" or self._resend_pending:
            return
        self._resend_pending = True
        delay = random.uniform(*self.resend_delay)
        log.info("Home Assistant came online; re-sending discovery in %.1fs", delay)
        self.bridge.loop.call_later(delay, self._resend)

    def _resend(self) -> None:
        self._resend_pending = False
        self.publish_discovery()

    # --- what the device has, and the event entity ---
    def _on_telemetry(self, data: dict[str, Any]) -> None:
        # Sticky once seen: a sensor that misses one reading keeps its entity (it goes unknown meanwhile).
        found = ha.reported_optional(data) | (self.optional_diagnostics or set())
        if found != self.optional_diagnostics:
            self.optional_diagnostics = found
            self.publish_discovery()

    def _on_message(self, message: Message) -> None:
        if message.type is MessageType.TELEMETRY:
            self._on_telemetry(message.data)
            return
        if message.type is MessageType.OVERLAY and message.overlay_type is OverlayType.ZONES:
            names = [str(z["name"]) for z in message.data.get("zones", []) if isinstance(z, dict) and "name" in z]
            if [n for n, _ in self.zones or []] != names:
                self.set_zones([(n, n) for n in names])
            return
        if not message.is_event:
            return
        kind = str(message.event_type)
        if kind not in ha.DOG_EVENT_TYPES:
            return
        if kind in POSTURE_EVENT_TYPES and not self.posture_options:
            # A posture stage that did not announce ``posture_options``: its events tell us it exists.
            self.posture_options = list(POSTURE_EVENT_TYPES)
            self.publish_discovery()
        elif kind not in self.event_types() and kind not in ZONE_EVENT_TYPES:
            self.seen_event_types.append(kind)
            self.publish_discovery()  # a stage we did not know about fires a new kind of dog event
        if kind not in self.event_types():
            return  # a zone event after the last zone went: HA would refuse a type its entity does not list
        data = {k: v for k, v in message.data.items() if isinstance(v, str | int | float | bool) or v is None}
        payload = {"event_type": kind, "seq": message.seq, "ts": round(message.ts, 3), **data}
        self.bridge.publish(self.bridge.topic("ha_event"), orjson.dumps(payload), qos=1)
