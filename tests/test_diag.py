"""``dogmonitor diag``: pure judgements, then the real command against a live device and broker, a
broken config and a dead broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edge.system.diag import exit_code
from edge.system.diag_checks import FAIL, PASS, WARN, Check, decode_throttled, judge_resources, judge_temperature

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_pi_throttling_flags_are_explained() -> None:
    assert decode_throttled(0).status == PASS
    now = decode_throttled(0x50005)  # under-voltage now, throttled now, both have occurred
    assert now.status == FAIL and "under-voltage now" in now.detail and "power supply" in now.advice
    past = decode_throttled(0x50000)
    assert past.status == WARN and "under-voltage has occurred" in past.detail
    assert decode_throttled(0x8).status == WARN


@pytest.mark.unit
def test_temperature_memory_disk_and_exit_codes() -> None:
    assert judge_temperature(None).status == PASS
    assert judge_temperature(55.0).status == PASS
    assert judge_temperature(74.0).status == WARN
    assert judge_temperature(84.0).status == FAIL and "fan" in judge_temperature(84.0).advice
    statuses = [c.status for c in judge_resources(97, 50, Path("/data"))]
    assert statuses == [FAIL, FAIL]
    assert [c.status for c in judge_resources(40, 5000, Path("/data"))] == [PASS, PASS]

@pytest.mark.unit
def test_exit_code_rule_0_device_fine_1_device_problem_2_config_invalid() -> None:
    assert exit_code([Check("a", PASS, "")]) == 0
    # Warnings about the machine diag runs on (no systemd, clock state unknown) are not device problems.
    assert exit_code([Check("a", PASS, ""), Check("service", WARN, "no systemd", environment=True),
                      Check("clock", WARN, "unknown", environment=True)]) == 0
    assert exit_code([Check("a", PASS, ""), Check("b", WARN, "")]) == 1
    assert exit_code([Check("a", PASS, ""), Check("b", FAIL, ""), Check("c", WARN, "")]) == 1
    assert exit_code([Check("config", FAIL, "invalid DOGMON_WS_PORT")]) == 2


def _healthz(device) -> dict:
    with urllib.request.urlopen(device.http_url + "/healthz", timeout=5) as response:
        return json.loads(response.read())


def run_diag(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, float]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")}
    full.update(env)
    full["PYTHONPATH"] = str(REPO)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "edge", *args], env=full, cwd=cwd, capture_output=True, text=True,
                          timeout=30)
    return done.returncode, done.stdout, time.monotonic() - started


@pytest.mark.e2e
def test_a_healthy_device_passes_every_essential_check(start_device, mosquitto, tmp_path: Path) -> None:
    device = start_device({"DOGMON_SOURCE": "demo", "DOGMON_MQTT_URL": mosquitto.url,
                           "DOGMON_WS_TOKEN": "s3cret-0123456789"})
    deadline = time.monotonic() + 20  # poll until frames flow and the broker is connected
    while (health := _healthz(device))["status"] != "ok" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health["status"] == "ok", health
    env = {k: v for k, v in device.env.items() if k.startswith("DOGMON_")}
    code, out, seconds = run_diag(env, tmp_path, "diag", "--json")
    report = json.loads(out)
    status = {c["name"]: c for c in report["checks"]}
    for essential in ("config", "device", "websocket", "camera", "models", "broker", "memory", "disk"):
        assert status[essential]["status"] == PASS, status[essential]
    assert "/ws/ui: connection message in" in status["websocket"]["detail"]
    assert "device testdog" in status["websocket"]["detail"]
    assert "512x512" in status["camera"]["detail"] and "running device" in status["camera"]["detail"]
    assert "ms/frame" in status["models"]["detail"] and "round trip" in status["broker"]["detail"]
    assert "availability=online" in status["broker"]["detail"]
    # No systemd or NTP status inside a test container: those may only warn, never fail, and they are
    # about this machine, not the device: the exit code is 0.
    assert all(c["status"] in (PASS, WARN) for c in report["checks"])
    assert all(c["environment"] for c in report["checks"] if c["status"] == WARN), report
    assert code == 0 and report["exit_code"] == 0
    assert seconds < 15 and report["seconds"] < 15
    assert device.proc.poll() is None  # diag did not disturb the running device

    # The human table says the same, one row per check.
    code_text, text, _ = run_diag(env, tmp_path, "diag")
    assert code_text == code and "PASS  broker" in text and "PASS  device" in text
    assert "all device checks passed" in text

    # A tablet with another token is refused: the WebSocket row says so and which key to compare.
    code, out, _ = run_diag({**env, "DOGMON_WS_TOKEN": "guess123-guess123-guess123"}, tmp_path, "diag", "--json")
    websocket = {c["name"]: c for c in json.loads(out)["checks"]}["websocket"]
    assert websocket["status"] == FAIL and "refused the token (401)" in websocket["detail"], websocket
    assert "DOGMON_WS_TOKEN" in websocket["advice"] and code == 1


@pytest.mark.e2e
def test_a_broken_config_fails_with_exit_2_and_names_the_key(tmp_path: Path) -> None:
    env_file = tmp_path / "device.env"
    env_file.write_text("DOGMON_WS_PORT=eighty\n")
    code, out, _ = run_diag({}, tmp_path, "--env", str(env_file), "diag")
    assert code == 2
    assert "FAIL  config" in out and "DOGMON_WS_PORT" in out and "problems found" in out
    assert "FAIL config: fix DOGMON_WS_PORT" in out


@pytest.mark.e2e
def test_a_dead_broker_fails_with_advice(mosquitto, model_dir: Path, tmp_path: Path) -> None:
    url = mosquitto.url
    mosquitto.stop()
    env = {"DOGMON_MQTT_URL": url, "DOGMON_MODEL_DIR": str(model_dir), "DOGMON_DATA_DIR": str(tmp_path),
           "DOGMON_SOURCE": "demo", "DOGMON_WS_PORT": "1", "DOGMON_DEVICE_ID": "nobody"}
    code, out, seconds = run_diag(env, tmp_path, "diag", "--json")
    report = json.loads(out)
    status = {c["name"]: c for c in report["checks"]}
    assert code == 1 and report["status"] == FAIL  # a device problem, not an invalid config
    assert status["broker"]["status"] == FAIL and "cannot reach" in status["broker"]["detail"]
    assert "is the broker running" in status["broker"]["advice"]
    # No device runs either: it says so, and the camera is then opened by diag itself.
    assert status["device"]["status"] == FAIL and "not running" in status["device"]["advice"]
    assert status["websocket"]["status"] == FAIL and "did not answer" in status["websocket"]["detail"]
    assert status["camera"]["status"] == PASS and "read by diag" in status["camera"]["detail"]
    assert seconds < 15


@pytest.mark.e2e
def test_a_missing_file_source_says_no_such_file_everywhere_and_no_cable_advice(start_device, tmp_path: Path) -> None:
    from tests.helpers import events, ws_collect, ws_connect

    missing = tmp_path / "clips" / "garden.mp4"
    device = start_device({"DOGMON_SOURCE": str(missing)})
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" for x in m), 15)
        # The camera_offline event came before we connected: read it from the event log.
        ws.send(b'{"type": "get_events", "id": 1, "event_types": ["camera_offline"]}')
        stored = ws_collect(ws, lambda m: any(x["type"] == "reply" for x in m), 10)
    assert not events(got, "camera_online")
    offline = next(m for m in stored if m["type"] == "reply")["data"]["events"][0]["data"]
    assert offline["reason"] == f"no such file: {missing}", offline
    telemetry = next(m for m in got if m["type"] == "telemetry")["data"]["camera"]
    assert telemetry["online"] is False and telemetry["reason"].startswith("no such file"), telemetry
    camera_lines = [line for line in device.logs().splitlines() if "edge.vision.capture" in line]
    assert camera_lines and all("no such file" in line for line in camera_lines), camera_lines
    assert not any("cannot open" in line for line in camera_lines), camera_lines
    env = {k: v for k, v in device.env.items() if k.startswith("DOGMON_")}
    code, out, _ = run_diag(env, tmp_path, "diag", "--json")
    camera = {c["name"]: c for c in json.loads(out)["checks"]}["camera"]
    assert camera["status"] == FAIL and "no such file" in camera["detail"], camera
    assert "cable" not in camera["advice"] and "DOGMON_SOURCE" in camera["advice"], camera
    assert code == 1
    # With no device running, diag opens the source itself and says the same.
    device.stop()
    code, out, _ = run_diag(env, tmp_path, "diag", "--json")
    camera = {c["name"]: c for c in json.loads(out)["checks"]}["camera"]
    assert "no such file" in camera["detail"] and "cable" not in camera["advice"], camera


@pytest.mark.e2e
def test_diag_and_home_assistant_speak_https_to_an_installed_device(start_device, mosquitto, tmp_path: Path) -> None:
    """An installed device (DOGMON_TLS=auto): diag dials https/wss and verifies with the device's own CA, Home
    Assistant's link to it is https and verifies too, and a certificate the CA does not vouch for fails."""
    import ssl

    from edge.web import certs
    from tests.helpers import MqttCollector

    ha_view = MqttCollector(mosquitto.host, mosquitto.port, "homeassistant/#")
    device = start_device({"DOGMON_SOURCE": "demo", "DOGMON_MQTT_URL": mosquitto.url, "DOGMON_TLS": "auto",
                           "DOGMON_SETUP_PORT": "0", "DOGMON_WS_TOKEN": "s3cret-0123456789"}, wait=False)
    ca_file = tmp_path / "data" / "tls" / "ca.crt"
    env = {k: v for k, v in device.env.items() if k.startswith("DOGMON_")}
    deadline = time.monotonic() + 30
    report: dict = {}
    while time.monotonic() < deadline:  # until the device is up and its camera and broker are connected
        code, out, _ = run_diag(env, tmp_path, "--env", "/dev/null", "diag", "--json")
        report = json.loads(out)
        status = {c["name"]: c for c in report["checks"]}
        if all(status[n]["status"] == PASS for n in ("device", "websocket", "camera", "broker")):
            break
        time.sleep(0.5)
    assert code == 0, report
    assert f"wss://127.0.0.1:{device.port}/ws/ui: connection message" in status["websocket"]["detail"], status
    assert "device testdog" in status["websocket"]["detail"]

    # Home Assistant's "visit device" link: https, and it verifies with the device's CA.
    ha_view.wait_for(lambda s: any(t.endswith("/dog_present/config") for t, p, _ in s.messages if p), 20,
                     "HA discovery config")
    config = next(json.loads(p) for t, p, _ in ha_view.messages if t.endswith("/dog_present/config") and p)
    link = config["device"]["configuration_url"]
    assert link == f"https://127.0.0.1:{device.port}/healthz", link
    with urllib.request.urlopen(link, timeout=5, context=ssl.create_default_context(cafile=str(ca_file))) as answer:
        assert json.loads(answer.read())["status"] in ("ok", "degraded")
    ha_view.close()

    # diag with another data dir (another CA): the certificate does not verify, and it says so; never insecure.
    other = tmp_path / "other"
    (other / "tls").mkdir(parents=True)
    (other / "tls" / "ca.crt").write_bytes(certs.make_ca("elsewhere").cert)
    code, out, _ = run_diag({**env, "DOGMON_DATA_DIR": str(other)}, tmp_path, "--env", "/dev/null", "diag", "--json")
    status = {c["name"]: c for c in json.loads(out)["checks"]}
    assert status["device"]["status"] == FAIL and "certificate does not verify" in status["device"]["detail"], status
    assert status["websocket"]["status"] == FAIL and "certificate does not verify" in status["websocket"]["detail"]
    assert "ca.crt" in status["websocket"]["advice"] and code == 1
