"""A newcomer's first hour, through the real CLI and real device processes: credentials masked wherever
shown, a second instance on a taken port, events in the device's own log, and ``watch`` across restarts."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO, free_port
from tests.helpers import MqttCollector, ws_collect, ws_connect

pytestmark = pytest.mark.e2e

# Typed with a raw "@" and "/" as people do; the RTSP port refuses at once, so the camera stays offline.
CAMERA_URL = "rtsp://cam:s3cr@t/pa55@127.0.0.1:9/stream1"
CAMERA_SHOWN = "rtsp://***@127.0.0.1:9/stream1"
MQTT_PASSWORD = "p@ss/w0rd"
SECRET_PIECES = ("s3cr", "pa55", "p@ss", "w0rd", "%40", "%2F")


def leaked(text: str) -> list[str]:
    return [piece for piece in SECRET_PIECES if piece in text]


def test_a_password_with_at_and_slash_is_masked_in_messages_events_log_telemetry_and_diag(
        start_device, mosquitto, tmp_path: Path) -> None:
    mosquitto.stop()
    mosquitto.require_password("bob", MQTT_PASSWORD)
    mosquitto.start()
    mqtt_url = f"mqtt://bob:p%40ss%2Fw0rd@{mosquitto.host}:{mosquitto.port}"
    device = start_device({"DOGMON_SOURCE": CAMERA_URL, "DOGMON_MQTT_URL": mqtt_url})
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["mqtt"]["connected"] for x in m),
                         20)
        ws.send(b'{"type": "get_events", "id": 1, "event_types": ["camera_offline"]}')
        reply = ws_collect(ws, lambda m: any(x["type"] == "reply" for x in m), 10)
    connection = got[0]
    assert connection["type"] == "connection" and connection["data"]["source"] == CAMERA_SHOWN, connection
    stored = next(m for m in reply if m["type"] == "reply")["data"]["events"]
    assert stored and stored[0]["data"]["source"] == CAMERA_SHOWN, stored
    assert not leaked(json.dumps(got + reply))
    # The broker took the percent-encoded password (it was connected above); its retained telemetry is masked.
    # The first telemetry may still be on its way when we subscribe (then it arrives live, not retained):
    # once one has arrived, a second subscriber must get it from the broker as retained.
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#", username="bob",
                               password=MQTT_PASSWORD)
    subscriber.wait_for(lambda s: any(t.endswith("/telemetry") for t, _, _ in s.snapshot()), 10, "telemetry")
    subscriber.close()
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#", username="bob",
                               password=MQTT_PASSWORD)
    subscriber.wait_for(lambda s: any(t.endswith("/telemetry") and r for t, _, r in s.snapshot()), 10,
                        "retained telemetry")
    telemetry = subscriber.json_on("/telemetry")[0]
    assert telemetry["data"]["camera"]["source"] == CAMERA_SHOWN
    assert not leaked(b"".join(p for _, p, _ in subscriber.snapshot()).decode(errors="replace"))
    subscriber.close()
    assert CAMERA_SHOWN in device.logs() and not leaked(device.logs()), device.logs()
    diag_env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")},
                **{k: v for k, v in device.env.items() if k.startswith("DOGMON_")}, "PYTHONPATH": str(REPO)}
    report = subprocess.run([sys.executable, "-m", "edge", "diag", "--json"], env=diag_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert CAMERA_SHOWN in report.stdout and not leaked(report.stdout + report.stderr), report.stdout


def test_a_second_instance_on_a_taken_port_stops_at_once_and_says_which_key(start_device, tmp_path: Path) -> None:
    first = start_device({"DOGMON_SOURCE": "demo"})
    second_data = tmp_path / "second-data"
    second = start_device({"DOGMON_WS_PORT": str(first.port), "DOGMON_DATA_DIR": str(second_data)}, wait=False)
    assert second.proc.wait(30) == 1
    log = second.logs()
    assert "another dogmonitor is probably running" in log and "DOGMON_WS_PORT" in log, log
    assert "Errno 98" not in log
    # It stopped before opening the data dir or loading a model.
    assert not second_data.exists(), list(second_data.iterdir())
    assert "fetching" not in log and "pose model" not in log
    assert first.proc.poll() is None  # the first one runs on


def test_a_taken_port_is_found_even_when_something_else_holds_it(start_device, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        device = start_device({"DOGMON_WS_PORT": str(port), "DOGMON_DATA_DIR": str(tmp_path / "d")}, wait=False)
        assert device.proc.wait(30) == 1
    assert f"port {port} on 127.0.0.1 is already in use" in device.logs(), device.logs()


class LineReader:
    """Reads a subprocess's stdout on a thread, so the test can wait for a line with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=lambda: [self._queue.put(x.rstrip("\n")) for x in proc.stdout], daemon=True).start()

    def wait_for(self, text: str, timeout: float, after: int = 0) -> int:
        """Index of the first line from ``after`` on that contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(after, len(self.lines)):
                if text in self.lines[index]:
                    return index
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout}s; got:\n" + "\n".join(self.lines))
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=remaining))


def emit(url: str, *numbers: int) -> None:
    with ws_connect(url) as ws:
        for n in numbers:
            ws.send(orjson.dumps({"type": "emit_test_event", "id": n, "data": {"n": n}}))
        ws_collect(ws, lambda m: len([x for x in m if x["type"] == "reply"]) >= len(numbers), 10)


def test_watch_waits_for_the_device_follows_it_away_and_back_and_shows_recent_events(start_device,
                                                                                     tmp_path: Path) -> None:
    port = free_port()
    env = {"DOGMON_WS_PORT": str(port), "DOGMON_TEST_EVENTS": "1",
           "DOGMON_SOURCE": str(tmp_path / "no-camera.mp4")}  # no dog: only our test events
    watch_env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")}, "PYTHONPATH": str(REPO)}
    watch = subprocess.Popen([sys.executable, "-m", "edge", "watch", f"ws://127.0.0.1:{port}/ws/ui"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=watch_env)
    try:
        out = LineReader(watch)
        waiting = out.wait_for("is not up yet", 10)
        assert watch.poll() is None  # it waits instead of exiting
        first = start_device(env)
        connected = out.wait_for("connected to testdog", 20, waiting)
        emit(first.ws_url, 1, 2, 3)
        for n in (1, 2, 3):
            out.wait_for(f" test n={n} ", 10, connected)
        first.stop()
        gone = out.wait_for("device went away", 10, connected)
        out.wait_for("is still away", 10, gone)
        second = start_device(env)  # same port and data dir: the event log goes on
        back = out.wait_for("device is back", 20, gone)
        out.wait_for("connected to testdog", 5, back)
        emit(second.ws_url, 4)
        out.wait_for(" test n=4 ", 10, back)
        # Every event printed once, in order, across the restart.
        seqs = [int(x.split("EVENT #")[1].split()[0]) for x in out.lines if "EVENT #" in x]
        assert seqs == sorted(set(seqs)), out.lines
        # No line per empty overlay: the camera-less device sends a detection overlay per idle tick.
        assert not [x for x in out.lines if "overlay detection" in x], out.lines
    finally:
        watch.terminate()
        watch.wait(5)
    # A watch started now shows the last few stored events first.
    late = subprocess.Popen([sys.executable, "-m", "edge", "watch", second.ws_url], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=watch_env)
    try:
        out = LineReader(late)
        header = out.wait_for("last events", 20)
        assert "connected to testdog" in out.lines[header - 1]
        out.wait_for(" test n=4 ", 5, header)
        out.wait_for(" test n=3 ", 5, header)
    finally:
        late.terminate()
        late.wait(5)


def test_watch_beside_the_demo_shows_the_dog_and_its_posture(start_device) -> None:
    """The README's first two commands: the device on the demo clip (a dog walking), then `dogmonitor watch`.
    A watch that connects while the dog is in view gets its posture in the connection message."""
    device = start_device({"DOGMON_SOURCE": "demo"})
    watch_env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")}, "PYTHONPATH": str(REPO)}
    deadline = time.monotonic() + 60
    while True:
        watch = subprocess.Popen([sys.executable, "-m", "edge", "watch", device.ws_url], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=watch_env)
        try:
            out = LineReader(watch)
            connected = out.lines[out.wait_for("connected to testdog", 20)]
            out.wait_for("dog_detected", 20)  # among the last events shown on connect, or live
            if "posture=#" in connected:
                assert "dog_present=True" in connected and "source=demo" in connected, connected
                # While the dog stays present, frames without a detection do not flip the line to "nothing".
                start = len(out.lines)
                with contextlib.suppress(AssertionError):
                    out.wait_for("dog_left", 6, after=start)
                shown = [line for line in out.lines[start:] if " in view: " in line or "dog_left" in line]
                flips = [line for line in shown[:next((i for i, x in enumerate(shown) if "dog_left" in x),
                                                       len(shown))] if line.endswith("in view: nothing")]
                assert not flips, "\n".join(shown)
                assert watch.poll() is None, "\n".join(out.lines)  # still running: no crash on what it got
                # Start-up says which clip encoder is used; the ones refused on this hardware are not news.
                logs = device.logs()
                assert "media: clips as" in logs and "clip encoder h264_v4l2m2m not used" not in logs, logs
                return
        finally:
            watch.terminate()
            watch.wait(5)
        assert time.monotonic() < deadline, f"no connection line with the dog's posture; last: {connected}"


def test_scripts_test_says_what_it_installs_and_never_touches_the_hosts_services(tmp_path: Path) -> None:
    """Runs the real scripts/test in a copy of the repository. apt-get, sudo and systemctl would change this
    machine, so they are recorders on PATH; the rest of PATH holds only the basic tools the script needs,
    so mosquitto, arecord and systemd-analyze look missing and the install branch runs."""
    import shutil
    import stat

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "test", repo / "scripts" / "test")
    calls = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def recorder(path: Path, name: str) -> None:
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> {calls}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    for name in ("apt-get", "systemctl", "service"):
        recorder(bin_dir / name, name)
    (bin_dir / "sudo").write_text(f'#!/bin/bash\necho "sudo $*" >> {calls}\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    recorder(repo / "scripts" / "setup", "setup")
    recorder(repo / ".venv" / "bin" / "ruff", "ruff")
    recorder(repo / ".venv" / "bin" / "mypy", "mypy")
    recorder(repo / ".venv" / "bin" / "python", "pytest")
    for tool in ("bash", "dirname", "id", "env", "cat", "dpkg-query"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    done = subprocess.run(["bash", str(repo / "scripts" / "test"), "-q"], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    log = calls.read_text().splitlines()
    installs = [line for line in log if line.startswith("apt-get") and " install " in line]
    assert installs and "alsa-utils" in installs[0] and "systemd" in installs[0], log
    # It said what it installs, and why, before doing it.
    assert "installing with apt:" in done.stderr and "alsa-utils" in done.stderr, done.stderr
    assert not [line for line in log if line.startswith(("systemctl", "service"))], log
    assert log[-4:] == ["setup test", "ruff check edge tests", "mypy edge", "pytest -m pytest -q"], log

    # --fast: the same checks on the unit tests alone, and no apt step even with the tools missing.
    calls.write_text("")
    done = subprocess.run(["bash", str(repo / "scripts" / "test"), "--fast", "-q"], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "installing" not in done.stderr, done.stderr
    assert calls.read_text().splitlines() == ["setup test", "ruff check edge tests", "mypy edge",
                                              "pytest -m pytest -m unit -q"]
    # The README says what it installs.
    readme = (REPO / "README.md").read_text()
    assert "What it installs" in readme and "alsa-utils" in readme and "never starts, stops or disables" in readme
