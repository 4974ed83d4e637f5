"""The tablet app when things are wrong: real headless Chromium against a real device whose camera file
is missing and whose MQTT broker does not answer.

What the owner sees: the Live chips say camera and broker are offline and the picture waits; the
Device screen lists the device's own /healthz problems and the camera's reason from telemetry. Too
many wrong tokens at sign-in: the device's own words and how long to wait, not "[object Object]".
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.app_page import SHOTS, goto, open_app, screenshots, wait_online
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


def test_too_many_wrong_tokens_show_the_devices_message_and_the_wait(start_device, tmp_path: Path) -> None:
    device = start_device({"DOGMON_SOURCE": str(tmp_path / "no-such-camera.mp4"),
                           "DOGMON_WS_TOKEN": "right-0123456789ab"})
    with open_app(device.http_url) as page:
        page.wait_for_selector("#login[open]", timeout=15_000)
        statuses = []
        while 429 not in statuses:      # ten wrong tries are allowed, then one per 6 s
            assert len(statuses) < 13, f"no 429 after {statuses}"
            page.fill("#login-token", "wrong")
            with page.expect_response("**/api/login") as response:
                page.press("#login-token", "Enter")
            statuses.append(response.value.status)
            if statuses[-1] == 401:
                page.wait_for_selector("#login-error:has-text('That token is not right.')")
        assert statuses == [401] * 10 + [429], statuses
        page.wait_for_selector("#login-error:has-text('Sign-in failed')", timeout=5_000)
        shown = page.text_content("#login-error")
        # what the device says to anyone on this address now (it is still refusing)
        request = urllib.request.Request(device.http_url + "/api/login", data=b'{"token": "wrong"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        body = orjson.loads(refused.value.read())
        wait = refused.value.headers["Retry-After"]
        assert refused.value.code == 429 and body["error"]["code"] == "rate_limited"
        assert shown == f"Sign-in failed: {body['error']['message']}. Try again in {wait} s.", shown
        assert "[object Object]" not in shown
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "login-refused-1280x800.png"))


def test_sign_out_everywhere_ends_every_session_and_the_old_cookie_gets_401(start_device, tmp_path: Path) -> None:
    from tests.app_page import sign_in

    token = "right-0123456789ab"
    device = start_device({"DOGMON_SOURCE": str(tmp_path / "no-such-camera.mp4"), "DOGMON_WS_TOKEN": token})

    def state_with(cookie: str) -> int:
        request = urllib.request.Request(device.http_url + "/api/state", headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    # another tablet signed in too: its session ends as well
    login = urllib.request.Request(device.http_url + "/api/login", data=orjson.dumps({"token": token}), method="POST",
                                   headers={"Content-Type": "application/json", "Origin": device.http_url})
    with urllib.request.urlopen(login, timeout=5) as answer:
        other = answer.headers["Set-Cookie"].split(";", 1)[0]
    assert state_with(other) == 200

    with open_app(device.http_url) as page:
        sign_in(page, token)
        cookies = [c for c in page.context.cookies() if c["httpOnly"]]
        assert cookies, page.context.cookies()
        mine = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
        assert state_with(mine) == 200
        goto(page, "device")
        with page.expect_response("**/api/logout?all=1") as response:
            page.click("#dev-signout-all")
        assert response.value.status == 200
        page.wait_for_selector("#dev-signout-status:has-text('Signed out everywhere (2 sessions ended)')",
                               timeout=5_000)
        assert state_with(mine) == 401 and state_with(other) == 401
        page.wait_for_selector("#login[open]", timeout=15_000)  # the page reloaded and asks to sign in again
