"""The tablet app's zone editor in real headless Chromium against a real device with a dog in view.

A zone is drawn with touch taps and a mouse drag (pointer events) on the live picture, named, given
the return role and saved: the device stores exactly that polygon, the dog's ``zone_enter`` then shows
in the page's timeline, and the zone shows as occupied. A self-crossing zone is refused by the device,
and its own message is shown on that zone; a name used twice marks the second zone's name field. The
page works with no token configured (no sign-in). The zones on screen are read from the editor's SVG
outlines (``polygon[data-name]``), as drawn.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.app_page import goto, open_app, screenshots, wait_frames, wait_online
from tests.helpers import ws_collect, ws_connect
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.browser


@pytest.fixture
def room_with_dog(media: Path, tmp_path: Path) -> Path:
    from tests.media import compose_video

    return compose_video(tmp_path / "room.mp4", [(None, 1.0), (media / LABRADOR, 120.0)])


def reply(ws, command: dict) -> dict:
    ws.send(orjson.dumps(command))
    got = ws_collect(ws, lambda m: any(x["type"] in ("reply", "error") and x["data"].get("id") == command["id"]
                                       for x in m), 15)
    return next(x for x in got if x["type"] in ("reply", "error") and x["data"].get("id") == command["id"])


def test_the_app_is_installable_manifest_and_icons_served_without_a_token(start_device, room_with_dog: Path) -> None:
    import cv2
    import numpy as np

    device = start_device({"DOGMON_SOURCE": str(room_with_dog), "DOGMON_WS_TOKEN": "tok-0123456789abcdef"})
    with urllib.request.urlopen(device.http_url + "/") as r:
        html = r.read().decode()
    assert '<link rel="manifest" href="/static/manifest.webmanifest">' in html
    with urllib.request.urlopen(device.http_url + "/static/manifest.webmanifest") as r:
        assert r.headers["Content-Type"].startswith("application/manifest+json")
        manifest = orjson.loads(r.read())
    assert manifest["display"] == "standalone" and manifest["start_url"].startswith("/")
    for icon in manifest["icons"]:
        with urllib.request.urlopen(device.http_url + icon["src"]) as r:
            body = r.read()
            assert r.headers["Content-Type"] == icon["type"]
        if icon["type"] == "image/png":
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
            assert f"{image.shape[1]}x{image.shape[0]}" == icon["sizes"]
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    assert any(i["purpose"] == "maskable" for i in manifest["icons"])


ZONE_POINTS_JS = """(name) => {
  const svg = document.getElementById('zone-svg');
  const [, , w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
  const outline = [...svg.querySelectorAll('[data-name]')].find((n) => n.dataset.name === name);
  return outline.getAttribute('points').trim().split(/\\s+/)
    .map((xy) => xy.split(',').map(Number)).map(([x, y]) => [x / w, y / h]);
}"""


def zone_points(page, name: str) -> list[list[float]]:
    """The corners of the zone's outline as drawn, normalised like the device's."""
    return page.evaluate(ZONE_POINTS_JS, name)


def tap(page, box: dict, x: float, y: float) -> None:
    page.touchscreen.tap(box["x"] + x * box["width"], box["y"] + y * box["height"])


def test_a_zone_drawn_by_touch_is_stored_entered_and_an_invalid_one_shows_the_device_message(
        start_device, room_with_dog: Path) -> None:
    device = start_device({"DOGMON_SOURCE": str(room_with_dog), "DOGMON_CLIP_EVENTS": "",
                           "DOGMON_SNAPSHOT_EVENTS": "zone_enter"})
    with open_app(device.http_url, has_touch=True, hash_="zones") as page:
        wait_online(page)   # no token configured: no sign-in dialog
        assert not page.is_visible("#login")
        wait_frames(page, 3)
        stage = page.locator("#zone-svg").bounding_box()

        # the dog's ground point (bottom middle of its box) is near (0.5, 0.93): a zone around it
        page.click("#zone-new")
        for x, y in ((0.3, 0.7), (0.7, 0.7), (0.7, 0.99), (0.32, 0.99)):
            tap(page, stage, x, y)
        page.click("#zone-new")   # "Finish zone"
        # drag the last corner with the mouse to (0.3, 0.99)
        page.mouse.move(stage["x"] + 0.32 * stage["width"], stage["y"] + 0.99 * stage["height"])
        page.mouse.down()
        page.mouse.move(stage["x"] + 0.31 * stage["width"], stage["y"] + 0.99 * stage["height"], steps=3)
        page.mouse.move(stage["x"] + 0.30 * stage["width"], stage["y"] + 0.99 * stage["height"], steps=3)
        page.mouse.up()
        page.fill("#zf-name", "Dog bed")
        page.check("#zf-return")
        page.click("#zone-save")
        page.wait_for_function("() => document.getElementById('zone-toast').textContent.includes('Saved 1 zone')",
                               timeout=15_000)

        with ws_connect(device.ws_url) as ws:
            stored = reply(ws, {"type": "get_zones", "id": "z"})["data"]["zones"]
        assert [z["name"] for z in stored] == ["Dog bed"] and stored[0]["roles"] == ["return"]
        expected = ((0.3, 0.7), (0.7, 0.7), (0.7, 0.99), (0.3, 0.99))
        assert len(stored[0]["points"]) == 4
        for (x, y), (ex, ey) in zip(stored[0]["points"], expected, strict=True):
            assert abs(x - ex) < 0.015 and abs(y - ey) < 0.015, stored[0]["points"]

        # keyboard: select the zone, Shift+arrows move it whole; dragging its inside moves it too; undo restores
        page.click("#zone-list li[data-zone='Dog bed'] button")
        page.focus("#zone-svg")
        for _ in range(3):
            page.keyboard.press("Shift+ArrowUp")
        local = zone_points(page, "Dog bed")
        assert local[0][1] == pytest.approx(0.67, abs=0.002), local
        page.mouse.move(stage["x"] + 0.5 * stage["width"], stage["y"] + 0.8 * stage["height"])
        page.mouse.down()
        page.mouse.move(stage["x"] + 0.4 * stage["width"], stage["y"] + 0.8 * stage["height"], steps=4)
        page.mouse.up()
        local = zone_points(page, "Dog bed")
        assert local[0][0] == pytest.approx(0.2, abs=0.01), local
        # add a corner with an edge's middle handle, select it and delete it with the button
        page.click("#zone-revert")
        page.click("#zone-list li[data-zone='Dog bed'] button")
        mid_handle = page.locator("#zone-svg circle[data-role=mid][data-index='0']")
        mid_handle.wait_for(state="visible", timeout=5_000)  # drawn on the next frame after the selection
        mid = mid_handle.bounding_box()
        assert mid is not None, "the edge's middle handle is not on screen"
        page.mouse.click(mid["x"] + mid["width"] / 2, mid["y"] + mid["height"] / 2)
        assert len(zone_points(page, "Dog bed")) == 5
        page.click("#zf-delpoint")
        assert len(zone_points(page, "Dog bed")) == 4
        page.click("#zone-revert")
        local = zone_points(page, "Dog bed")
        assert [v for p in local for v in p] == pytest.approx([v for p in stored[0]["points"] for v in p], abs=1e-6)

        # the dog is in it: occupancy on the zone list, zone_enter in the timeline
        page.wait_for_selector("#zone-list li[data-zone='Dog bed']:has-text('dog inside')", timeout=20_000)
        goto(page, "timeline")
        page.wait_for_selector("li[data-type=zone_enter]:has-text('Entered Dog bed')", timeout=20_000)
        # filter by type, then another day
        page.select_option("#tl-filter", "zone")
        page.wait_for_selector("li[data-type=zone_enter]", timeout=10_000)
        assert set(page.eval_on_selector_all("#tl-list li", "els => els.map(e => e.dataset.type)")) <= {
            "zone_enter", "zone_exit", "zone_dwell"}
        page.fill("#tl-day", "2020-01-01")
        page.wait_for_function("() => document.getElementById('tl-status').textContent.includes('events on this day')",
                               timeout=10_000)
        assert page.locator("#tl-list li").count() == 0
        page.click("#tl-today")
        page.wait_for_selector("li[data-type=zone_enter]", timeout=10_000)

        # a self-crossing outline: the device refuses it and says why, on that zone
        goto(page, "zones")
        page.click("#zone-new")
        for x, y in ((0.1, 0.1), (0.4, 0.4), (0.4, 0.1), (0.1, 0.4)):
            tap(page, stage, x, y)
        page.click("#zone-new")
        page.click("#zone-save")
        page.wait_for_selector("#zone-list .zerr", timeout=15_000)
        refused = [m["data"] for m in page.ui_messages if m["type"] == "error"]   # what the device answered
        with ws_connect(device.ws_url) as ws:
            still = reply(ws, {"type": "get_zones", "id": "z2"})["data"]["zones"]
        assert len(refused) == 1 and refused[0]["code"] == "invalid_zones", refused
        assert refused[0]["zone"] == {"index": 1, "field": "points"}
        message = refused[0]["message"]
        assert "Zone 2" in message and "crosses itself" in message
        shown = page.text_content("#zone-list li[data-zone='Zone 2'] .zerr")
        assert shown == message
        assert message in page.text_content("#zone-error")
        assert "⚠ Zone 2" in page.text_content("#zone-svg")
        assert page.get_attribute("#zf-name", "aria-invalid") == "false"   # the outline is at fault, not the name
        assert [z["name"] for z in still] == ["Dog bed"]  # nothing changed on the device

        # a name used twice (any case): the second zone's name field is marked, the first zone is not
        page.click("#zone-revert")
        page.click("#zone-new")
        for x, y in ((0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.3)):
            tap(page, stage, x, y)
        page.click("#zone-new")
        page.fill("#zf-name", "dog BED")
        page.click("#zone-save")
        page.wait_for_selector("#zone-list li[data-zone='dog BED'] .zerr", timeout=15_000)
        assert "used twice" in page.text_content("#zone-list li[data-zone='dog BED'] .zerr")
        assert page.locator("#zone-list li[data-zone='Dog bed'] .zerr").count() == 0
        assert page.get_attribute("#zf-name", "aria-invalid") == "true"
        assert page.input_value("#zf-name") == "dog BED"   # the form shows the zone at fault
        screenshots(page, "zones", screens=("zones",))
