"""The tablet app when things are wrong: real headless Chromium against a real device whose camera file
is missing and whose MQTT broker does not answer.

What the owner sees: the Live chips say camera and broker are offline and the picture waits; the
Device screen lists the device's own /healthz problems and the camera's reason from telemetry.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.app_page import goto, open_app, screenshots, wait_online
from tests.conftest import free_port

pytestmark = pytest.mark.browser


def test_missing_camera_and_broker_show_as_offline_chips_and_health_problems(start_device, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-camera.mp4"
    device = start_device({"DOGMON_SOURCE": str(missing), "DOGMON_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"})
    with urllib.request.urlopen(device.http_url + "/healthz") as r:
        health = orjson.loads(r.read())
    with open_app(device.http_url) as page:
        wait_online(page)
        page.wait_for_selector("[data-chip=camera]:has-text('Camera: offline')", timeout=20_000)
        page.wait_for_selector("[data-chip=broker]:has-text('Broker: offline')", timeout=20_000)
        page.wait_for_selector("#live-wait:has-text('Camera offline: no such file')", timeout=20_000)
        goto(page, "device")
        page.wait_for_selector("#dev-health [data-health=degraded]", timeout=20_000)
        problems = page.eval_on_selector_all("#dev-health .problems li", "els => els.map(e => e.textContent)")
        assert {"camera offline", "broker disconnected"} <= set(problems) <= set(health["problems"]) | {
            "camera offline", "broker disconnected"}
        page.wait_for_selector("#dev-conns:has-text('no such file')", timeout=20_000)  # telemetry's reason
        screenshots(page, "trouble", screens=("live", "device"))
