"""Diagnostics over SSH: ``dogmonitor diag`` (and ``scripts/dogmonitor-diag``).

Owns the health checks a person runs when something is wrong, and their report. Each check returns a
:class:`Check` (PASS / WARN / FAIL, what was found, one line of advice when not PASS). Safe to run while
the service runs and without root: the camera is only opened when the running device is not holding
it (otherwise its telemetry is read), the broker check uses its own client id, and nothing is written
except one MQTT message on a private topic. Independent checks run in parallel so the whole report
takes a few seconds (well under 15 s). Exit code (:func:`exit_code`), as for every dogmonitor command:
0 nothing is wrong with the device (all PASS, or warnings only about the machine diag runs on, such as
no systemd or no clock status), 1 a device problem (any FAIL, or any other WARN), 2 the configuration
is invalid.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import Config, ConfigError, load_config

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
RANK = {PASS: 0, WARN: 1, FAIL: 2}
SERVICE = "dogmonitor.service"

# vcgencmd get_throttled bits (Raspberry Pi firmware)
THROTTLE_NOW = {0x1: "under-voltage now", 0x2: "ARM frequency capped now", 0x4: "throttled now",
                0x8: "soft temperature limit now"}
THROTTLE_PAST = {0x10000: "under-voltage has occurred", 0x20000: "frequency capping has occurred",
                 0x40000: "throttling has occurred", 0x80000: "soft temperature limit has occurred"}


@dataclasses.dataclass
class Check:
    name: str
    status: str
    detail: str
    advice: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    # True for a WARN about the machine diag runs on rather than the device (no systemd here, the clock's
    # state unknown): shown, but not a device problem, so it does not change the exit code.
    environment: bool = False


EXIT_OK, EXIT_DEVICE_PROBLEM, EXIT_CONFIG_INVALID = 0, 1, 2


def worst(checks: list[Check]) -> str:
    return max((c.status for c in checks), key=RANK.__getitem__, default=PASS)


def device_problems(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL or (c.status == WARN and not c.environment)]


def exit_code(checks: list[Check]) -> int:
    """0 nothing wrong with the device, 1 a device problem, 2 the configuration is invalid."""
    if any(c.name == "config" and c.status == FAIL for c in checks):
        return EXIT_CONFIG_INVALID
    return EXIT_DEVICE_PROBLEM if device_problems(checks) else EXIT_OK


# --- pure interpretation (tested directly) ---

def decode_throttled(value: int) -> Check:
    now = [text for bit, text in THROTTLE_NOW.items() if value & bit]
    past = [text for bit, text in THROTTLE_PAST.items() if value & bit]
    if value & 0x1:
        return Check("power", FAIL, f"throttled=0x{value:x}: " + ", ".join(now + past),
                     "under-voltage: use the official 5 V power supply and a short, thick USB cable")
    if now:
        return Check("power", WARN, f"throttled=0x{value:x}: " + ", ".join(now + past),
                     "the Pi is slowing down: improve cooling (heatsink/fan) and check the power supply")
    if past:
        return Check("power", WARN, f"throttled=0x{value:x}: " + ", ".join(past),
                     "since boot the Pi was under-powered or too hot at times: check supply and cooling")
    return Check("power", PASS, "throttled=0x0: no under-voltage or throttling since boot")


def judge_temperature(celsius: float | None) -> Check:
    if celsius is None:
        return Check("cpu temperature", PASS, "no temperature sensor reported (not a Pi, or a VM)")
    if celsius >= 80:
        return Check("cpu temperature", FAIL, f"{celsius:.1f} °C",
                     "the CPU is throttling hot: add a heatsink or fan, keep the case ventilated")
    if celsius >= 70:
        return Check("cpu temperature", WARN, f"{celsius:.1f} °C", "running warm: check cooling")
    return Check("cpu temperature", PASS, f"{celsius:.1f} °C")


def judge_resources(memory_percent: float, disk_free_mb: float | None, data_dir: Path) -> list[Check]:
    out = []
    if memory_percent >= 95:
        out.append(Check("memory", FAIL, f"{memory_percent:.0f}% used",
                         "memory nearly exhausted: stop other programs or lower DOGMON_INFERENCE_THREADS"))
    elif memory_percent >= 85:
        out.append(Check("memory", WARN, f"{memory_percent:.0f}% used", "memory is tight: check `top` for hogs"))
    else:
        out.append(Check("memory", PASS, f"{memory_percent:.0f}% used"))
    if disk_free_mb is None:
        out.append(Check("disk", WARN, f"cannot read free space for {data_dir}", "check that the data dir exists"))
    elif disk_free_mb < 100:
        out.append(Check("disk", FAIL, f"{disk_free_mb:.0f} MB free for {data_dir}",
                         "disk almost full: events cannot be stored; free space or lower DOGMON_EVENT_RETENTION_DAYS"))
    elif disk_free_mb < 500:
        out.append(Check("disk", WARN, f"{disk_free_mb:.0f} MB free for {data_dir}", "free some disk space soon"))
    else:
        out.append(Check("disk", PASS, f"{disk_free_mb:.0f} MB free for {data_dir}"))
    return out


def device_url(config: Config) -> str:
    host = "127.0.0.1" if config.ws_host in ("0.0.0.0", "::", "") else config.ws_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{config.ws_port}"


# --- checks that look at the machine ---

def _run(argv: list[str], timeout: float = 3.0) -> subprocess.CompletedProcess | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_config(env_file: Path | None) -> tuple[Config | None, Check]:
    try:
        config = load_config(env_file)
    except ConfigError as exc:
        if exc.key == "--env":
            return None, Check("config", FAIL, f"env file {exc.value} does not exist",
                               "pass an existing file with --env (installed devices: /etc/dogmonitor/device.env)")
        where = f" in {env_file}" if env_file else ""
        fixes = "; ".join(f"fix {e.key}{where} (expected {e.accepted})" for e in exc.errors)
        return None, Check("config", FAIL, "; ".join(str(e) for e in [*exc.errors]) + "".join(
            f"; {w}" for w in exc.warnings), f"{fixes}, then `dogmonitor check-config`")
    except OSError as exc:
        return None, Check("config", FAIL, f"cannot read the env file: {exc}",
                           "run as root (sudo dogmonitor-diag) or join group dogmonitor, or pass --env FILE")
    detail = f"device {config.device_id} ({config.env_file or 'no env file: defaults and environment'})"
    if config.warnings:
        return config, Check("config", WARN, detail + "; " + "; ".join(config.warnings),
                             "correct the key names (a misspelled key is ignored), then `dogmonitor check-config`")
    return config, Check("config", PASS, detail)


def check_service(name: str = SERVICE) -> Check:
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return Check("service", WARN, "systemd is not running here: cannot check the service",
                     "on the device: systemctl status dogmonitor", environment=True)
    active = _run(["systemctl", "is-active", name])
    state = active.stdout.strip() if active else "unknown"
    show = _run(["systemctl", "show", name, "-p", "NRestarts", "-p", "SubState", "-p", "StatusText", "-p",
                 "LoadState"])
    props = dict(line.split("=", 1) for line in (show.stdout.splitlines() if show else []) if "=" in line)
    restarts = props.get("NRestarts", "?")
    status_text = props.get("StatusText", "")
    journal = _run(["journalctl", "-u", name, "-p", "err", "-n", "3", "--no-pager", "-o", "cat", "--since", "-1h"])
    errors = [line for line in (journal.stdout.splitlines() if journal and journal.returncode == 0 else []) if line]
    if props.get("LoadState") == "not-found":
        return Check("service", WARN, f"{name} is not installed", "install the service: sudo scripts/install.sh",
                     environment=True)
    data = {"active": state, "restarts": restarts, "status": status_text, "recent_errors": errors}
    detail = f"{state}, {restarts} restart(s)" + (f", {status_text}" if status_text else "")
    if errors:
        detail += f"; last error: {errors[-1][:160]}"
    if state != "active":
        return Check("service", FAIL, detail, "start it: sudo systemctl start dogmonitor; "
                                              "why it stopped: journalctl -u dogmonitor -n 50", data)
    if errors or (restarts.isdigit() and int(restarts) > 0):
        return Check("service", WARN, detail, "it restarted or logged errors: journalctl -u dogmonitor -n 100", data)
    return Check("service", PASS, detail, data=data)


def check_device(config: Config, wait_telemetry: float) -> Check:
    """/healthz, then the WebSocket: a ``connection`` message and one ``telemetry`` message."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    address = device_url(config)
    headers = {"Authorization": f"Bearer {config.ws_token}"} if config.ws_token else None
    try:
        request = urllib.request.Request(f"http://{address}/healthz", headers=headers or {})
        with urllib.request.urlopen(request, timeout=2) as response:
            health = json.loads(response.read())
    except OSError as exc:
        return Check("device", FAIL, f"no answer on http://{address}/healthz ({exc})",
                     "the device is not running: sudo systemctl start dogmonitor (or `dogmonitor run`); "
                     "logs: journalctl -u dogmonitor -n 50")
    data: dict[str, Any] = {"health": health}
    try:
        with connect(f"ws://{address}/ws/ui", additional_headers=headers, open_timeout=3) as ws:
            deadline = time.monotonic() + wait_telemetry
            while time.monotonic() < deadline and "telemetry" not in data:
                message = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
                if message.get("type") in ("connection", "telemetry") and message["type"] not in data:
                    data[message["type"]] = message.get("data", {})
    except InvalidStatus as exc:
        return Check("device", FAIL, f"WebSocket refused ({exc.response.status_code})",
                     "DOGMON_WS_TOKEN in this env file differs from the running device's", data)
    except (OSError, TimeoutError) as exc:
        if "connection" not in data:
            return Check("device", FAIL, f"WebSocket ws://{address}/ws/ui did not answer ({exc})",
                         "restart the service: sudo systemctl restart dogmonitor", data)
    if "connection" not in data:
        return Check("device", FAIL, "no connection message on the WebSocket", "restart the service", data)
    version = data["connection"].get("software_version")
    problems = health.get("problems", [])
    detail = (f"v{version} up {health.get('uptime_s', 0):.0f}s, {health.get('clients', 0)} client(s), "
              f"last event #{health.get('last_seq')}")
    if "telemetry" not in data:
        return Check("device", WARN, detail + f"; no telemetry within {wait_telemetry:.0f}s",
                     "DOGMON_TELEMETRY_INTERVAL may be long; otherwise the device loop is stuck", data)
    if problems:
        return Check("device", WARN, detail + "; problems: " + ", ".join(problems),
                     "see the camera/broker checks below", data)
    return Check("device", PASS, detail, data=data)


