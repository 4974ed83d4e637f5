"""systemd notify protocol and the progress watchdog: pure rules, a real bound datagram socket, and real
device processes talking to a NOTIFY_SOCKET the test owns.

How the stall is provoked end to end: the device plays the demo clip once (``DOGMON_SOURCE_LOOP=0``).
When the clip ends the capture thread finishes for good: no frames, no reconnect attempts, yet the
process, its event loop and its inference thread all stay alive. That is exactly the failure a
liveness-only watchdog misses (a camera thread that died or wedged inside a driver call), so the pings
must stop while the process itself keeps running.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from edge.system.systemd import Notifier, ProgressJudge, ProgressSample, socket_address, watchdog_interval


def sample(now: float, frames: int, reconnects: int = 0, beat: float | None = None, online: bool = True,
           alive: bool = True) -> ProgressSample:
    return ProgressSample(now=now, frames=frames, reconnects=reconnects,
                          inference_beat=now if beat is None else beat, camera_online=online, capture_alive=alive)


@pytest.mark.unit
def test_frames_flowing_keep_the_watchdog_fed_and_a_frame_stall_stops_it() -> None:
    judge = ProgressJudge.for_stall(camera_stall_seconds=1.0)  # frame window 4 s
    assert judge.update(sample(0, 0))[0]
    for t in range(1, 10):
        assert judge.update(sample(t, t * 10)) == (True, "frames flowing")
    assert judge.update(sample(12.0, 90))[0]          # 3 s without a frame: still within the window
    healthy, why = judge.update(sample(14.5, 90))     # 5.5 s: stalled, camera still "online"
    assert not healthy and "no frame" in why


@pytest.mark.unit
def test_camera_away_with_the_reconnect_loop_alive_is_progress_until_the_loop_stops() -> None:
    judge = ProgressJudge.for_stall(camera_stall_seconds=5.0)  # retry window 30 + 10 + 10 = 50 s
    judge.update(sample(0, 100))
    attempts = 0
    for t in range(10, 200, 20):  # a reconnect attempt every 20 s (backoff), no frames
        attempts += 1
        healthy, why = judge.update(sample(t, 100, reconnects=attempts, online=False))
        assert healthy and (t < 12 or why == "camera offline, reconnecting")
    last = 190
    assert judge.update(sample(last + 45, 100, reconnects=attempts, online=False))[0]
    healthy, why = judge.update(sample(last + 55, 100, reconnects=attempts, online=False))
    assert not healthy and "no camera reconnect attempt" in why


@pytest.mark.unit
def test_a_stuck_inference_loop_or_a_dead_capture_thread_stops_the_pings() -> None:
    judge = ProgressJudge.for_stall(camera_stall_seconds=1.0)
    judge.update(sample(0, 1))
    healthy, why = judge.update(sample(11, 2, beat=0.5))
    assert not healthy and "inference loop stuck" in why
    judge = ProgressJudge.for_stall(camera_stall_seconds=1.0)
    judge.update(sample(0, 5))
    healthy, why = judge.update(sample(6, 5, online=False, alive=False))
    assert not healthy and "capture thread has ended" in why


@pytest.mark.unit
def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert socket_address("@dogmonitor/notify") == b"\0dogmonitor/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"


def receive_all(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        got.append((time.monotonic(), data.decode()))
    return got


@pytest.mark.unit
def test_notifier_sends_datagrams_to_a_path_and_to_an_abstract_socket(tmp_path: Path) -> None:
    path_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path_sock.bind(str(tmp_path / "notify"))
    abstract_name = f"dogmonitor-test-{uuid.uuid4().hex}"
    abstract_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract_sock.bind(b"\0" + abstract_name.encode())
    try:
        for sock, address in ((path_sock, str(tmp_path / "notify")), (abstract_sock, "@" + abstract_name)):
            notifier = Notifier(address)
            assert notifier.send("READY=1", "STATUS=10.0 fps")
            sock.settimeout(2)
            assert sock.recv(4096) == b"READY=1\nSTATUS=10.0 fps"
            notifier.close()
        # The manager going away is never fatal to the device.
        gone = Notifier(str(tmp_path / "nobody-listens"))
        assert gone.send("WATCHDOG=1") is False
        assert Notifier(None).send("READY=1") is False
    finally:
        path_sock.close()
        abstract_sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()


@pytest.mark.e2e
def test_device_is_ready_after_its_first_frame_and_stops_pinging_when_the_pipeline_stalls(
        start_device, notify_socket, tmp_path: Path) -> None:
    sock, path = notify_socket
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract_name = f"dogmonitor-test-{uuid.uuid4().hex}"
    abstract.bind(b"\0" + abstract_name.encode())
    started = time.monotonic()
    # WatchdogSec=1 → a ping every 0.5 s; the clip plays once (3.2 s) and the capture thread ends.
    device = start_device({"DOGMON_SOURCE": "demo", "DOGMON_SOURCE_LOOP": "0", "DOGMON_CAMERA_STALL_SECONDS": "1",
                           "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}, wait=False)
    # A second device with no camera at all: ready once it is retrying, and pinging while it retries.
    no_camera = start_device({"DOGMON_SOURCE": str(tmp_path / "no-such-camera.mp4"), "DOGMON_DEVICE_ID": "nocam",
                              "NOTIFY_SOCKET": "@" + abstract_name, "WATCHDOG_USEC": "1000000"}, wait=False)
    try:
        got: list[tuple[float, str]] = []
        deadline = time.monotonic() + 60  # start-up is slow on a loaded machine; the clock starts at READY
        while not any("READY=1" in m for _, m in got) and time.monotonic() < deadline:
            got += receive_all(sock, 0.5)
        got += receive_all(sock, 14)  # the rest of the clip (≤ 3.2 s) + the frame window (4 s) + margin
        end = time.monotonic()
        retrying = receive_all(abstract, 0.1)
        retrying += receive_all(abstract, 3)
    finally:
        abstract.close()
    lines = [(t, line) for t, message in got for line in message.split("\n")]
    ready = [t for t, line in lines if line == "READY=1"]
    pings = [t for t, line in lines if line == "WATCHDOG=1"]
    statuses = [line for _, line in lines if line.startswith("STATUS=")]
    assert len(ready) == 1, lines
    assert "first frame processed" in device.logs()
    assert pings and min(pings) >= ready[0], "no ping may come before READY"
    assert any("fps" in s and "WebSocket client" in s for s in statuses), statuses
    # While the clip played the pings came every ~0.5 s …
    playing = [t for t in pings if t - ready[0] < 2.6]
    assert len(playing) >= 4, [round(t - started, 2) for t in pings]
    # … then the capture thread ended, frames stopped and the pings stopped, though the process runs on.
    assert max(pings) < end - 4, [round(t - started, 2) for t in pings]
    assert device.proc.poll() is None
    assert any(s.startswith("STATUS=STALLED") for s in statuses), statuses
    assert "withholding watchdog pings" in device.logs()
    # A clean stop tells the manager it is stopping (not crashing).
    assert device.stop() == 0
    assert any("STOPPING=1" in m for _, m in receive_all(sock, 1.0))

    no_camera_lines = [line for _, message in retrying for line in message.split("\n")]
    assert "READY=1" in no_camera_lines and "WATCHDOG=1" in no_camera_lines, no_camera_lines
    assert "no camera yet, retrying" in no_camera.logs()
    assert any("camera offline" in line for line in no_camera_lines if line.startswith("STATUS="))
