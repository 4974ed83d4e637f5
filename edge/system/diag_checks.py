"""The checks ``dogmonitor diag`` runs on this machine, and the :class:`Check` every check returns.

Each check returns PASS / WARN / FAIL, what was found, and one line of advice when not PASS: the
configuration, the systemd service, the models (present, verified, timed on one thread), the camera opened
by diag itself (only when no running device holds it) and the machine (temperature, power, memory, disk,
clock). The checks that talk to the running device and the broker are in :mod:`edge.system.diag_probes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import time
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