def camera_from_device(device: Check) -> Check:
    telemetry = device.data.get("telemetry", {})
    camera = telemetry.get("camera") or {}
    pipeline = telemetry.get("pipeline") or {}
    frame = device.data.get("connection", {}).get("frame", {})
    detail = (f"{camera.get('source')}: {frame.get('w')}x{frame.get('h')}, capture {pipeline.get('capture_fps')} fps, "
              f"inference {pipeline.get('inference_fps')} fps, {camera.get('reconnects', 0)} reconnect(s) "
              "(from the running device)")
    if not camera.get("online"):
        reason = camera.get("reason") or ""
        if reason.startswith("no such file"):
            return Check("camera", FAIL, f"{camera.get('source')}: OFFLINE, {reason} (from the running device)",
                         "DOGMON_SOURCE names a file that does not exist: correct the path "
                         "(demo: run `dogmonitor fetch-models`)")
        return Check("camera", FAIL, detail.replace(": ", ": OFFLINE, ", 1) + (f"; {reason}" if reason else ""),
                     "check the cable/URL and DOGMON_SOURCE; `ls /dev/video*`; is the user in group video?")
    return Check("camera", PASS, detail)


def open_camera(config: Config, seconds: float = 3.0) -> Check:
    """Open the source ourselves (only when no running device holds it) and time a few frames."""
    import cv2

    from edge.vision.capture import resolve_source

    spec = resolve_source(config.source, config.model_dir)
    if spec.is_file and not Path(str(spec.target)).is_file():
        return Check("camera", FAIL, f"{spec.display}: no such file",
                     "DOGMON_SOURCE names a file that does not exist: correct the path "
                     "(demo: run `dogmonitor fetch-models`)")
    cap = cv2.VideoCapture(spec.target, spec.api)
    try:
        if not cap.isOpened():
            return Check("camera", FAIL, f"{spec.display}: cannot open",
                         "check the cable/URL and DOGMON_SOURCE; `ls /dev/video*`; is the user in group video?")
        frames, started, size = 0, time.monotonic(), (0, 0)
        while time.monotonic() - started < seconds and frames < 30:
            ok, image = cap.read()
            if not ok or image is None:
                break
            frames += 1
            size = (image.shape[1], image.shape[0])
        elapsed = time.monotonic() - started
    finally:
        cap.release()
    if not frames:
        return Check("camera", FAIL, f"{spec.display}: opens but delivers no frames",
                     "another program may hold the camera, or the stream is down")
    fps = (frames - 1) / elapsed if frames > 1 and elapsed > 0 else 0.0
    return Check("camera", PASS, f"{spec.display}: {size[0]}x{size[1]}, {fps:.1f} fps read by diag")


