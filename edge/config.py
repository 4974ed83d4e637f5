"""Configuration: ``device.env`` plus the process environment, turned into one frozen, validated Config.

Owns the list of configuration keys (``KEYS``): their defaults, their parsers and what each accepts.
Precedence: built-in default < env file < process environment. Any invalid value raises
:class:`ConfigError`, which names the key, the value and what is accepted; the CLI turns it into exit
code 2. Nothing here does I/O beyond reading the env file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edge.masking import mask_credentials

DEFAULT_ENV_FILES = (Path("device.env"), Path("/etc/dogmonitor/device.env"))
SECRET_KEYS = frozenset({"DOGMON_WS_TOKEN"})
# DOGMON_* variables read by scripts/install.sh and scripts/setup, not by the device: never "unknown keys".
SCRIPT_VARIABLES = frozenset({"DOGMON_ENV", "DOGMON_PYTHON", "DOGMON_PREFIX", "DOGMON_BIN_DIR", "DOGMON_ETC_DIR",
                              "DOGMON_STATE_DIR", "DOGMON_UNIT_DIR"})


class ConfigError(ValueError):
    """An invalid configuration value; ``str()`` is the one line shown to the user (credentials masked)."""

    def __init__(self, key: str, value: str, accepted: str) -> None:
        self.key, self.value, self.accepted = key, value, accepted
        self.errors: list[ConfigError] = [self]
        self.warnings: tuple[str, ...] = ()  # unknown keys seen while loading (often the cause)
        shown = "***" if key in SECRET_KEYS else mask_credentials(value)
        super().__init__(f"invalid {key}={shown!r}: expected {accepted}")


class ConfigErrors(ConfigError):
    """Several invalid values at once: ``errors`` has each; ``str()`` is one line per error."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.key, first.value, first.accepted)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)


# --- parsers: each takes the raw string and returns a value or raises ValueError(accepted) ---

def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ValueError("one of 1/0, true/false, yes/no, on/off")


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"an integer from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"an integer from {lo} to {hi}")
        return value
    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"a number from {lo} to {hi}") from None
        if not (lo <= value <= hi):  # also rejects NaN
            raise ValueError(f"a number from {lo} to {hi}")
        return value
    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value
    return parse


def _text(max_len: int = 256, pattern: str | None = None, what: str = "text") -> Callable[[str], str]:
    regex = re.compile(pattern) if pattern else None

    def parse(raw: str) -> str:
        value = raw.strip()
        if len(value) > max_len or (regex and not regex.fullmatch(value)):
            raise ValueError(what)
        return value
    return parse


def _path(raw: str) -> Path:
    value = raw.strip()
    if not value:
        raise ValueError("a file system path")
    return Path(value).expanduser()


def _optional_path(raw: str) -> Path | None:
    return _path(raw) if raw.strip() else None


def _host(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value) or len(value) > 253:
        raise ValueError("an IP address or host name to bind, e.g. 0.0.0.0, 127.0.0.1 or ::")
    return value


