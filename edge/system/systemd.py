"""systemd integration: the sd_notify protocol and a watchdog that pings only while the pipeline moves.

Owns readiness, status and watchdog messages to the service manager. The protocol is a datagram of
``KEY=VALUE`` lines sent to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for
the abstract namespace); ``$WATCHDOG_USEC`` (for ``$WATCHDOG_PID`` when set) asks for ``WATCHDOG=1``
at least that often, and we ping at half of it.

A process that is alive is not the same as a device that works. :class:`ProgressJudge` (pure logic)
decides from counters whether the pipeline is making progress: frames processed recently, or, while
the camera is away, the capture thread's reconnect attempts still happening, and in both cases the
inference thread still looping. Only then is ``WATCHDOG=1`` sent; when the pipeline hangs (a wedged
driver read, a deadlocked model run, a capture thread that died), the pings stop and systemd restarts
the service after ``WatchdogSec``. ``READY=1`` is sent after the first processed frame, or as soon as
the capture enters its retry loop with no camera (the service is up and doing what it can).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edge.config import Config
from edge.core.feature import Feature
from edge.util.retry import RECONNECT_MAX

if TYPE_CHECKING:
    from edge.core.feature import DeviceStatus, Host

log = logging.getLogger(__name__)

CAPTURE_BACKOFF_MAX = RECONNECT_MAX  # CaptureThread's default ceiling between reconnect attempts


def socket_address(value: str) -> str | bytes:
    """``@name`` is an abstract-namespace socket (leading NUL byte on the wire); anything else is a path."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC), or None when no watchdog is asked of this process."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. our parent shell)
    return int(usec) / 1e6 / 2


