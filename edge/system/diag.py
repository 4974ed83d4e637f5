"""Diagnostics over SSH: ``dogmonitor diag`` (and ``scripts/dogmonitor-diag``): the run and its report.

Runs the checks (:mod:`edge.system.diag_checks` on this machine, :mod:`edge.system.diag_probes` over the
network) and prints a PASS / WARN / FAIL table with one line of advice per problem, or ``--json``. Safe to
run while the service runs and without root: the camera is only opened when the running device is not
holding it (otherwise its telemetry is read), the broker check uses its own client id, and nothing is
written except one MQTT message on a private topic. Independent checks run in parallel so the whole report
takes a few seconds (well under 15 s). Exit code (:func:`exit_code`), as for every dogmonitor command:
0 nothing is wrong with the device (all PASS, or warnings only about the machine diag runs on, such as
no systemd or no clock status), 1 a device problem (any FAIL, or any other WARN), 2 the configuration
is invalid.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.system.diag_checks import (
    FAIL,
    PASS,
    RANK,
    SERVICE,
    WARN,
    Check,
    check_config,
    check_models,
    check_service,
    check_system,
    open_camera,
)
from edge.system.diag_probes import camera_from_device, check_broker, check_device, check_websocket, device_url

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
        "websocket": lambda: check_websocket(config),
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
    checks += [results["service"], device, results["websocket"], camera, results["models"], results["broker"],
               *results["system"]]
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
