"""Shared fixtures: the real model mirror, a real mosquitto broker, and real device processes.

Nothing here is a stand-in: the broker is the mosquitto binary on a free loopback port, devices are
``python -m edge run`` subprocesses, models come from the mirror through the project's own fetcher.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.core.models import fetch_all
from tests.protocol_check import CHECKED, take_violations

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def sent_messages_match_the_schema() -> Iterator[None]:
    """Every message a test client received from a device must match the published AsyncAPI schema."""
    take_violations()
    yield
    found = take_violations()
    if found:
        pytest.fail(f"{len(found)} message(s) the device sent do not match the published schema:\n"
                    + "\n".join(found[:5]), pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CHECKED:
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(CHECKED.items()))
        terminalreporter.write_line(f"protocol: {sum(CHECKED.values())} sent messages checked against the "
                                    f"AsyncAPI schema ({len(CHECKED)} kinds): {kinds}")


KINDS = ("unit", "e2e", "browser")  # registered in pyproject.toml; scripts/test --fast runs the unit ones


def mirror_path() -> Path:
    return Path(os.environ.get("DOGMON_MIRROR") or REPO.parent / "shared").resolve()


@pytest.hookimpl(tryfirst=True)  # before -m deselects: every collected test is checked, whatever is selected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test says what it needs by exactly one marker, so `-m unit` (scripts/test --fast) stays honest."""
    wrong = [f"{item.nodeid}: {', '.join(kinds) or 'none'}" for item in items
             if len(kinds := [k for k in KINDS if item.get_closest_marker(k) is not None]) != 1]
    if wrong:
        raise pytest.UsageError(f"{len(wrong)} test(s) need exactly one of the markers {', '.join(KINDS)} "
                                "(pytestmark = pytest.mark.unit at module level, or per test):\n  "
                                + "\n  ".join(wrong[:20]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """No mirror: stop before the first test, with one line, instead of failing every test that needs it."""
    if not any("mirror" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    path = mirror_path()
    if not (path / "models" / "yolox_nano.onnx").is_file() or not (path / "media").is_dir():
        source = "DOGMON_MIRROR" if os.environ.get("DOGMON_MIRROR") else "the default ../shared"
        pytest.exit(f"no model/media mirror at {path} ({source}): set DOGMON_MIRROR to a folder holding models/ "
                    "(yolox_nano.onnx ...) and media/, like the project's ../shared", returncode=4)


@pytest.fixture(scope="session")
def mirror() -> Path:
    return mirror_path()


@pytest.fixture(scope="session")
def model_dir(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    fetch_all(directory, mirror)
    return directory


@pytest.fixture(scope="session")
def media(mirror: Path) -> Path:
    return mirror / "media"


class Mosquitto:
    """A real broker on a free loopback port; ``stop``/``start`` keep the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed: scripts/test installs it (or apt-get install mosquitto)",
                        pytrace=False)
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.extra_conf = ""
        self.persistent = False  # keep sessions and queued QoS 1 messages across stop()/start()
        self.password_file: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        persistence = (f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
                       if self.persistent else "persistence false\n")
        auth = (f"allow_anonymous false\npassword_file {self.password_file}\n" if self.password_file
                else "allow_anonymous true\n")
        # As root, mosquitto would switch to its own user and could not read pytest's private tmp dirs.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"listener {self.port} {self.host}\n{user}{auth}{persistence}{self.extra_conf}")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=(self.workdir / "mosquitto.log").open("ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}", pytrace=False)

    def require_password(self, user: str, password: str) -> None:
        """Restart-free set-up for the next start(): only ``user``/``password`` may connect."""
        self.password_file = self.workdir / "passwords"
        self.password_file.write_text("")
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([tool, "-b", str(self.password_file), user, password], check=True, capture_output=True)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class DeviceProcess:
    """``python -m edge run`` in a subprocess with its own data dir and port."""

    def __init__(self, env: dict[str, str], workdir: Path, wrapper: list[str] | None = None) -> None:
        self.port = int(env["DOGMON_WS_PORT"])
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"device-{self.port}-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([*(wrapper or []), sys.executable, "-m", "edge", "run"], env=env, cwd=workdir,
                                     stdout=subprocess.DEVNULL, stderr=self.log_path.open("wb"))

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/ui"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"device exited with {self.proc.returncode}:\n{self.logs()}", pytrace=False)
            try:
                with urllib.request.urlopen(self.http_url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"device did not answer /healthz within {timeout}s:\n{self.logs()}", pytrace=False)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def tool_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_dir: Path, mirror: Path) -> None:
    """For a tool run in-process (``main([...])``): the models from the mirror, one inference thread, the
    shipped defaults (a folder with no device.env, none of the pose or detection keys of the caller's shell)."""
    for key in ("DOGMON_POSE_MODEL", "DOGMON_DETECT_CLASSES", "DOGMON_DETECT_THRESHOLD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DOGMON_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("DOGMON_MIRROR", str(mirror))
    monkeypatch.setenv("DOGMON_INFERENCE_THREADS", "1")
    monkeypatch.chdir(tmp_path)


def device_starter(model_dir: Path, mirror: Path, workdir: Path) -> tuple[Callable[..., DeviceProcess],
                                                                          list[DeviceProcess]]:
    """``start(env)`` for devices working in ``workdir`` (data in ``workdir/data`` unless ``env`` says), and the
    list of what it started (the caller stops them).

    Unless ``env`` says otherwise the device runs with auth off (``DOGMON_WS_TOKEN=open``, allowed because
    it binds 127.0.0.1): tests about other things need no sign-in. ``{"DOGMON_WS_TOKEN": ""}`` gives the
    shipped default (a token made at first start, pairing codes)."""
    started: list[DeviceProcess] = []

    def start(env: dict[str, str] | None = None, wait: bool = True, wrapper: list[str] | None = None) -> DeviceProcess:
        full = {k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")}
        full.update({
            "DOGMON_DEVICE_ID": "testdog",
            "DOGMON_MODEL_DIR": str(model_dir),
            "DOGMON_MIRROR": str(mirror),
            "DOGMON_DATA_DIR": str(workdir / "data"),
            "DOGMON_WS_HOST": "127.0.0.1",
            "DOGMON_WS_PORT": str(free_port()),
            "DOGMON_WS_TOKEN": "open",
            "DOGMON_TELEMETRY_INTERVAL": "1",
            "DOGMON_INFERENCE_THREADS": "1",
            "DOGMON_LOG_LEVEL": "info",
            "DOGMON_TLS": "off",   # tests over plain HTTP on loopback; the TLS tests turn it on
            "DOGMON_MDNS": "0",    # never multicast on the machine's network (the mDNS test uses a namespace)
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        })
        full.update(env or {})
        device = DeviceProcess(full, workdir, wrapper)
        started.append(device)
        if wait:
            device.wait_ready()
        return device

    return start, started


@pytest.fixture
def start_device(model_dir: Path, mirror: Path, tmp_path: Path) -> Iterator:
    """Factory: ``start_device(env)`` starts a device (waits for /healthz) and stops it at teardown
    (see :func:`device_starter`)."""
    start, started = device_starter(model_dir, mirror, tmp_path)
    yield start
    for device in started:
        device.stop()


@pytest.fixture(scope="module")
def start_module_device(model_dir: Path, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The same factory for a device that several tests of one module share (stopped after the module)."""
    start, started = device_starter(model_dir, mirror, tmp_path_factory.mktemp("module-device"))
    yield start
    for device in started:
        device.stop()
