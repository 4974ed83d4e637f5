"""Home Assistant MQTT discovery, described as data.

Owns what Home Assistant is told about a device: pure builder functions that return
``{discovery topic: config payload}`` dicts (tested directly, no broker needed). Per-entity discovery
is used (``<ha_prefix>/<component>/dogmonitor_<id>/<object_id>/config``) because it lets one entity —
a zone that was deleted, a feature that was switched off — be removed on its own with an empty
retained config, and it works with every Home Assistant release that has MQTT discovery.

Every entity belongs to one HA device per dogmonitor device, is available only while
``{prefix}/{id}/availability`` says ``online``, and reads topics the device already publishes:
``state`` (retained JSON: ``presence``, ``posture``, ``zones_occupied`` …), ``telemetry`` (retained envelope
with ``data.cpu_percent`` …), ``cmd/result`` (the answer to every MQTT command) and ``ha_event``
(``{"event_type": …}``, published by :class:`~edge.transports.mqtt.discovery.HomeAssistantDiscovery`).
Unique ids are derived from the device id (and, for zones, the zone's name) only, so they are stable across
restarts and distinct between devices.

Templates are written for the oldest Home Assistant this is checked against (2024.3, ``scripts/ha-check``):
its MQTT sensor turns a rendered ``None`` into *unknown* only for numeric sensors and drops an ``options``
key from a sensor's config, so the posture sensor renders ``unknown`` itself and lists its options as an
attribute.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection
from typing import Any

from edge.protocol.events import event_types

# Dog events that the HA `event` entity can fire (declared in edge.protocol.events); the device's other
# events (broker, camera, errors) are not the dog's and stay on the raw `events` topic.
DOG_EVENT_TYPES = event_types(dog=True)
PRESENCE_EVENT_TYPES = event_types(group="presence")
POSTURE_EVENT_TYPES = event_types(group="posture")
ZONE_EVENT_TYPES = event_types(group="zone")
UNUSUAL_EVENT_TYPES = event_types(group="unusual")  # offered from the start where the diary feature runs

COMPONENTS = ("binary_sensor", "sensor", "event", "button", "image")
REQUIRED_KEYS = {
    "binary_sensor": ("name", "unique_id", "state_topic", "device", "availability", "payload_on", "payload_off"),
    "sensor": ("name", "unique_id", "state_topic", "device", "availability", "value_template"),
    "event": ("name", "unique_id", "state_topic", "device", "availability", "event_types"),
    "button": ("name", "unique_id", "command_topic", "device", "availability", "payload_press"),
    "image": ("name", "unique_id", "image_topic", "content_type", "device", "availability"),
}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class EntityDescription:
    """What one entity is, apart from the device it belongs to (as Home Assistant's ``EntityDescription``)."""

    key: str                  # the object id: part of the config topic and of the unique id
    name: str
    icon: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DiagnosticSensorDescription(EntityDescription):
    """A diagnostic sensor reading one value of the retained telemetry envelope."""

    path: str                 # dotted path inside the envelope, e.g. ``data.cpu_percent``
    unit: str
    device_class: str | None = None
    optional: bool = False    # announced only once the device reports a value (hardware it may not have)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ButtonDescription(EntityDescription):
    """A one-press button; its ``key`` is the command it sends (``{prefix}/{id}/cmd/<key>``)."""

    icon: str


DIAGNOSTICS: tuple[DiagnosticSensorDescription, ...] = (
    DiagnosticSensorDescription(key="cpu_temperature", name="CPU temperature", unit="°C", device_class="temperature",
                                path="data.cpu_temperature_c", optional=True),
    DiagnosticSensorDescription(key="cpu_percent", name="CPU", unit="%", path="data.cpu_percent"),
    DiagnosticSensorDescription(key="memory_percent", name="Memory", unit="%", path="data.memory_percent"),
    DiagnosticSensorDescription(key="capture_fps", name="Capture fps", unit="fps", path="data.pipeline.capture_fps"),
    DiagnosticSensorDescription(key="inference_fps", name="Inference fps", unit="fps",
                                path="data.pipeline.inference_fps"),
    DiagnosticSensorDescription(key="inference_latency", name="Inference latency", unit="ms", device_class="duration",
                                path="data.pipeline.latency_ms.detect.p50"),
)

# Commands the device has (the media feature's) that make sense as a press, in the order they are announced.
BUTTONS: tuple[ButtonDescription, ...] = (
    ButtonDescription(key="bookmark", name="Bookmark moment", icon="mdi:bookmark-plus"),
    ButtonDescription(key="snapshot", name="Take snapshot", icon="mdi:camera"),
)
BUTTON_COMMANDS = frozenset(button.key for button in BUTTONS)
OPTIONAL_DIAGNOSTICS = frozenset(sensor.key for sensor in DIAGNOSTICS if sensor.optional)
UNKNOWN = "unknown"  # Home Assistant's own state for "no value": a sensor rendering it shows as unknown


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """What identifies one dogmonitor device to Home Assistant and where its topics live."""

    device_id: str
    mqtt_prefix: str            # DOGMON_MQTT_PREFIX, e.g. "dogmonitor"
    ha_prefix: str              # DOGMON_HA_PREFIX, e.g. "homeassistant"
    sw_version: str
    model: str = "dogmonitor edge camera (YOLOX-Nano)"
    configuration_url: str | None = None
    telemetry_interval: float = 5.0

    @property
    def base(self) -> str:
        return f"{self.mqtt_prefix}/{self.device_id}"

    @property
    def node_id(self) -> str:
        return f"dogmonitor_{self.device_id}"

    def topic(self, leaf: str) -> str:
        return f"{self.base}/{leaf}"

    def config_topic(self, component: str, object_id: str) -> str:
        return f"{self.ha_prefix}/{component}/{self.node_id}/{object_id}/config"

    def unique_id(self, object_id: str) -> str:
        return f"{self.node_id}_{object_id}"

    @property
    def expire_after(self) -> int:
        """Telemetry older than three periods (at least a minute) makes the diagnostic sensors unavailable."""
        return int(max(60.0, 3 * self.telemetry_interval))


def slug(text: str) -> str:
    """A topic- and id-safe form of a zone name: lower case a-z, 0-9 and '_'."""
    value = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return value or "zone"


def _spelled_as_slug(name: str) -> bool:
    """Whether the name is its slug written out (``Sofa bed`` for ``sofa_bed``; not ``Sofa-bed`` or ``---``)."""
    return name.lower().replace(" ", "_") == slug(name)


def zone_object_ids(names: Collection[str]) -> dict[str, str]:
    """A distinct object id per zone name, ``zone_<slug>``, stable for a given set of names.

    Names that share a slug ("Sofa bed", "Sofa-bed"; "Zone", "---") get a short hash of their exact name
    appended, except the one of them (if exactly one) spelled as its slug, which keeps the plain id: adding
    "Sofa-bed" next to "Sofa bed" does not replace the existing entity.
    """
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(slug(name), []).append(name)
    ids: dict[str, str] = {}
    for base, members in groups.items():
        plain = [m for m in members if _spelled_as_slug(m)]
        keeper = members[0] if len(members) == 1 else plain[0] if len(plain) == 1 else None
        for name in members:
            ids[name] = f"zone_{base}" if name == keeper else f"zone_{base}_{_short_hash(name)}"
    if len(set(ids.values())) < len(ids):  # a name that looks like another's hashed id: hash every name
        ids = {name: f"zone_{slug(name)}_{_short_hash(name)}" for name in ids}
    return ids


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def device_block(info: DeviceInfo) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [info.node_id],
        "name": f"Dog monitor {info.device_id}",
        "manufacturer": "dogmonitor",
        "model": info.model,
        "sw_version": info.sw_version,
    }
    if info.configuration_url:
        block["configuration_url"] = info.configuration_url
    return block


