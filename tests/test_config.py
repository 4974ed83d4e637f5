"""Configuration: precedence, validation messages, masking, and that every key is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import KEYS, ConfigError, load_config, parse_mqtt_url

REPO = Path(__file__).resolve().parent.parent


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "device.env"
    env_file.write_text("# comment\nDOGMON_WS_PORT=9000\nexport DOGMON_SOURCE='rtsp://cam/stream'\n"
                        "DOGMON_ABSENCE_SECONDS=4\n")
    config = load_config(env_file, {"DOGMON_WS_PORT": "9100"})
    assert config.ws_port == 9100            # environment beats the file
    assert config.source == "rtsp://cam/stream"  # the file beats the default, quotes removed
    assert config.absence_seconds == 4.0
    assert config.mqtt_prefix == "dogmonitor"   # default


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("DOGMON_WS_PORT", "70000", "an integer from 0 to 65535"),
    ("DOGMON_SOURCE_LOOP", "maybe", "one of 1/0, true/false"),
    ("DOGMON_MQTT_URL", "http://broker", "mqtt://"),
    ("DOGMON_DETECT_THRESHOLD", "nan", "a number from 0.01 to 0.99"),
    ("DOGMON_LOG_LEVEL", "loud", "one of debug, info, warning, error"),
    ("DOGMON_DEVICE_ID", "living room/1", "1-64 characters"),
])
def test_invalid_value_names_key_value_and_accepted(key: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {key: value})
    text = str(info.value)
    assert key in text and repr(value) in text and accepted in text


def test_mqtt_url_parsing() -> None:
    target = parse_mqtt_url("mqtts://user:p%40ss@broker.lan")
    assert (target.host, target.port, target.tls, target.username, target.password) == (
        "broker.lan", 8883, True, "user", "p@ss")
    assert parse_mqtt_url("mqtt://127.0.0.1:1884").port == 1884


def test_check_config_masks_secrets_and_exits_2_on_invalid(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DOGMON_WS_TOKEN": "hunter2",
           "DOGMON_MQTT_URL": "mqtt://bob:secret@broker:1883"}
    ok = subprocess.run([sys.executable, "-m", "edge", "check-config"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "hunter2" not in ok.stdout and "secret" not in ok.stdout
    assert "DOGMON_WS_TOKEN" in ok.stdout and "mqtt://bob:***@broker:1883" in ok.stdout
    for command in ("check-config", "run"):
        bad = subprocess.run([sys.executable, "-m", "edge", command], env={**env, "DOGMON_WS_PORT": "http"},
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and "DOGMON_WS_PORT" in lines[0] and "'http'" in lines[0], bad.stderr


def test_every_key_is_documented_in_device_env_and_readme() -> None:
    device_env = (REPO / "device.env").read_text()
    readme = (REPO / "README.md").read_text()
    missing_env = [k.name for k in KEYS if f"{k.name}=" not in device_env]
    missing_readme = [k.name for k in KEYS if f"`{k.name}`" not in readme]
    assert not missing_env, f"not in device.env: {missing_env}"
    assert not missing_readme, f"not in the README configuration table: {missing_readme}"
    # and device.env itself is valid
    load_config(REPO / "device.env", {})