def check_models(config: Config, runs: int = 5) -> Check:
    from edge.core.models import find_manifest, load_manifests, sha256_of

    problems = []
    present = 0
    for manifest in load_manifests():
        for entry in manifest.files:
            path = config.model_dir / entry.name
            if not path.is_file():
                if not manifest.spec.get("optional"):
                    problems.append(f"{entry.name} missing")
                continue
            if sha256_of(path) not in entry.sha256:
                problems.append(f"{entry.name} has a wrong sha256 (corrupt or replaced)")
            else:
                present += 1
    if problems:
        return Check("models", FAIL, f"in {config.model_dir}: " + "; ".join(problems),
                     "run `dogmonitor fetch-models` (as the service user) to fetch and verify them")
    detector = find_manifest("detector")
    if detector is None:
        return Check("models", FAIL, "no detector manifest in models/", "reinstall dogmonitor")
    import numpy as np

    from edge.vision.runtime import create_session

    try:
        session = create_session(config.model_dir / detector.main_file, 1, config.graph_optimization,
                                 config.execution_providers)
        name = session.get_inputs()[0].name
        size = detector.spec["input"]
        blank = np.full((1, 3, size["height"], size["width"]), 114, dtype=np.float32)
        session.run(None, {name: blank})  # warm-up
        started = time.perf_counter()
        for _ in range(runs):
            session.run(None, {name: blank})
        per_frame = (time.perf_counter() - started) / runs * 1000
    except Exception as exc:  # onnxruntime raises its own types
        return Check("models", FAIL, f"{detector.main_file} does not run: {exc}", "reinstall the models")
    detail = f"{present} file(s) verified (sha256); {detector.name} {per_frame:.0f} ms/frame on 1 thread"
    data = {"inference_ms": round(per_frame, 1)}
    if per_frame > 1000:
        return Check("models", WARN, detail, "inference is very slow: is the CPU throttled or busy?", data)
    return Check("models", PASS, detail, data=data)


