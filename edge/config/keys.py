"""Configuration: ``device.env`` plus the process environment, turned into one frozen, validated Config.

Owns the list of configuration keys (``KEYS``): their defaults, their parsers and what each accepts.
Precedence: built-in default < env file < process environment. Any invalid value raises
:class:`ConfigError`, which names the key, the value and what is accepted; the CLI turns it into exit
code 2. Nothing here does I/O beyond reading the env file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from edge.config.parse import (
    SECRET_KEYS,
    MqttTarget,
    _bool,
    _choice,
    _classes,
    _csv,
    _detect_fps,
    _device_id,
    _event_names,
    _float_range,
    _home_secret,
    _host,
    _int_range,
    _mqtt_url,
    _optional_path,
    _path,
    _source,
    _test_clock,
    _text,
    parse_mqtt_url,
    parse_test_clock,
)
from edge.util.masking import mask_credentials

T = TypeVar("T")
TOKEN_RULE = "empty (a token is made at first start), open (loopback binds only), or 16 to 256 characters"

DEFAULT_ENV_FILES = (Path("device.env"), Path("/etc/dogmonitor/device.env"))
# DOGMON_* variables read by scripts/install.sh and scripts/setup, not by the device: never "unknown keys".
SCRIPT_VARIABLES = frozenset({"DOGMON_ENV", "DOGMON_PYTHON", "DOGMON_PREFIX", "DOGMON_BIN_DIR", "DOGMON_ETC_DIR",
                              "DOGMON_STATE_DIR", "DOGMON_UNIT_DIR"})


@dataclasses.dataclass(frozen=True)
class Key:
    """One ``DOGMON_*`` key: its name, the Config field it fills, its default (as written in an env file)."""

    name: str
    field: str
    default: str
    parse: Callable[[str], Any]
    doc: str


_KEY = "dogmon_key"  # dataclass field metadata entry holding the field's Key


def key(name: str, default: str, parse: Callable[[str], T], doc: str) -> T:
    """Declare a Config field as the key ``name``; typed as what ``parse`` returns, so mypy checks the two agree."""
    spec = Key(name, "", default, parse, doc)  # the field name is filled in from the class below
    return cast(T, dataclasses.field(metadata={_KEY: spec}))


@dataclasses.dataclass(frozen=True)
class Config:
    """The validated configuration: every field but the last two is a key, declared here once.

    :data:`KEYS` (the order ``check-config`` prints and docs/configuration.md lists) is read from these fields.
    """

    device_id: str = key("DOGMON_DEVICE_ID", "", _device_id, "device id in topics and messages (default: hostname)")
    source: str = key("DOGMON_SOURCE", "demo", _source,
        "camera index, /dev/videoN, rtsp:// or http:// URL, video file, gst:<pipeline>, or demo")
    source_loop: bool = key("DOGMON_SOURCE_LOOP", "1", _bool, "loop a video file source")
    source_realtime: bool = key("DOGMON_SOURCE_REALTIME", "1", _bool,
        "play a file at its own frame rate (0: as fast as the pipeline takes frames, for benchmarks)")
    capture_width: int = key("DOGMON_CAPTURE_WIDTH", "0", _int_range(0, 7680), "requested width (0: source default)")
    capture_height: int = key("DOGMON_CAPTURE_HEIGHT", "0", _int_range(0, 4320),
        "requested height (0: source default)")
    capture_fps: float = key("DOGMON_CAPTURE_FPS", "0", _float_range(0, 240), "requested camera fps (0: default)")
    camera_stall_seconds: float = key("DOGMON_CAMERA_STALL_SECONDS", "5", _float_range(0.5, 600),
        "no frame for this long means the camera is offline")
    ws_host: str = key("DOGMON_WS_HOST", "0.0.0.0", _host, "WebSocket/HTTP bind address")
    ws_port: int = key("DOGMON_WS_PORT", "8765", _int_range(0, 65535), "WebSocket/HTTP port (0: any free port)")
    ws_token: str = key("DOGMON_WS_TOKEN", "", _text(256, r"|open|.{16,256}", TOKEN_RULE),
        "token clients must present, at least 16 characters (empty: the device makes one at first start, keeps "
        "it in DOGMON_DATA_DIR/token and prints a pairing code; open: no auth, only with a loopback "
        "DOGMON_WS_HOST)")
    ws_max_clients: int = key("DOGMON_WS_MAX_CLIENTS", "16", _int_range(1, 1000), "WebSocket clients at once")
    ws_origins: tuple[str, ...] = key("DOGMON_WS_ORIGINS", "", _csv,
        "comma list of browser Origins allowed besides the device's own names and addresses, e.g. a reverse "
        "proxy's https://dog.example.org (their hosts are accepted in Host too)")
    ws_max_message_bytes: int = key("DOGMON_WS_MAX_MESSAGE_BYTES", "65536", _int_range(1024, 16 * 2**20),
        "largest inbound WebSocket message; larger closes the connection with 1009")
    ws_rate: float = key("DOGMON_WS_RATE", "20", _float_range(0.1, 10000),
        "inbound messages per second per client (burst: twice that); abuse closes with 1008")
    ws_max_pending: int = key("DOGMON_WS_MAX_PENDING", "512", _int_range(16, 100000),
        "events queued for one client before it is closed as too slow (1013)")
    tls: str = key("DOGMON_TLS", "auto", _choice("off", "auto"),
        "HTTPS on DOGMON_WS_PORT: auto (DOGMON_TLS_CERT if set, else the device's own CA in DOGMON_DATA_DIR/tls, "
        "certificate issued for its names and addresses) or off (plain HTTP; scripts/demo on 127.0.0.1)")
    tls_cert: Path | None = key("DOGMON_TLS_CERT", "", _optional_path,
        "your own certificate chain (PEM), e.g. from an ACME DNS-01 client or `tailscale cert`; "
        "read again when the file changes (empty: the device's own CA)")
    tls_key: Path | None = key("DOGMON_TLS_KEY", "", _optional_path, "the private key of DOGMON_TLS_CERT (PEM)")
    setup_port: int = key("DOGMON_SETUP_PORT", "8766", _int_range(0, 65535),
        "plain-HTTP setup port while HTTPS is on: the CA certificate and how to trust it; everything else "
        "redirects to HTTPS (0: no setup port)")
    mdns: bool = key("DOGMON_MDNS", "1", _bool,
        "announce the device on the local network by mDNS/DNS-SD (NAME.local, _https._tcp, _dogmonitor._tcp)")
    test_events: bool = key("DOGMON_TEST_EVENTS", "0", _bool,
        "allow authenticated clients to emit `test` events and the REST test broadcasts (docs/http.md)")
    event_retention_days: float = key("DOGMON_EVENT_RETENTION_DAYS", "30", _float_range(0.001, 3650),
        "delete events older than this")
    event_max_rows: int = key("DOGMON_EVENT_MAX_ROWS", "100000", _int_range(100, 10**8),
        "keep at most this many events")
    mqtt_url: str = key("DOGMON_MQTT_URL", "", _mqtt_url, "mqtt://user:pass@host:1883 or mqtts://… (empty: off)")
    mqtt_prefix: str = key("DOGMON_MQTT_PREFIX", "dogmonitor", _text(64, r"[A-Za-z0-9_/-]+", "letters, digits, _ - /"),
        "MQTT topic prefix")
    mqtt_overlay_hz: float = key("DOGMON_MQTT_OVERLAY_HZ", "2", _float_range(0, 30),
        "overlays of each type per second mirrored to MQTT (0: none)")
    device_name: str = key("DOGMON_DEVICE_NAME", "", _text(64),
        "name people see for this device on every page of the home (default: the device id)")
    home_secret: str = key("DOGMON_HOME_SECRET", "", _home_secret,
        "shared by the devices of one home (16+ characters): they list, relay for and trust each other through "
        "the broker (empty: no peers)")
    model_dir: Path = key("DOGMON_MODEL_DIR", "./models-data", _path, "where fetched models and demo media live")
    mirror: Path | None = key("DOGMON_MIRROR", "", _optional_path,
        "local folder holding models/ and media/ to fetch from instead of the network")
    data_dir: Path = key("DOGMON_DATA_DIR", "./data", _path, "event log, outbox and other state")
    detect_threshold: float = key("DOGMON_DETECT_THRESHOLD", "0.3", _float_range(0.01, 0.99),
        "dog score (objectness x class) that counts as a detection")
    detect_classes: tuple[str, ...] = key("DOGMON_DETECT_CLASSES", "dog", _classes,
        "COCO classes counted as the dog, e.g. dog,cat,sheep,bear for dogs the model confuses")
    absence_seconds: float = key("DOGMON_ABSENCE_SECONDS", "10", _float_range(0.1, 3600),
        "no dog seen for this long fires dog_left")
    detect_idle_seconds: float = key("DOGMON_DETECT_IDLE_SECONDS", "3", _float_range(0, 3600),
        "with nothing moving and no dog tracked, the detector still runs this often "
        "(0: motion gating off, every frame is detected)")
    detect_fps: float = key("DOGMON_DETECT_FPS", "0", _detect_fps,
        "most detector runs per second (0: no cap; otherwise at least 2, or the tracker cannot confirm a dog; "
        "and at least 2 / DOGMON_ABSENCE_SECONDS)")
    telemetry_interval: float = key("DOGMON_TELEMETRY_INTERVAL", "5", _float_range(0.2, 3600), "telemetry period (s)")
    inference_threads: int = key("DOGMON_INFERENCE_THREADS", "0", _int_range(0, 64),
        "onnxruntime intra-op threads (0: all physical cores but one, left for capture and the event loop)")
    graph_optimization: str = key("DOGMON_GRAPH_OPTIMIZATION", "all", _choice("disable", "basic", "extended", "all"),
        "onnxruntime graph optimisation level")
    execution_providers: str = key("DOGMON_EXECUTION_PROVIDERS", "auto", _text(256),
        "auto, or a comma list such as CUDAExecutionProvider,CPUExecutionProvider")
    log_level: str = key("DOGMON_LOG_LEVEL", "info", _choice("debug", "info", "warning", "error"), "log level")
    ha_discovery: bool = key("DOGMON_HA_DISCOVERY", "1", _bool,
        "announce entities to Home Assistant over MQTT (only when MQTT is on; 0 removes them)")
    ha_prefix: str = key("DOGMON_HA_PREFIX", "homeassistant", _text(64, r"[A-Za-z0-9_-]+", "letters, digits, _ -"),
        "Home Assistant MQTT discovery prefix")
    audio_source: str = key("DOGMON_AUDIO_SOURCE", "",
        _text(1024, r"|alsa:\S.*|(?!alsa:).+", "empty (off), alsa:<device> such as alsa:hw:1,0, or a WAV/FLAC path"),
        "bark detection input: alsa:hw:1,0 (via arecord), a WAV/FLAC file, or empty for no audio")
    audio_loop: bool = key("DOGMON_AUDIO_LOOP", "1", _bool, "loop a file audio source")
    audio_model: Path | None = key("DOGMON_AUDIO_MODEL", "", _optional_path,
        "your own converted yamnet.onnx (empty: the manifest's verified copy in DOGMON_MODEL_DIR)")
    bark_threshold: float = key("DOGMON_BARK_THRESHOLD", "0.3", _float_range(0.05, 0.99),
        "YAMNet Bark/Howl/Growling/Whimper score that makes a window count")
    bark_hop_seconds: float = key("DOGMON_BARK_HOP_SECONDS", "0.5", _float_range(0.1, 0.975),
        "step between 0.975 s YAMNet windows")
    bark_gap_seconds: float = key("DOGMON_BARK_GAP_SECONDS", "3", _float_range(0.5, 60),
        "this long without a barking window ends an episode (and sends its bark event)")
    bark_continuous_seconds: float = key("DOGMON_BARK_CONTINUOUS_SECONDS", "30", _float_range(1, 3600),
        "an episode longer than this sends continuous_barking (once per episode)")
    zone_inertia_frames: int = key("DOGMON_ZONE_INERTIA_FRAMES", "3", _int_range(1, 60),
        "consecutive frames that must agree before the dog counts as entering or leaving a zone")
    fetch_growth: float = key("DOGMON_FETCH_GROWTH", "1.5", _float_range(1.05, 20),
        "fetch_return fires when a carrying dog's box area grew by this factor since the carry began")
    fetch_carry_frames: int = key("DOGMON_FETCH_CARRY_FRAMES", "3", _int_range(1, 60),
        "consecutive frames a toy must be held before it counts as carried")
    heatmap_interval: float = key("DOGMON_HEATMAP_INTERVAL", "10", _float_range(1, 3600),
        "seconds between heatmap overlays")
    heatmap_window_minutes: int = key("DOGMON_HEATMAP_WINDOW_MINUTES", "60", _int_range(1, 1440),
        "how far back the heatmap looks")
    analytics_interval: float = key("DOGMON_ANALYTICS_INTERVAL", "5", _float_range(0.5, 3600),
        "at most one analytics message per this many seconds (only when figures changed)")
    diary_min_away_seconds: float = key("DOGMON_DIARY_MIN_AWAY_SECONDS", "60", _float_range(1, 86400),
        "diary: out of view at least this long is an episode")
    diary_min_rest_seconds: float = key("DOGMON_DIARY_MIN_REST_SECONDS", "600", _float_range(1, 86400),
        "diary: lying down at least this long is a resting episode")
    diary_min_zone_seconds: float = key("DOGMON_DIARY_MIN_ZONE_SECONDS", "60", _float_range(1, 86400),
        "diary: a stay in one zone at least this long is an episode")
    pose_fps: float = key("DOGMON_POSE_FPS", "5", _float_range(0, 30),
        "pose model runs per second per dog (0: pose off, posture from the box only)")
    posture_min_seconds: float = key("DOGMON_POSTURE_MIN_SECONDS", "2", _float_range(0, 600),
        "a posture must hold this long before its sit/stand/lie event fires")
    pose_model: str = key("DOGMON_POSE_MODEL", "", _text(512),
        "pose model: empty/auto (first kind 'pose' manifest in models/ whose weights are installed), off, "
        "a manifest name, or a path to a manifest .json")
    clip_pre_seconds: float = key("DOGMON_CLIP_PRE_SECONDS", "5", _float_range(0, 30),
        "seconds before the triggering event that a clip starts (pre-roll ring of encoded frames)")
    clip_post_seconds: float = key("DOGMON_CLIP_POST_SECONDS", "10", _float_range(1, 300),
        "seconds a clip goes on after its trigger (and after the dog was last active)")
    clip_max_seconds: float = key("DOGMON_CLIP_MAX_SECONDS", "60", _float_range(1, 600),
        "longest clip after its pre-roll, however long the dog stays active")
    clip_events: tuple[str, ...] = key(
        "DOGMON_CLIP_EVENTS", "dog_detected,zone_enter,fetch_return,continuous_barking", _event_names,
        "events that record a clip (comma list; empty: only bookmarks record clips)")
    clip_encoder: str = key("DOGMON_CLIP_ENCODER", "auto", _choice("auto", "h264_v4l2m2m", "libx264", "mp4v"),
        "clip encoder: auto (hardware H.264 h264_v4l2m2m if a test encode works, else libx264, else OpenCV "
        "mp4v), or the one to try first")
    snapshot_events: tuple[str, ...] = key(
        "DOGMON_SNAPSHOT_EVENTS", "dog_detected,sit,stand,lie,zone_enter,fetch_return",
        _event_names, "events that save a snapshot (comma list; empty: only on request)")
    zone_snapshot_interval: float = key("DOGMON_ZONE_SNAPSHOT_INTERVAL", "300", _float_range(0, 86400),
        "zone_enter saves a snapshot at most once per zone in this many seconds, so a dog pacing a zone's edge "
        "does not fill the disk (0: on every entry)")
    live_fps: float = key("DOGMON_LIVE_FPS", "5", _float_range(0.2, 30), "live view (/ws/video) frames per second")
    live_width: int = key("DOGMON_LIVE_WIDTH", "640", _int_range(0, 7680),
        "live view frame width in pixels (0: camera width; never scaled up)")
    media_max_mb: float = key("DOGMON_MEDIA_MAX_MB", "1024", _float_range(0.01, 10**7),
        "snapshots and clips kept on disk at most (oldest removed first)")
    media_max_days: float = key("DOGMON_MEDIA_MAX_DAYS", "14", _float_range(0.001, 3650),
        "snapshots and clips older than this are removed")
    media_min_free_mb: float = key("DOGMON_MEDIA_MIN_FREE_MB", "100", _float_range(0, 10**7),
        "media is not written when less than this would stay free on the data disk (reported as disk_full); "
        "this reserve keeps the event log writable after media stops")
    highlights_at: str = key("DOGMON_HIGHLIGHTS_AT", "23:30",
        _text(5, r"off|([01]\d|2[0-3]):[0-5]\d", "HH:MM (24 h, device local time) or off"),
        "when the day's highlight reel and time-lapse are made each day (HH:MM local time; off: only on "
        "make_highlights)")
    highlights_max_seconds: float = key("DOGMON_HIGHLIGHTS_MAX_SECONDS", "60", _float_range(5, 600),
        "longest highlight reel (moments by priority: bookmarks, fetch, zone dwell, barking, arrivals)")
    timelapse_seconds: float = key("DOGMON_TIMELAPSE_SECONDS", "30", _float_range(0, 3600),
        "a small time-lapse JPEG every this many seconds while the device runs (0: no time-lapse)")
    timelapse_max_seconds: float = key("DOGMON_TIMELAPSE_MAX_SECONDS", "60", _float_range(1, 600),
        "longest time-lapse video (24 fps; a longer day shows evenly spread frames)")
    timelapse_heatmap: bool = key("DOGMON_TIMELAPSE_HEATMAP", "1", _bool,
        "blend the day's heat map (where the dog spent time) into the time-lapse")
    test_clock: str = key("DOGMON_TEST_CLOCK", "", _test_clock,
        "tests only: start the device's clock at this local time (YYYY-MM-DDTHH:MM[:SS]) and run it x<rate> "
        "times faster (e.g. 2026-12-01T07:00x10), so a scripted day plays in minutes; sessions, pairing and "
        "certificates keep the real time")
    # Not keys: where the values came from, and what looked wrong without being invalid.
    env_file: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def test_clock_start(self) -> tuple[float, float] | None:
        """(wall time, rate) the device's clock starts from under ``DOGMON_TEST_CLOCK``, else None."""
        return parse_test_clock(self.test_clock)

    @property
    def mqtt(self) -> MqttTarget | None:
        return parse_mqtt_url(self.mqtt_url) if self.mqtt_url else None

    def describe(self) -> dict[str, str]:
        """Effective configuration by key name, secrets masked (for ``check-config`` and logs)."""
        out: dict[str, str] = {}
        for k in KEYS:
            value = getattr(self, k.field)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "1" if value else "0"
            else:
                text = "" if value is None else str(value)
            if k.name in SECRET_KEYS and text:
                text = "***"
            out[k.name] = mask_credentials(text)
        return out


KEYS: tuple[Key, ...] = tuple(
    dataclasses.replace(f.metadata[_KEY], field=f.name) for f in dataclasses.fields(Config) if _KEY in f.metadata)
KEYS_BY_NAME = {k.name: k for k in KEYS}
