"""Configuration values: the parsers each key declares (raw string in, value or ``ValueError(accepted)`` out)
and :class:`ConfigError`, which names the key, the value and what is accepted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from edge.util.masking import mask_credentials

T = TypeVar("T")

SECRET_KEYS = frozenset({"DOGMON_WS_TOKEN", "DOGMON_HOME_SECRET"})


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


TEST_CLOCK_RULE = ("empty (the system's clock), or a local time YYYY-MM-DDTHH:MM[:SS] and optionally x<rate> "
                   "(1 to 100): the device starts at that moment and its clock runs rate times faster; for tests")


def parse_test_clock(value: str) -> tuple[float, float] | None:
    """``2026-12-01T07:00x10`` → (epoch seconds of that local time, 10.0); empty → None."""
    value = value.strip()
    if not value:
        return None
    moment, _, rate_text = value.partition("x")
    try:
        wall = dt.datetime.fromisoformat(moment).timestamp()
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        raise ValueError(TEST_CLOCK_RULE) from None
    if not 1.0 <= rate <= 100.0 or not math.isfinite(wall):
        raise ValueError(TEST_CLOCK_RULE)
    return wall, rate


def _test_clock(raw: str) -> str:
    parse_test_clock(raw)
    return raw.strip()


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


def _home_secret(raw: str) -> str:
    value = raw.strip()
    if value and not 16 <= len(value) <= 256:
        raise ValueError("empty (no peers) or 16 to 256 characters, the same on every device of the home")
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
    from edge.protocol.messages import EventType  # messages imports nothing from here

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