def check_broker(config: Config, timeout: float = 3.0) -> Check:
    """Connect with our own client id, subscribe, publish, time the round trip; read availability."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    target = config.mqtt
    if target is None:
        return Check("broker", PASS, "MQTT off (DOGMON_MQTT_URL empty)")
    where = f"{target.host}:{target.port}"
    base = f"{config.mqtt_prefix}/{config.device_id}"
    probe = f"{base}/diag/{uuid.uuid4().hex[:12]}"
    connected, got, ready = threading.Event(), threading.Event(), threading.Event()
    state: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        state["reason"] = str(reason)
        if not reason.is_failure:
            client.subscribe([(probe, 1), (f"{base}/availability", 1)])
        connected.set()

    def on_subscribe(*args: Any) -> None:
        ready.set()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == probe:
            state["rtt"] = time.monotonic() - state["sent"]
            got.set()
        else:
            state["availability"] = message.payload.decode(errors="replace")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dogmonitor-diag-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        import ssl
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    deadline = time.monotonic() + timeout
    try:
        client.connect(target.host, target.port, keepalive=10)
    except OSError as exc:
        return Check("broker", FAIL, f"cannot reach {where}: {exc}",
                     "is the broker running (systemctl status mosquitto)? check DOGMON_MQTT_URL and the firewall")
    client.loop_start()
    try:
        if not connected.wait(max(0.1, deadline - time.monotonic())):
            return Check("broker", FAIL, f"{where} accepted TCP but did not answer MQTT CONNECT",
                         "is that port really an MQTT broker (TLS needs mqtts://)?")
        if "rtt" not in state and state.get("reason", "Success") != "Success":
            advice = ("check the user and password in DOGMON_MQTT_URL" if "auth" in state["reason"].lower()
                      or "password" in state["reason"].lower() else "check the broker's log")
            return Check("broker", FAIL, f"{where} refused the connection: {state['reason']}", advice)
        ready.wait(max(0.1, deadline - time.monotonic()))
        state["sent"] = time.monotonic()
        client.publish(probe, b"diag", qos=1)
        if not got.wait(max(0.1, deadline - time.monotonic())):
            return Check("broker", FAIL, f"{where}: connected but our own message did not come back",
                         "the broker's ACLs may forbid this prefix; check the broker's log")
        time.sleep(0.05)  # the retained availability arrives right after SUBACK
    finally:
        client.disconnect()
        client.loop_stop()
    availability = state.get("availability", "none")
    detail = f"{where}: round trip {state['rtt'] * 1000:.1f} ms; {base}/availability={availability}"
    return Check("broker", PASS, detail, data={"rtt_ms": round(state["rtt"] * 1000, 2),
                                               "availability": availability})


def check_system(config: Config) -> list[Check]:
    import psutil

    from edge.core.telemetry import _cpu_temperature

    out = [judge_temperature(_cpu_temperature())]
    vcgencmd = _run(["vcgencmd", "get_throttled"])
    if vcgencmd is not None and vcgencmd.returncode == 0 and "=" in vcgencmd.stdout:
        with contextlib.suppress(ValueError):
            out.append(decode_throttled(int(vcgencmd.stdout.strip().split("=", 1)[1], 16)))
    directory = config.data_dir if config.data_dir.exists() else config.data_dir.parent
    try:
        free_mb: float | None = psutil.disk_usage(str(directory)).free / 2**20
    except OSError:
        free_mb = None
    out += judge_resources(psutil.virtual_memory().percent, free_mb, config.data_dir)
    sync = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if sync is None or sync.returncode != 0 or not sync.stdout.strip():
        out.append(Check("clock", WARN, "cannot tell whether the clock is synchronised (timedatectl unavailable)",
                         "event times need a synchronised clock: check `timedatectl` on the device",
                         environment=True))
    elif sync.stdout.strip() == "yes":
        out.append(Check("clock", PASS, "synchronised (NTP)"))
    else:
        # The host's clock setting, not a fault of the device: shown, but not counted as a device problem.
        out.append(Check("clock", WARN, "not synchronised", "event times may be wrong: sudo timedatectl set-ntp true "
                                                           "and check network access to NTP", environment=True))
    return out


# --- the whole run ---

def run_checks(env_file: Path | None, service: str = SERVICE, budget: float = 12.0) -> list[Check]:
    config, config_check = check_config(env_file)
    checks = [config_check]
    if config is None:
        return checks
    wait_telemetry = min(budget / 2, config.telemetry_interval + 1.5)
    jobs: dict[str, Callable[[], Any]] = {
        "service": lambda: check_service(service),
        "device": lambda: check_device(config, wait_telemetry),
        "models": lambda: check_models(config),
        "broker": lambda: check_broker(config),
        "system": lambda: check_system(config),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        results: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=budget)
            except Exception as exc:  # a check that crashed is itself a finding
                results[name] = Check(name, FAIL, f"check failed: {exc!r}", "report this as a bug")
    device = results["device"]
    service_check = results["service"]
    if service_check.status == FAIL and device.status != FAIL:
        # Not running as the service, yet a device answers: started by hand (development, a test run).
        results["service"] = Check("service", WARN, service_check.detail + "; but a device answers on "
                                   f"{device_url(config)} (started by hand?)",
                                   "for unattended use run it as the service: sudo systemctl enable --now dogmonitor",
                                   environment=True)
    # The camera: read the running device's view when it answers (it holds the camera); else open it.
    camera = camera_from_device(device) if device.status != FAIL else open_camera(config)
    checks += [results["service"], device, camera, results["models"], results["broker"], *results["system"]]
    return checks


def render_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'':4}  {'CHECK':<{width}}  DETAIL"]
    for c in checks:
        lines.append(f"{c.status:4}  {c.name:<{width}}  {c.detail}")
    advice = [c for c in checks if c.status != PASS and c.advice]
    if advice:
        lines.append("")
        lines += [f"{c.status} {c.name}: {c.advice}" for c in advice]
    lines.append("")
    code = exit_code(checks)
    notes = sum(1 for c in checks if c.status == WARN and c.environment)
    if code == EXIT_CONFIG_INVALID:
        lines.append("problems found: the configuration is invalid (exit 2)")
    elif code == EXIT_DEVICE_PROBLEM:
        worst_status = worst(device_problems(checks))
        lines.append(("problems found" if worst_status == FAIL else "working, with warnings") + " (exit 1)")
    else:
        lines.append("all device checks passed" + (f" ({notes} note(s) about this machine, not the device)"
                                                   if notes else ""))
    return "\n".join(lines)


def render_json(checks: list[Check], seconds: float) -> str:
    return json.dumps({"status": worst(checks), "exit_code": exit_code(checks), "seconds": round(seconds, 2),
                       "checks": [{k: v for k, v in dataclasses.asdict(c).items() if k != "data" or v}
                                  for c in checks]}, default=str)


def main(env_file: Path | None, as_json: bool, service: str = SERVICE) -> int:
    started = time.monotonic()
    checks = run_checks(env_file, service)
    elapsed = time.monotonic() - started
    print(render_json(checks, elapsed) if as_json else render_table(checks) + f" ({elapsed:.1f}s)")
    return exit_code(checks)