def _entity(info: DeviceInfo, object_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": info.unique_id(object_id),
        "availability": [{"topic": info.topic("availability"), "payload_available": "online",
                          "payload_not_available": "offline"}],
        "device": device_block(info),
        "origin": {"name": "dogmonitor", "sw_version": info.sw_version},
        **fields,
    }


def presence_entities(info: DeviceInfo) -> dict[str, dict[str, Any]]:
    """Dog present (binary_sensor, occupancy) and the last dog event (event entity)."""
    return {
        info.config_topic("binary_sensor", "dog_present"): _entity(
            info, "dog_present", "Dog present",
            device_class="occupancy", state_topic=info.topic("state"),
            value_template="{{ 'ON' if value_json.presence else 'OFF' }}", payload_on="ON", payload_off="OFF",
            json_attributes_topic=info.topic("state"),
            json_attributes_template="{{ {'track_count': value_json.track_count, "
                                     "'present_since': value_json.present_since} | tojson }}"),
    }


def event_entity(info: DeviceInfo, event_types: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {
        info.config_topic("event", "dog_event"): _entity(
            info, "dog_event", "Dog event", state_topic=info.topic("ha_event"),
            event_types=list(event_types), icon="mdi:dog"),
    }


def json_path_template(path: str) -> str:
    """A template reading a dotted path from ``value_json`` that renders "None" when any part is missing.

    Each intermediate step falls back to ``{}`` so a missing branch never raises inside HA's renderer;
    HA's MQTT sensor turns the rendered "None" into the ``unknown`` state for numeric sensors (a unit and
    a state class make it one), which every diagnostic sensor is.
    """
    expr = "value_json"
    parts = path.split(".")
    for part in parts[:-1]:
        expr = f"({expr}.{part} | default({{}}, true))"
    return f"{{{{ {expr}.{parts[-1]} | default(None) }}}}"


def reported_optional(data: dict[str, Any]) -> set[str]:
    """The optional diagnostics a telemetry message (its ``data``) has a value for."""
    found = set()
    for sensor in DIAGNOSTICS:
        value: Any = data
        for part in sensor.path.split(".")[1:]:   # the path starts at the envelope: "data.…"
            value = value.get(part) if isinstance(value, dict) else None
        if sensor.optional and value is not None:
            found.add(sensor.key)
    return found


def diagnostic_topics(info: DeviceInfo, keys: Collection[str]) -> set[str]:
    return {info.config_topic("sensor", key) for key in keys}


def diagnostic_entities(info: DeviceInfo, optional: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """Diagnostic sensors over the retained telemetry envelope; stale values go unavailable.

    An optional one (CPU temperature) only when named in ``optional``: the device reports a value for it.
    """
    out: dict[str, dict[str, Any]] = {}
    for sensor in DIAGNOSTICS:
        if sensor.optional and sensor.key not in optional:
            continue
        fields: dict[str, Any] = {
            "state_topic": info.topic("telemetry"), "value_template": json_path_template(sensor.path),
            "unit_of_measurement": sensor.unit, "state_class": "measurement", "entity_category": "diagnostic",
            "expire_after": info.expire_after,
        }
        if sensor.device_class:
            fields["device_class"] = sensor.device_class
        out[info.config_topic("sensor", sensor.key)] = _entity(info, sensor.key, sensor.name, **fields)
    return out


def posture_entity(info: DeviceInfo, options: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Posture as an enum sensor: a known posture, or Home Assistant's ``unknown`` for anything else.

    ``unknown`` is rendered as text because HA's state for "no value" is that text, while HA 2024.3 keeps
    a rendered ``None`` as the text "None" for a non-numeric sensor. The options go in the ``options``
    attribute, where HA keeps an enum sensor's options; an ``options`` config key would be dropped by
    2024.3 and, from 2024.9, make HA ignore the ``unknown`` state and keep showing the last posture.
    """
    allowed = [o for o in options if o not in (UNKNOWN, "unavailable")]  # HA's own states, not postures
    known = json.dumps(allowed)
    return {
        info.config_topic("sensor", "posture"): _entity(
            info, "posture", "Posture", device_class="enum", state_topic=info.topic("state"),
            value_template="{% set p = value_json.posture | default(None) %}"
                           "{{ p if p in " + known + " else " + _jinja_string(UNKNOWN) + " }}",
            json_attributes_topic=info.topic("state"),
            json_attributes_template="{{ {'options': " + known + ", "
                                     "'since': value_json.posture_since | default(None), "
                                     "'source': value_json.posture_source | default(None)} | tojson }}",
            icon="mdi:dog-side"),
    }


def zone_entities(info: DeviceInfo, zones: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """One occupancy binary_sensor per ``(zone_id, display name)``, object ids from :func:`zone_object_ids`.

    Reads ``value_json.zones_occupied`` from the state topic: the list of ids of the occupied zones
    (the behaviour feature keeps it in the device state).
    """
    out: dict[str, dict[str, Any]] = {}
    object_ids = zone_object_ids([zone_id for zone_id, _ in zones])
    for zone_id, name in zones:
        object_id = object_ids[zone_id]
        template = ("{{ 'ON' if " + _jinja_string(zone_id) +
                    " in (value_json.zones_occupied | default([], true)) else 'OFF' }}")
        out[info.config_topic("binary_sensor", object_id)] = _entity(
            info, object_id, f"{name} occupied", device_class="occupancy", state_topic=info.topic("state"),
            value_template=template, payload_on="ON", payload_off="OFF", icon="mdi:map-marker-radius")
    return out


def _jinja_string(text: str) -> str:
    """A Jinja string literal for arbitrary user text (zone names): JSON escaping is valid Jinja."""
    return json.dumps(text)


def press_template(command: str) -> str:
    """The payload HA publishes per press: a command id of its own (``ha-<command>-<HA's clock>``).

    Distinct ids tell two presses apart and let the ``Last command`` sensor show which one was refused.
    """
    return '{"id": "ha-' + command + '-{{ as_timestamp(now()) }}"}'


def button_entities(info: DeviceInfo, commands: Collection[str]) -> dict[str, dict[str, Any]]:
    """A button per supported one-press command; pressing publishes to ``{prefix}/{id}/cmd/<name>``.

    With any button there is also the ``Last command`` sensor, which shows how the device answered.
    """
    out: dict[str, dict[str, Any]] = {}
    for button in BUTTONS:
        if button.key not in commands:
            continue
        out[info.config_topic("button", button.key)] = _entity(
            info, button.key, button.name, command_topic=info.topic(f"cmd/{button.key}"),
            payload_press='{"id": "ha-' + button.key + '"}', command_template=press_template(button.key),
            icon=button.icon)
    if out:
        out.update(last_command_entity(info))
    return out


def last_command_entity(info: DeviceInfo) -> dict[str, dict[str, Any]]:
    """How the device answered the newest MQTT command: ``ok`` or the error code (``cooldown`` …).

    Attributes: the command, its id and the error message, so a refused button press is visible in HA.
    """
    return {
        info.config_topic("sensor", "last_command"): _entity(
            info, "last_command", "Last command", state_topic=info.topic("cmd/result"),
            value_template="{{ 'ok' if value_json.ok else (value_json.error.code | default('error', true)) }}",
            json_attributes_topic=info.topic("cmd/result"),
            json_attributes_template="{{ {'command': value_json.command, 'id': value_json.id, "
                                     "'message': none if value_json.ok else value_json.error.message} | tojson }}",
            icon="mdi:console-line"),
    }


def snapshot_entity(info: DeviceInfo) -> dict[str, dict[str, Any]]:
    """The newest snapshot (JPEG bytes, retained on ``{prefix}/{id}/snapshot``) as an MQTT image entity."""
    return {
        info.config_topic("image", "latest_snapshot"): _entity(
            info, "latest_snapshot", "Latest snapshot", image_topic=info.topic("snapshot"), content_type="image/jpeg"),
    }


def discovery(info: DeviceInfo, *, posture_options: list[str] | tuple[str, ...] | None = None,
              zones: list[tuple[str, str]] | None = None, commands: Collection[str] = (),
              event_types: list[str] | tuple[str, ...] = PRESENCE_EVENT_TYPES,
              optional_diagnostics: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """Every config this device should have in Home Assistant right now."""
    out = presence_entities(info)
    if "get_diary" in commands:
        event_types = [*event_types, *(t for t in UNUSUAL_EVENT_TYPES if t not in event_types)]
    out.update(event_entity(info, event_types))
    out.update(diagnostic_entities(info, optional_diagnostics))
    if posture_options:
        out.update(posture_entity(info, posture_options))
    if zones:
        out.update(zone_entities(info, zones))
    out.update(button_entities(info, commands))
    if "snapshot" in commands:  # the media feature is on: it publishes the newest snapshot retained
        out.update(snapshot_entity(info))
    return out


def removals(previous: set[str], current: dict[str, Any]) -> list[str]:
    """Config topics published before that are no longer wanted: each gets an empty retained payload."""
    return sorted(previous - current.keys())


def validate(topic: str, payload: dict[str, Any]) -> list[str]:
    """Problems Home Assistant would reject a config for (used by tests and the diagnostics)."""
    problems: list[str] = []
    parts = topic.split("/")
    if len(parts) != 5 or parts[-1] != "config" or parts[1] not in COMPONENTS:
        return [f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config"]
    component = parts[1]
    for key in REQUIRED_KEYS[component]:
        if key not in payload:
            problems.append(f"{topic}: missing {key}")
    device = payload.get("device", {})
    if not device.get("identifiers"):
        problems.append(f"{topic}: device without identifiers")
    if component == "sensor" and payload.get("device_class") == "enum" \
            and "'options'" not in payload.get("json_attributes_template", ""):
        problems.append(f"{topic}: enum sensor without an options attribute")
    if component == "event" and not payload.get("event_types"):
        problems.append(f"{topic}: event entity without event_types")
    return problems
