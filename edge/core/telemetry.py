"""Telemetry: system health from psutil and pipeline figures from stage timers.

Owns :class:`StageTimers` (bounded windows of per-stage latencies and rates, p50/p95) and
:func:`system_sample`, which reads CPU, load, memory, temperature, battery and disk. Any sensor the
OS does not report is ``None``, never an exception.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import psutil

_PROCESS = psutil.Process()


class StageTimers:
    """Thread-safe latency windows per stage (milliseconds) and event-rate counters."""

    def __init__(self, window: int = 300) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, deque[float]] = {}
        self._ticks: dict[str, deque[float]] = {}
        self.window = window

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._latency.setdefault(stage, deque(maxlen=self.window)).append(seconds * 1000.0)

    def tick(self, counter: str, now: float | None = None) -> None:
        with self._lock:
            self._ticks.setdefault(counter, deque(maxlen=self.window)).append(time.monotonic() if now is None else now)

    def rate(self, counter: str, horizon: float = 5.0) -> float:
        now = time.monotonic()
        with self._lock:
            stamps = [t for t in self._ticks.get(counter, ()) if now - t <= horizon]
        if len(stamps) < 2:
            return 0.0
        return round((len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-6), 2)

    def percentiles(self) -> dict[str, dict[str, float | None]]:
        with self._lock:
            windows = {k: list(v) for k, v in self._latency.items()}
        out: dict[str, dict[str, float | None]] = {}
        for stage, values in windows.items():
            if values:
                p50, p95 = np.percentile(values, [50, 95])
                out[stage] = {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "n": len(values)}
            else:
                out[stage] = {"p50": None, "p95": None, "n": 0}
        return out


def _cpu_temperature() -> float | None:
    try:
        sensors = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        sensors = {}
    for name in ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "thermal_zone0", "cpu-thermal"):
        if sensors.get(name):
            return round(sensors[name][0].current, 1)
    for entries in sensors.values():
        if entries:
            return round(entries[0].current, 1)
    zone = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(zone.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def _battery() -> dict[str, Any] | None:
    try:
        battery = psutil.sensors_battery()
    except (AttributeError, OSError, RuntimeError):
        return None
    if battery is None:
        return None
    return {"percent": round(battery.percent, 1), "plugged": battery.power_plugged}


def system_sample(data_dir: Path) -> dict[str, Any]:
    """One reading of the machine; call off the event loop (psutil reads /proc and /sys)."""
    memory = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(str(data_dir if data_dir.exists() else data_dir.parent))
        disk_free = {"free_mb": round(disk.free / 2**20, 1), "percent_used": disk.percent}
    except OSError:
        disk_free = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    with _PROCESS.oneshot():
        rss = _PROCESS.memory_info().rss
        process_cpu = _PROCESS.cpu_percent(None)
    return {
        "cpu_percent": psutil.cpu_percent(None),
        "cpu_per_core": psutil.cpu_percent(None, percpu=True),
        "load": load,
        "memory_percent": memory.percent,
        "memory_available_mb": round(memory.available / 2**20, 1),
        "process_rss_mb": round(rss / 2**20, 1),
        "process_cpu_percent": process_cpu,
        "cpu_temperature_c": _cpu_temperature(),
        "battery": _battery(),
        "disk": disk_free,
    }
