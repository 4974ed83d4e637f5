"""The tablet app's secure-context features in real headless Chromium against a real device process.

On ``http://127.0.0.1:PORT/`` (a secure context, as ``localhost`` is): Chromium's own installability check
finds nothing wrong; the service worker controls the page after a reload and its cache holds the app
shell only, never camera data; the screen wake lock is held on Live; a notification for ``dog_left`` is
shown once "Notify me" is tapped (the permission granted as a person answering "Allow" would), read back
from the service worker registration's own list; with the device stopped, a reload still opens the app
(from the cache) and says the device is unreachable.

On ``http://dogmon.test:PORT/`` (the same device through a host name Chromium maps to 127.0.0.1: plain
http on a name that is not loopback, so not a secure context, like ``http://192.168.x.y``): the page says
what it cannot do and how to fix it, and the silent keep-awake video is playing while Live shows.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.app_page import goto, open_app, screenshots, wait_frames, wait_online
from tests.conftest import free_port
from tests.media import compose_video
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.browser

QUIET_MEDIA = {"DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""}

CACHED_JS = """async () => {
  const out = [];
  for (const name of await caches.keys())
    for (const request of await (await caches.open(name)).keys()) out.push([name, new URL(request.url).pathname]);
  return out;
}"""

SHOWN_NOTIFICATIONS_JS = """async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => ({title: n.title, body: n.body, tag: n.tag}));
}"""

VIDEO_JS = """() => {
  const v = document.getElementById('awake-video');
  const r = v.getBoundingClientRect();
  return {paused: v.paused, muted: v.muted, loop: v.loop, frames: v.getVideoPlaybackQuality().totalVideoFrames,
          shown: r.width > 0 && r.height > 0, src: v.currentSrc};
}"""


def test_secure_context_installs_keeps_the_screen_on_notifies_and_opens_offline(start_device, media: Path,
                                                                                 tmp_path: Path) -> None:
    # the dog is in view for 40 s, then the room is empty: one dog_left after the owner chose to be told
    video = compose_video(tmp_path / "visit.mp4", [(media / LABRADOR, 40.0), (None, 180.0)])
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_ABSENCE_SECONDS": "1", **QUIET_MEDIA})
    with urllib.request.urlopen(device.http_url + "/sw.js") as r:
        worker = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/javascript") and r.headers["Cache-Control"] == "no-cache"
    # a persistent profile: Chromium will not install from an incognito one (its "in-incognito" error)
    with open_app(device.http_url, profile=tmp_path / "profile") as page:
        wait_online(page)
        assert page.evaluate("window.isSecureContext") is True

        # notifications: nothing is asked before a tap; the owner keeps "The dog left", drops the others,
        # taps "Notify me" and answers "Allow" (granted here: headless Chromium shows no prompt)
        assert page.evaluate("Notification.permission") == "default"
        assert page.is_enabled("#notify-on") and "tap “Notify me”" in page.text_content("#notify-status")
        page.uncheck("[data-notify=barking]")
        page.uncheck("[data-notify=zone_dwell]")
        # (CDP's Browser.grantPermissions, under Playwright's grant, denies every permission it does not list:
        # the screen wake lock, allowed by default on a secure origin, is listed to stay allowed)
        page.context.grant_permissions(["notifications", "screen-wake-lock"], origin=device.http_url)
        page.click("#notify-on")
        page.wait_for_selector("#notify-status:has-text('On:')", timeout=5_000)
        assert page.is_hidden("#notify-on")
        stored = page.evaluate("JSON.parse(localStorage.getItem('dogmon.notify'))")
        assert stored["dog_left"] is True and stored["barking"] is False and stored["zone_dwell"] is False

        # Chromium's own checks: the manifest parses without errors and nothing stops installing
        cdp = page.context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest.get("errors") == [], manifest.get("errors")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == [], errors

        # the screen wake lock holds on Live, and the page says so
        page.wait_for_selector("#awake:has-text('Screen kept on')", timeout=10_000)
        assert page.evaluate("navigator.wakeLock.request('screen').then((l) => l.type)") == "screen"
        wait_frames(page, 5)

        # dog_left arrives (the dog's segment ends) and is notified: in the page's log and in the
        # registration's list of shown notifications
        page.wait_for_selector("#notify-log li[data-kind=dog_left][data-outcome=notified]", timeout=90_000)
        assert "The dog left — notified" in page.text_content("#notify-log li[data-kind=dog_left]")
        shown = page.evaluate(SHOWN_NOTIFICATIONS_JS)
        assert [n["title"] for n in shown] == ["The dog left"], shown
        assert shown[0]["tag"] == "dogmon-dog_left" and shown[0]["body"].startswith("Out of view since")
        assert any(m.get("event_type") == "dog_left" for m in page.ui_messages)
        screenshots(page, "pwa-secure", screens=("live",))

        # after a reload the service worker controls the page and serves the shell from its cache
        from_worker: list[str] = []
        page.on("response", lambda r: from_worker.append(r.url) if r.from_service_worker else None)
        page.reload()
        wait_online(page)
        assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == device.http_url + "/sw.js"
        assert device.http_url + "/" in from_worker and device.http_url + "/static/js/main.js" in from_worker
        wait_frames(page, 3)
        goto(page, "device")
        page.wait_for_selector("#dev-health [data-health]", timeout=20_000)   # /healthz fetched
        cached = page.evaluate(CACHED_JS)
        names = {name for name, _ in cached}
        paths = {path for _, path in cached}
        assert len(names) == 1 and next(iter(names)).removeprefix("dogmon-shell-") in worker, names
        assert {"/", "/static/app.css", "/static/js/main.js", "/static/js/live.js", "/static/manifest.webmanifest",
                "/static/icons/icon-192.png", "/static/icons/icon-maskable-512.png"} <= paths, paths
        assert all(p == "/" or p.startswith(("/static/js/", "/static/icons/", "/static/app.css",
                                              "/static/manifest.webmanifest")) for p in paths), paths
        goto(page, "live")

        # the device stops: a reload still opens the app, from the cache, and says the device is unreachable
        device.stop()
        page.reload()
        page.wait_for_selector("#offline:has-text('Device unreachable')", timeout=20_000)
        assert page.is_visible("#tab-live") and page.is_visible("#screen-live")
        assert "unreachable" in page.text_content("#conn")
        screenshots(page, "pwa-unreachable", screens=("live",), settle=0.5)


def test_plain_http_on_a_lan_name_explains_and_plays_the_keep_awake_video(start_device, media: Path,
                                                                        tmp_path: Path) -> None:
    port = free_port()
    video = compose_video(tmp_path / "dog.mp4", [(media / LABRADOR, 120.0)])
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_WS_PORT": str(port),
                           "DOGMON_WS_ORIGINS": f"http://dogmon.test:{port}", **QUIET_MEDIA})
    assert device.http_url.endswith(f":{port}")
    with open_app(f"http://dogmon.test:{port}", args=["--host-resolver-rules=MAP dogmon.test 127.0.0.1"]) as page:
        wait_online(page)
        assert page.evaluate("window.isSecureContext") is False
        assert page.evaluate("'serviceWorker' in navigator || 'wakeLock' in navigator") is False

        # what it cannot do, and how to fix it
        page.wait_for_selector("#insecure", state="visible", timeout=5_000)
        text = page.text_content("#insecure")
        for words in ("Not a secure connection", f"http://dogmon.test:{port}", "keep the screen on",
                      "install as an app", "notifications", "install the device's certificate", "https address"):
            assert words in text, (words, text)
        assert page.get_attribute("#insecure-fix", "href") == "/ca.crt"
        assert page.is_disabled("#notify-on")
        assert "https address" in page.text_content("#notify-status")

        # the silent video plays, looping, on screen, while Live shows
        page.wait_for_selector("#awake:has-text('silent video')", timeout=10_000)
        first = playing(page)
        time.sleep(2.0)
        later = playing(page)
        assert later["frames"] > first["frames"], (first, later)
        assert first["src"].endswith("/static/keepawake.webm")
        wait_frames(page, 3)
        screenshots(page, "pwa-insecure", screens=("live",))

        # another screen lets the screen sleep again; back on Live the video plays again
        goto(page, "timeline")
        assert page.evaluate("document.getElementById('awake-video').paused") is True
        goto(page, "live")
        page.wait_for_function("() => !document.getElementById('awake-video').paused", timeout=5_000)


def playing(page: Any) -> dict[str, Any]:
    state = page.evaluate(VIDEO_JS)
    assert not state["paused"] and state["muted"] and state["loop"] and state["shown"], state
    return state