def _source(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError(
            "a camera index (0), /dev/videoN, an rtsp:// or http(s):// URL, a video file, "
            "gst:<pipeline> or demo"
        )
    return value


def _mqtt_url(raw: str) -> str:
    value = raw.strip()
    if value:
        parse_mqtt_url(value)
    return value


def _device_id(raw: str) -> str:
    value = raw.strip().lower()
    if not value:  # the hostname, made topic-safe ("Pi.Kitchen" -> "pi-kitchen")
        value = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-_")[:64] or "dogmonitor"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        raise ValueError("1-64 characters from a-z, 0-9, '_' and '-' (it becomes an MQTT topic level)")
    return value


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


def _classes(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
    if not names:
        raise ValueError("a comma-separated list of COCO class names, e.g. dog or dog,cat,sheep")
    return names


MIN_DETECT_FPS = 2.0  # the tracker confirms a dog with 3 hits within 2 s and coasts 2 s between hits


def _detect_fps(raw: str) -> float:
    accepted = f"0 (no cap) or a number from {MIN_DETECT_FPS:g} to 240"
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(accepted) from None
    if not (value == 0 or MIN_DETECT_FPS <= value <= 240):
        raise ValueError(accepted)
    return value


def _event_names(raw: str) -> tuple[str, ...]:
    from edge.messages import EventType  # messages imports nothing from here

    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
    known = {e.value for e in EventType}
    if any(n not in known for n in names):
        raise ValueError("a comma-separated list of event types (e.g. dog_detected,zone_enter,sit), or empty")
    return names


@dataclasses.dataclass(frozen=True)
class MqttTarget:
    """Where and how to reach the broker, parsed from ``DOGMON_MQTT_URL``."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttTarget:
    """Parse ``mqtt://user:pass@host:1883`` or ``mqtts://…``; raise ValueError(accepted) otherwise."""
    accepted = "mqtt://[user:pass@]host[:port] or mqtts://[user:pass@]host[:port], or empty for no MQTT"
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise ValueError(accepted)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # Usually a password with a raw "/", "?" or "#": the host would silently become part of it.
        raise ValueError(accepted + " (no path; write @ / : ? # in the user or password as %40 %2F %3A %3F %23)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(accepted) from None
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    field: str
    default: str
    parse: Callable[[str], Any]
    doc: str


KEYS: tuple[Key, ...] = (
    Key("DOGMON_DEVICE_ID", "device_id", "", _device_id, "device id in topics and messages (default: hostname)"),
    Key("DOGMON_SOURCE", "source", "demo", _source,
        "camera index, /dev/videoN, rtsp:// or http:// URL, video file, gst:<pipeline>, or demo"),
    Key("DOGMON_SOURCE_LOOP", "source_loop", "1", _bool, "loop a video file source"),
    Key("DOGMON_SOURCE_REALTIME", "source_realtime", "1", _bool,
        "play a file at its own frame rate (0: as fast as the pipeline takes frames, for benchmarks)"),
    Key("DOGMON_CAPTURE_WIDTH", "capture_width", "0", _int_range(0, 7680), "requested width (0: source default)"),
    Key("DOGMON_CAPTURE_HEIGHT", "capture_height", "0", _int_range(0, 4320),
        "requested height (0: source default)"),
    Key("DOGMON_CAPTURE_FPS", "capture_fps", "0", _float_range(0, 240), "requested camera fps (0: default)"),
    Key("DOGMON_CAMERA_STALL_SECONDS", "camera_stall_seconds", "5", _float_range(0.5, 600),
        "no frame for this long means the camera is offline"),
    Key("DOGMON_WS_HOST", "ws_host", "0.0.0.0", _host, "WebSocket/HTTP bind address"),
    Key("DOGMON_WS_PORT", "ws_port", "8765", _int_range(0, 65535), "WebSocket/HTTP port (0: any free port)"),
    Key("DOGMON_WS_TOKEN", "ws_token", "", _text(256), "token clients must present (empty: no auth)"),
    Key("DOGMON_WS_MAX_CLIENTS", "ws_max_clients", "16", _int_range(1, 1000), "WebSocket clients at once"),
    Key("DOGMON_WS_ORIGINS", "ws_origins", "", _csv,
        "comma list of allowed browser Origins (empty: any; clients without Origin are allowed)"),
    Key("DOGMON_WS_MAX_MESSAGE_BYTES", "ws_max_message_bytes", "65536", _int_range(1024, 16 * 2**20),
        "largest inbound WebSocket message; larger closes the connection with 1009"),
    Key("DOGMON_WS_RATE", "ws_rate", "20", _float_range(0.1, 10000),
        "inbound messages per second per client (burst: twice that); abuse closes with 1008"),
    Key("DOGMON_WS_MAX_PENDING", "ws_max_pending", "512", _int_range(16, 100000),
        "events queued for one client before it is closed as too slow (1013)"),
    Key("DOGMON_TEST_EVENTS", "test_events", "0", _bool,
        "allow authenticated clients to emit `test` events and the REST test broadcasts (docs/http.md)"),
    Key("DOGMON_EVENT_RETENTION_DAYS", "event_retention_days", "30", _float_range(0.001, 3650),
        "delete events older than this"),
    Key("DOGMON_EVENT_MAX_ROWS", "event_max_rows", "100000", _int_range(100, 10**8),
        "keep at most this many events"),
    Key("DOGMON_MQTT_URL", "mqtt_url", "", _mqtt_url, "mqtt://user:pass@host:1883 or mqtts://… (empty: off)"),
    Key("DOGMON_MQTT_PREFIX", "mqtt_prefix", "dogmonitor", _text(64, r"[A-Za-z0-9_/-]+", "letters, digits, _ - /"),
        "MQTT topic prefix"),
    Key("DOGMON_MQTT_OVERLAY_HZ", "mqtt_overlay_hz", "2", _float_range(0, 30),
        "overlays of each type per second mirrored to MQTT (0: none)"),
    Key("DOGMON_MODEL_DIR", "model_dir", "./models-data", _path, "where fetched models and demo media live"),
    Key("DOGMON_MIRROR", "mirror", "", _optional_path,
        "local folder holding models/ and media/ to fetch from instead of the network"),
    Key("DOGMON_DATA_DIR", "data_dir", "./data", _path, "event log, outbox and other state"),
    Key("DOGMON_DETECT_THRESHOLD", "detect_threshold", "0.3", _float_range(0.01, 0.99),
        "dog score (objectness x class) that counts as a detection"),
    Key("DOGMON_DETECT_CLASSES", "detect_classes", "dog", _classes,
        "COCO classes counted as the dog, e.g. dog,cat,sheep,bear for dogs the model confuses"),
    Key("DOGMON_ABSENCE_SECONDS", "absence_seconds", "10", _float_range(0.1, 3600),
        "no dog seen for this long fires dog_left"),
    Key("DOGMON_DETECT_IDLE_SECONDS", "detect_idle_seconds", "3", _float_range(0, 3600),
        "with nothing moving and no dog tracked, the detector still runs this often "
        "(0: motion gating off, every frame is detected)"),
    Key("DOGMON_DETECT_FPS", "detect_fps", "0", _detect_fps,
        "most detector runs per second (0: no cap; otherwise at least 2, or the tracker cannot confirm a dog)"),
    Key("DOGMON_TELEMETRY_INTERVAL", "telemetry_interval", "5", _float_range(0.2, 3600), "telemetry period (s)"),
    Key("DOGMON_INFERENCE_THREADS", "inference_threads", "0", _int_range(0, 64),
        "onnxruntime intra-op threads (0: all physical cores but one, left for capture and the event loop)"),
    Key("DOGMON_GRAPH_OPTIMIZATION", "graph_optimization", "all", _choice("disable", "basic", "extended", "all"),
        "onnxruntime graph optimisation level"),
    Key("DOGMON_EXECUTION_PROVIDERS", "execution_providers", "auto", _text(256),
        "auto, or a comma list such as CUDAExecutionProvider,CPUExecutionProvider"),
    Key("DOGMON_LOG_LEVEL", "log_level", "info", _choice("debug", "info", "warning", "error"), "log level"),
    Key("DOGMON_HA_DISCOVERY", "ha_discovery", "1", _bool,
        "announce entities to Home Assistant over MQTT (only when MQTT is on; 0 removes them)"),
    Key("DOGMON_HA_PREFIX", "ha_prefix", "homeassistant", _text(64, r"[A-Za-z0-9_-]+", "letters, digits, _ -"),
        "Home Assistant MQTT discovery prefix"),
    Key("DOGMON_AUDIO_SOURCE", "audio_source", "",
        _text(1024, r"|alsa:\S.*|(?!alsa:).+", "empty (off), alsa:<device> such as alsa:hw:1,0, or a WAV/FLAC path"),
        "bark detection input: alsa:hw:1,0 (via arecord), a WAV/FLAC file, or empty for no audio"),
    Key("DOGMON_AUDIO_LOOP", "audio_loop", "1", _bool, "loop a file audio source"),
    Key("DOGMON_AUDIO_MODEL", "audio_model", "", _optional_path,
        "your own converted yamnet.onnx (empty: the manifest's verified copy in DOGMON_MODEL_DIR)"),
    Key("DOGMON_BARK_THRESHOLD", "bark_threshold", "0.3", _float_range(0.05, 0.99),
        "YAMNet Bark/Howl/Growling/Whimper score that makes a window count"),
    Key("DOGMON_BARK_HOP_SECONDS", "bark_hop_seconds", "0.5", _float_range(0.1, 0.975),
        "step between 0.975 s YAMNet windows"),
    Key("DOGMON_BARK_GAP_SECONDS", "bark_gap_seconds", "3", _float_range(0.5, 60),
        "this long without a barking window ends an episode (and sends its bark event)"),
    Key("DOGMON_BARK_CONTINUOUS_SECONDS", "bark_continuous_seconds", "30", _float_range(1, 3600),
        "an episode longer than this sends continuous_barking (once per episode)"),
    Key("DOGMON_ZONE_INERTIA_FRAMES", "zone_inertia_frames", "3", _int_range(1, 60),
        "consecutive frames that must agree before the dog counts as entering or leaving a zone"),
    Key("DOGMON_FETCH_GROWTH", "fetch_growth", "1.5", _float_range(1.05, 20),
        "fetch_return fires when a carrying dog's box area grew by this factor since the carry began"),
    Key("DOGMON_FETCH_CARRY_FRAMES", "fetch_carry_frames", "3", _int_range(1, 60),
        "consecutive frames a toy must be held before it counts as carried"),
    Key("DOGMON_HEATMAP_INTERVAL", "heatmap_interval", "10", _float_range(1, 3600),
        "seconds between heatmap overlays"),
    Key("DOGMON_HEATMAP_WINDOW_MINUTES", "heatmap_window_minutes", "60", _int_range(1, 1440),
        "how far back the heatmap looks"),
    Key("DOGMON_ANALYTICS_INTERVAL", "analytics_interval", "5", _float_range(0.5, 3600),
        "at most one analytics message per this many seconds (only when figures changed)"),
    Key("DOGMON_POSE_FPS", "pose_fps", "5", _float_range(0, 30),
        "pose model runs per second per dog (0: pose off, posture from the box only)"),
    Key("DOGMON_POSTURE_MIN_SECONDS", "posture_min_seconds", "2", _float_range(0, 600),
        "a posture must hold this long before its sit/stand/lie event fires"),
    Key("DOGMON_POSE_MODEL", "pose_model", "", _text(512),
        "pose model: empty/auto (first kind 'pose' manifest in models/ whose weights are installed), off, "
        "a manifest name, or a path to a manifest .json"),
    Key("DOGMON_CLIP_PRE_SECONDS", "clip_pre_seconds", "5", _float_range(0, 30),
        "seconds before the triggering event that a clip starts (pre-roll ring of encoded frames)"),
    Key("DOGMON_CLIP_POST_SECONDS", "clip_post_seconds", "10", _float_range(1, 300),
        "seconds a clip goes on after its trigger (and after the dog was last active)"),
    Key("DOGMON_CLIP_MAX_SECONDS", "clip_max_seconds", "60", _float_range(1, 600),
        "longest clip after its pre-roll, however long the dog stays active"),
    Key("DOGMON_CLIP_EVENTS", "clip_events", "dog_detected,zone_enter,fetch_return,continuous_barking", _event_names,
        "events that record a clip (comma list; empty: only bookmarks record clips)"),
    Key("DOGMON_CLIP_ENCODER", "clip_encoder", "auto", _choice("auto", "h264_v4l2m2m", "libx264", "mp4v"),
        "clip encoder: auto (hardware H.264 if a test encode works, else libx264, else OpenCV mp4v), or the one "
        "to try first"),
    Key("DOGMON_SNAPSHOT_EVENTS", "snapshot_events", "dog_detected,sit,stand,lie,zone_enter,fetch_return",
        _event_names, "events that save a snapshot (comma list; empty: only on request)"),
    Key("DOGMON_LIVE_FPS", "live_fps", "5", _float_range(0.2, 30), "live view (/ws/video) frames per second"),
    Key("DOGMON_LIVE_WIDTH", "live_width", "640", _int_range(0, 7680),
        "live view frame width in pixels (0: camera width; never scaled up)"),
    Key("DOGMON_MEDIA_MAX_MB", "media_max_mb", "1024", _float_range(0.01, 10**7),
        "snapshots and clips kept on disk at most (oldest removed first)"),
    Key("DOGMON_MEDIA_MAX_DAYS", "media_max_days", "14", _float_range(0.001, 3650),
        "snapshots and clips older than this are removed"),
    Key("DOGMON_MEDIA_MIN_FREE_MB", "media_min_free_mb", "100", _float_range(0, 10**7),
        "media is not written when less than this would stay free on the data disk (reported as disk_full)"),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}


@dataclasses.dataclass(frozen=True)
class Config:
    device_id: str
    source: str
    source_loop: bool
    source_realtime: bool
    capture_width: int
    capture_height: int
    capture_fps: float
    camera_stall_seconds: float
    ws_host: str
    ws_port: int
    ws_token: str
    ws_max_clients: int
    ws_origins: tuple[str, ...]
    ws_max_message_bytes: int
    ws_rate: float
    ws_max_pending: int
    test_events: bool
    event_retention_days: float
    event_max_rows: int
    mqtt_url: str
    mqtt_prefix: str
    mqtt_overlay_hz: float
    model_dir: Path
    mirror: Path | None
    data_dir: Path
    detect_threshold: float
    detect_classes: tuple[str, ...]
    absence_seconds: float
    detect_idle_seconds: float
    detect_fps: float
    telemetry_interval: float
    inference_threads: int
    graph_optimization: str
    execution_providers: str
    log_level: str
    ha_discovery: bool
    ha_prefix: str
    audio_source: str
    audio_loop: bool
    audio_model: Path | None
    bark_threshold: float
    bark_hop_seconds: float
    bark_gap_seconds: float
    bark_continuous_seconds: float
    zone_inertia_frames: int
    fetch_growth: float
    fetch_carry_frames: int
    heatmap_interval: float
    heatmap_window_minutes: int
    analytics_interval: float
    pose_fps: float
    posture_min_seconds: float
    pose_model: str
    clip_pre_seconds: float
    clip_post_seconds: float
    clip_max_seconds: float
    clip_events: tuple[str, ...]
    clip_encoder: str
    snapshot_events: tuple[str, ...]
    live_fps: float
    live_width: int
    media_max_mb: float
    media_max_days: float
    media_min_free_mb: float
    # Not keys: where the values came from, and what looked wrong without being invalid.
    env_file: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def mqtt(self) -> MqttTarget | None:
        return parse_mqtt_url(self.mqtt_url) if self.mqtt_url else None

    def describe(self) -> dict[str, str]:
        """Effective configuration by key name, secrets masked (for ``check-config`` and logs)."""
        out: dict[str, str] = {}
        for key in KEYS:
            value = getattr(self, key.field)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "1" if value else "0"
            else:
                text = "" if value is None else str(value)
            if key.name in SECRET_KEYS and text:
                text = "***"
            out[key.name] = mask_credentials(text)
        return out


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (``#`` comments, optional ``export`` and quotes), as systemd and sh do."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"{path}:{number}", line, "KEY=VALUE lines")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        values[name] = raw
    return values


def unknown_key_warnings(names: Mapping[str, str] | list[str], where: str) -> list[str]:
    """A warning for each ``DOGMON_*`` name that is not a key, naming the nearest known key."""
    out = []
    for name in names:
        if not name.startswith("DOGMON_") or name in KEYS_BY_NAME or name in SCRIPT_VARIABLES:
            continue
        nearest = difflib.get_close_matches(name, KEYS_BY_NAME, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]}?" if nearest else "see the configuration table in README.md"
        out.append(f"unknown key {name} in {where} is ignored; {hint}")
    return out


def _readable_env_file(path: Path) -> bool:
    # Any readable non-directory counts, so /dev/null (an empty env) and process substitutions work.
    return path.exists() and not path.is_dir()


def load_config(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config; ``env_file`` None means the first of DEFAULT_ENV_FILES that exists.

    Every invalid value is reported at once (:class:`ConfigErrors`), not only the first.
    """
    environ = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    read_from: Path | None = None
    if env_file is not None:
        if not _readable_env_file(env_file):
            raise ConfigError("--env", str(env_file), "an existing env file")
        file_values, read_from = read_env_file(env_file), env_file
    else:
        for candidate in DEFAULT_ENV_FILES:
            if candidate.is_file():
                file_values, read_from = read_env_file(candidate), candidate
                break
    warnings = unknown_key_warnings(list(file_values), str(read_from)) + unknown_key_warnings(
        [n for n in environ if n not in file_values], "the environment")
    fields: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for key in KEYS:
        raw = environ.get(key.name, file_values.get(key.name, key.default))
        try:
            fields[key.field] = key.parse(raw)
        except ValueError as exc:
            errors.append(ConfigError(key.name, raw, str(exc)))
    if not errors:
        try:
            check_combinations(fields)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        error = errors[0] if len(errors) == 1 else ConfigErrors(errors)
        error.warnings = tuple(warnings)
        raise error
    return Config(**fields, env_file=read_from, warnings=tuple(warnings))


def check_combinations(fields: Mapping[str, Any]) -> None:
    """Keys that are valid alone but not together; the error names both keys."""
    fps, absence = fields["detect_fps"], fields["absence_seconds"]
    if fps > 0 and absence < 2.0 / fps:
        # with fewer than two capped detector runs per absence period, one missed run would end presence
        raise ConfigError("DOGMON_DETECT_FPS", f"{fps:g}",
                          f"0 or at least {2.0 / absence:g} with DOGMON_ABSENCE_SECONDS={absence:g} "
                          "(two detector runs per absence period)")
