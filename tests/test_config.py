"""Configuration: precedence, validation messages, masking, and that every key is documented."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from edge.config import KEYS, Config, ConfigError, load_config, parse_mqtt_url
from edge.config.docs import config_markdown
from edge.util.masking import mask_credentials

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "device.env"
    env_file.write_text("# comment\nDOGMON_WS_PORT=9000\nexport DOGMON_SOURCE='rtsp://cam/stream'\n"
                        "DOGMON_ABSENCE_SECONDS=4\n")
    config = load_config(env_file, {"DOGMON_WS_PORT": "9100"})
    assert config.ws_port == 9100            # environment beats the file
    assert config.source == "rtsp://cam/stream"  # the file beats the default, quotes removed
    assert config.absence_seconds == 4.0
    assert config.mqtt_prefix == "dogmonitor"   # default


@pytest.mark.unit
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


@pytest.mark.unit
def test_mqtt_url_parsing() -> None:
    target = parse_mqtt_url("mqtts://user:p%40ss@broker.lan")
    assert (target.host, target.port, target.tls, target.username, target.password) == (
        "broker.lan", 8883, True, "user", "p@ss")
    assert parse_mqtt_url("mqtt://127.0.0.1:1884").port == 1884


@pytest.mark.e2e
def test_check_config_masks_secrets_and_exits_2_on_invalid(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DOGMON_WS_TOKEN": "hunter2-hunter2-hunter2",
           "DOGMON_MQTT_URL": "mqtt://bob:secret@broker:1883"}
    ok = subprocess.run([sys.executable, "-m", "edge", "check-config"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "hunter2-hunter2-hunter2" not in ok.stdout and "secret" not in ok.stdout
    assert "DOGMON_WS_TOKEN" in ok.stdout and "mqtt://***@broker:1883" in ok.stdout
    for command in ("check-config", "run"):
        bad = subprocess.run([sys.executable, "-m", "edge", command], env={**env, "DOGMON_WS_PORT": "http"},
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and "DOGMON_WS_PORT" in lines[0] and "'http'" in lines[0], bad.stderr


@pytest.mark.e2e
def test_check_config_refuses_a_short_token_and_auth_off_beyond_loopback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    for bad in ({"DOGMON_WS_TOKEN": "fifteen-chars-x"},
                {"DOGMON_WS_TOKEN": "open", "DOGMON_WS_HOST": "0.0.0.0"}):
        done = subprocess.run([sys.executable, "-m", "edge", "check-config"], env={**env, **bad}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "DOGMON_WS_TOKEN" in done.stderr, (bad, done.stderr)
        assert "fifteen" not in done.stderr + done.stdout
    for good in ({"DOGMON_WS_TOKEN": "sixteen-chars-xy"}, {"DOGMON_WS_TOKEN": "open", "DOGMON_WS_HOST": "127.0.0.1"},
                 {"DOGMON_WS_TOKEN": ""}):
        done = subprocess.run([sys.executable, "-m", "edge", "check-config"], env={**env, **good}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (good, done.stderr)


@pytest.mark.e2e
def test_every_key_is_documented_in_device_env_and_docs_configuration_md() -> None:
    device_env = (REPO / "device.env").read_text()
    missing_env = [k.name for k in KEYS if f"{k.name}=" not in device_env]
    assert not missing_env, f"not in device.env: {missing_env}"
    # and device.env itself is valid
    load_config(REPO / "device.env", {})
    path = REPO / "docs" / "configuration.md"
    assert path.is_file(), "docs/configuration.md is missing: python -m edge.config --docs > docs/configuration.md"
    assert path.read_text() == config_markdown(), \
        "docs/configuration.md is out of date: run python -m edge.config --docs > docs/configuration.md"
    text = path.read_text()
    for k in KEYS:  # each key once, in a table row with its default
        rows = [line for line in text.splitlines() if line.startswith(f"| `{k.name}` |")]
        assert len(rows) == 1 and (f"`{k.default}`" if k.default else "empty") in rows[0], (k.name, rows)
    # The command the header names prints the same text.
    printed = subprocess.run([sys.executable, "-m", "edge.config", "--docs"], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout == text, printed.stderr


@pytest.mark.unit
def test_config_fields_are_the_keys_and_parsers_return_the_declared_types() -> None:
    # Config's fields are declared once with their keys; each parser must give the field's declared type.
    hints = typing.get_type_hints(Config)
    assert [k.field for k in KEYS] == [f.name for f in dataclasses.fields(Config)][:len(KEYS)]
    assert len({k.name for k in KEYS}) == len(KEYS) and all(k.name.startswith("DOGMON_") for k in KEYS)
    config, defaults = load_config(REPO / "device.env", {}), load_config(Path("/dev/null"), {})
    for k in KEYS:
        value, hint = getattr(config, k.field), hints[k.field]
        origin = typing.get_origin(hint)
        allowed = typing.get_args(hint) if origin is types.UnionType else origin or hint  # Path | None, tuple
        assert isinstance(value, allowed), f"{k.name}: {value!r} is not {hint}"
        assert k.parse(k.default) == getattr(defaults, k.field)


# A password with a raw "@" and "/" (typed as is) and the same one percent-encoded (as a URL should carry it).
RAW_PASSWORD_URL = "rtsp://cam:s3cr@t/pa55@192.0.2.7:554/stream1"
ENCODED_PASSWORD_URL = "rtsp://cam:s3cr%40t%2Fpa55@192.0.2.7:554/stream1"
PASSWORD_PIECES = ("s3cr", "pa55", "%40t", "t/pa")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edge", *args], env=full, cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.unit
@pytest.mark.parametrize(("value", "shown"), [
    (RAW_PASSWORD_URL, "rtsp://***@192.0.2.7:554/stream1"),
    (ENCODED_PASSWORD_URL, "rtsp://***@192.0.2.7:554/stream1"),
    ("mqtts://bob:p@ss/w0rd@broker.lan:8883", "mqtts://***@broker.lan:8883"),
    ("https://TOKEN123@cam.lan/snap.jpg", "https://***@cam.lan/snap.jpg"),
    ("http://cam.lan/cgi-bin/snap.cgi?user=admin&pwd=s3cr3t", "http://cam.lan/cgi-bin/snap.cgi?user=admin&pwd=***"),
    ("gst:rtspsrc location=rtsp://u:s3cr3t@cam/x user-pw=s3cr3t ! decodebin ! appsink",
     "gst:rtspsrc location=rtsp://***@cam/x user-pw=*** ! decodebin ! appsink"),
    ("rtsp://192.0.2.7/stream1", "rtsp://192.0.2.7/stream1"),
    ("/dev/video0", "/dev/video0"),
    ("demo", "demo"),
])
def test_mask_credentials_hides_all_userinfo_and_secret_parameters(value: str, shown: str) -> None:
    assert mask_credentials(value) == shown


@pytest.mark.e2e
def test_check_config_masks_a_password_with_at_and_slash_everywhere_it_prints(tmp_path: Path) -> None:
    for url in (RAW_PASSWORD_URL, ENCODED_PASSWORD_URL):
        env_file = tmp_path / "device.env"
        env_file.write_text(f"DOGMON_SOURCE={url}\nDOGMON_MQTT_URL=mqtt://bob:p%40ss%2Fw0rd@broker:1883\n")
        ok = cli("check-config", "--env", str(env_file))
        assert ok.returncode == 0, ok.stderr
        assert "rtsp://***@192.0.2.7:554/stream1" in ok.stdout and "mqtt://***@broker:1883" in ok.stdout
        assert not [p for p in (*PASSWORD_PIECES, "w0rd", "bob") if p in ok.stdout + ok.stderr], ok.stdout
        # An invalid value is shown in the error, masked too: a raw "/" in an MQTT password would make part of
        # the password the host name, so it is refused with how to write it.
        env_file.write_text(f"DOGMON_MQTT_URL=mqtt://bob:p@ss/w0rd@broker:1883\nDOGMON_SOURCE={url}\n")
        bad = cli("check-config", "--env", str(env_file))
        assert bad.returncode == 2 and "DOGMON_MQTT_URL='mqtt://***@broker:1883'" in bad.stderr, bad.stderr
        assert "%40 %2F" in bad.stderr
        assert "w0rd" not in bad.stdout + bad.stderr and "p@ss" not in bad.stdout + bad.stderr


@pytest.mark.e2e
def test_env_is_accepted_before_and_after_every_subcommand_and_dev_null_is_an_empty_env(tmp_path: Path) -> None:
    env_file = tmp_path / "mine.env"
    env_file.write_text("DOGMON_DEVICE_ID=fromfile\nDOGMON_WS_PORT=eighty\n")
    for args in (("--env", str(env_file), "check-config"), ("check-config", "--env", str(env_file))):
        bad = cli(*args, cwd=tmp_path)
        assert bad.returncode == 2 and "DOGMON_WS_PORT='eighty'" in bad.stderr, (args, bad.stderr)
    env_file.write_text("DOGMON_DEVICE_ID=fromfile\n")
    for args in (("--env", str(env_file), "check-config"), ("check-config", "--env", str(env_file))):
        ok = cli(*args, cwd=tmp_path)
        assert ok.returncode == 0 and "= fromfile" in ok.stdout and f"env file: {env_file}" in ok.stdout, args
    # Every subcommand takes it after its name: argparse would exit 2 with "unrecognized arguments" otherwise.
    for command in ("run", "fetch-models", "watch", "diag"):
        helped = cli(command, "--env", "/nonexistent.env", "--help", cwd=tmp_path)
        assert helped.returncode == 0 and "--env" in helped.stdout, (command, helped.stderr)
    # `run --env FILE` really reads FILE: an invalid value there stops it with exit 2 naming the key.
    env_file.write_text("DOGMON_LOG_LEVEL=loud\n")
    refused = cli("run", "--env", str(env_file), cwd=tmp_path)
    assert refused.returncode == 2 and "DOGMON_LOG_LEVEL='loud'" in refused.stderr, refused.stderr
    # /dev/null is an empty env file, before or after the subcommand.
    for args in (("--env", "/dev/null", "check-config"), ("check-config", "--env", "/dev/null")):
        empty = cli(*args, cwd=tmp_path)
        assert empty.returncode == 0, empty.stderr
        assert "env file: /dev/null" in empty.stdout and "DOGMON_SOURCE                  = demo" in empty.stdout
    missing = cli("check-config", "--env", str(tmp_path / "nope.env"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.env" in missing.stderr


@pytest.mark.e2e
def test_a_misspelled_key_warns_with_the_nearest_key_and_every_invalid_value_is_reported(tmp_path: Path) -> None:
    env_file = tmp_path / "device.env"
    env_file.write_text("DOGMON_SORCE=0\nDOGMON_WS_PORT=http\nDOGMON_LOG_LEVEL=loud\nDOGMON_ABSENCE_SECONDS=-3\n")
    bad = cli("check-config", "--env", str(env_file), cwd=tmp_path)
    assert bad.returncode == 2
    assert f"env file: {env_file}" in bad.stdout
    assert "DOGMON_SORCE" in bad.stderr and "did you mean DOGMON_SOURCE?" in bad.stderr, bad.stderr
    errors = [line for line in bad.stderr.splitlines() if "invalid" in line]
    assert [e.split("=")[0].split()[-1] for e in errors] == [
        "DOGMON_WS_PORT", "DOGMON_ABSENCE_SECONDS", "DOGMON_LOG_LEVEL"], bad.stderr
    # Valid otherwise: the warning alone, exit 0, and the misspelled value really was ignored.
    env_file.write_text("DOGMON_SORCE=0\n")
    ok = cli("check-config", "--env", str(env_file), cwd=tmp_path)
    assert ok.returncode == 0 and "did you mean DOGMON_SOURCE?" in ok.stderr
    assert "DOGMON_SOURCE                  = demo" in ok.stdout
    # From the process environment too; the device logs the warning at start.
    from_env = cli("check-config", "--env", "/dev/null", env={"DOGMON_TELEMETRY_INTERVALL": "3"}, cwd=tmp_path)
    assert "DOGMON_TELEMETRY_INTERVALL" in from_env.stderr and "DOGMON_TELEMETRY_INTERVAL?" in from_env.stderr


@pytest.mark.e2e
def test_check_config_names_a_source_file_that_does_not_exist_yet_the_config_still_loads(tmp_path: Path) -> None:
    clip = tmp_path / "clips" / "garden.mp4"
    env_file = tmp_path / "device.env"
    env_file.write_text(f"DOGMON_SOURCE={clip}\n")
    missing = cli("check-config", "--env", str(env_file), cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "DOGMON_SOURCE" in missing.stderr and "no such file" in missing.stderr and str(clip) in missing.stderr
    # Not a parse error: the device itself still starts with it and retries the file at run time.
    assert load_config(env_file, {}).source == str(clip)
    clip.parent.mkdir()
    clip.write_bytes(b"")
    present = cli("check-config", "--env", str(env_file), cwd=tmp_path)
    assert present.returncode == 0 and "no such file" not in present.stderr, present.stderr
    # Cameras, streams and the demo are not files: check-config does not judge them (diag does).
    for source in ("demo", "0", "rtsp://192.0.2.7/stream1", "/dev/video9"):
        env_file.write_text(f"DOGMON_SOURCE={source}\n")
        assert cli("check-config", "--env", str(env_file), cwd=tmp_path).returncode == 0, source