class Notifier:
    """Sends sd_notify datagrams; a no-op when ``$NOTIFY_SOCKET`` is not set."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.sock: socket.socket | None = None
        self.sent = 0
        self._failed = False
        if address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *lines: str) -> bool:
        if self.sock is None or self.address is None:
            return False
        try:
            self.sock.sendto("\n".join(lines).encode(), socket_address(self.address))
        except OSError as exc:  # the manager went away or its queue is full: never fatal
            if not self._failed:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
            self._failed = True
            return False
        self._failed = False
        self.sent += 1
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclasses.dataclass(frozen=True)
class ProgressSample:
    now: float               # monotonic seconds
    frames: int              # frames processed by the inference thread
    reconnects: int          # capture reconnect attempts
    inference_beat: float    # monotonic time the inference loop last went round
    camera_online: bool
    capture_alive: bool      # the capture thread is running (or not started yet)


class ProgressJudge:
    """Is the pipeline making progress? Frames flowing, or the camera reconnect loop alive."""

    def __init__(self, frame_window: float, retry_window: float, beat_window: float | None = None) -> None:
        self.frame_window, self.retry_window = frame_window, retry_window
        self.beat_window = beat_window if beat_window is not None else max(10.0, frame_window)
        self._frames: int | None = None
        self._reconnects: int | None = None
        self._frame_change = 0.0
        self._retry_change = 0.0

    @classmethod
    def for_stall(cls, camera_stall_seconds: float) -> ProgressJudge:
        """Windows that fit the capture thread: a stalled read ends within ``stall`` and backoff is capped."""
        return cls(frame_window=2 * camera_stall_seconds + 2,
                   retry_window=CAPTURE_BACKOFF_MAX + 2 * camera_stall_seconds + 10)

    def update(self, s: ProgressSample) -> tuple[bool, str]:
        if self._frames is None or s.frames != self._frames:
            self._frames, self._frame_change = s.frames, s.now
        if self._reconnects is None or s.reconnects != self._reconnects:
            self._reconnects, self._retry_change = s.reconnects, s.now
        beat_age = s.now - s.inference_beat
        if beat_age > self.beat_window:
            return False, f"inference loop stuck for {beat_age:.0f}s"
        frame_age = s.now - self._frame_change
        if frame_age <= self.frame_window:
            return True, "frames flowing"
        retry_age = s.now - self._retry_change
        if s.capture_alive and not s.camera_online and retry_age <= self.retry_window:
            return True, "camera offline, reconnecting"
        if not s.capture_alive:
            return False, f"no frame for {frame_age:.0f}s and the capture thread has ended"
        return False, (f"no frame for {frame_age:.0f}s and no camera reconnect attempt for {retry_age:.0f}s "
                       f"(camera {'online' if s.camera_online else 'offline'})")


def status_line(fps: float, camera_online: bool, clients: int, mqtt: str | None, healthy: bool, why: str) -> str:
    camera = "camera online" if camera_online else "camera offline"
    text = f"{fps:.1f} fps, {camera}, {clients} WebSocket client{'s' if clients != 1 else ''}"
    if mqtt is not None:
        text += f", MQTT {mqtt}"
    return text if healthy else f"STALLED ({why}); {text}"


class SystemdFeature(Feature):
    """Runs the notify loop on the event loop; switched on when ``$NOTIFY_SOCKET`` is set."""

    name = "systemd"

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.notifier = Notifier(environ.get("NOTIFY_SOCKET"))
        self.interval = watchdog_interval(environ)
        self.judge = ProgressJudge.for_stall(config.camera_stall_seconds)
        self.host: Host | None = None
        self.ready = False
        self.healthy = True
        self.pings = 0
        self.withheld = 0
        self._task: asyncio.Task | None = None
        self._last_status = ""
        self._status_sent_at = 0.0

    def attach(self, host: Host) -> None:
        self.host = host

    async def start(self) -> None:
        if self.notifier.enabled:
            log.info("systemd notify socket %s; watchdog %s", self.notifier.address,
                     f"ping every {self.interval:.1f}s" if self.interval else "off")
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.notifier.send("STOPPING=1", "STATUS=stopping")
        self.notifier.close()

    def telemetry(self) -> dict[str, Any]:
        return {"ready": self.ready, "healthy": self.healthy, "pings": self.pings, "withheld": self.withheld}

    def sample(self, status: DeviceStatus) -> ProgressSample:
        return ProgressSample(now=time.monotonic(), frames=status.frames, reconnects=status.reconnects,
                              inference_beat=status.inference_beat, camera_online=status.camera_online,
                              capture_alive=status.capture_alive)

    def tick(self) -> None:
        """One round: READY once, WATCHDOG=1 if progressing, STATUS when it changed (or every 10 s)."""
        assert self.host is not None
        status = self.host.status()
        sample = self.sample(status)
        healthy, why = self.judge.update(sample)
        lines: list[str] = []
        if not self.ready and (sample.frames > 0 or (sample.reconnects > 0 and not sample.camera_online)):
            self.ready = True
            lines.append("READY=1")
            log.info("ready (%s)", "first frame processed" if sample.frames else "no camera yet, retrying")
        if healthy != self.healthy:
            if healthy:
                log.warning("pipeline progressing again (%s); watchdog pings resumed", why)
            else:
                log.error("pipeline stalled: %s; withholding watchdog pings so systemd restarts the service", why)
            self.healthy = healthy
        if self.interval is not None and self.ready:
            if healthy:
                lines.append("WATCHDOG=1")
                self.pings += 1
            else:
                self.withheld += 1
        line = status_line(status.inference_fps, sample.camera_online, status.clients, status.mqtt_status,
                           healthy, why)
        if line != self._last_status or sample.now - self._status_sent_at >= 10:
            lines.append(f"STATUS={line}")
            self._last_status, self._status_sent_at = line, sample.now
        if lines:
            self.notifier.send(*lines)

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("systemd notify tick failed")
            # Fast ticks until READY so start-up is not delayed; then at the watchdog's pace.
            period = 0.25 if not self.ready else min(self.interval or 5.0, 5.0)
            await asyncio.sleep(period)
