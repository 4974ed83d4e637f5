"""The tablet app's timeline across a device crash: real headless Chromium, a real device process
killed with SIGKILL and started again on the same port and data dir.

The page shows that it is offline, reconnects by itself (backoff) and resumes by seq: afterwards the
timeline holds every stored event of the range it shows, once each, newest first.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from pathlib import Path

import orjson
import pytest

from tests.app_page import SHOTS, open_app, wait_online
from tests.conftest import free_port
from tests.helpers import ws_collect, ws_connect
from tests.protocol_check import check_ws
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.browser


@pytest.fixture
def dog_comes_and_goes(media: Path, tmp_path: Path) -> Path:
    from tests.media import compose_video

    return compose_video(tmp_path / "visits.mp4", [(None, 2.0), (media / LABRADOR, 3.0)] * 4)


class UiLink:
    """The page's /ws/ui connections pass through the test (Playwright's WebSocket routing, to the real
    device), so the test can cut one like a network blip; every message the page gets is kept and
    checked against the published protocol."""

    def __init__(self, page) -> None:
        self.routes: list = []
        self.received: list[dict] = []
        page.route_web_socket(re.compile(r"/ws/ui"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: self._relay(ws, message))
        ws.on_message(server.send)
        self.routes.append((ws, server))

    def _relay(self, ws, message: str | bytes) -> None:
        with contextlib.suppress(AssertionError):  # recorded for the autouse fixture, which fails the test
            check_ws(message)
        self.received.append(orjson.loads(message))
        ws.send(message)

    def cut(self) -> None:
        ws, server = self.routes[-1]
        ws.close(code=1001, reason="network blip")
        server.close()


def replayed_after_last_connection(messages: list[dict]) -> int:
    """Events the page received on its newest connection that were stored before it connected (so came
    by resume): seq at or below that connection message's last_seq."""
    start = max(i for i, m in enumerate(messages) if m["type"] == "connection")
    stored_until = messages[start]["data"]["last_seq"]
    return sum(1 for m in messages[start:] if m["type"] == "event" and m["seq"] <= stored_until)


def shown_seqs(page) -> list[int]:
    return page.evaluate("() => [...document.querySelectorAll('#tl-list li')].map(li => Number(li.dataset.seq))")


def stored_seqs(url: str, since: int) -> list[int]:
    with ws_connect(url) as ws:
        ws.send(orjson.dumps({"type": "get_events", "id": "e", "since": since, "limit": 1000}))
        got = ws_collect(ws, lambda m: any(x["type"] == "reply" for x in m), 15)
    return [e["seq"] for e in next(x for x in got if x["type"] == "reply")["data"]["events"]]


def test_the_timeline_has_no_gap_and_no_double_after_the_device_is_killed_and_restarted(
        start_device, dog_comes_and_goes: Path, tmp_path: Path) -> None:
    env = {"DOGMON_SOURCE": str(dog_comes_and_goes), "DOGMON_WS_PORT": str(free_port()),
           "DOGMON_DATA_DIR": str(tmp_path / "data"), "DOGMON_ABSENCE_SECONDS": "1",
           "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""}
    device = start_device(env)
    links: list[UiLink] = []
    with open_app(device.http_url, hash_="timeline", before=lambda page: links.append(UiLink(page))) as page:
        link = links[0]
        wait_online(page)
        page.wait_for_function("() => document.querySelectorAll('#tl-list li[data-type=dog_left]').length >= 1",
                               timeout=40_000)
        before = shown_seqs(page)

        device.stop(signal.SIGKILL)
        page.wait_for_selector("#offline:not([hidden])", timeout=20_000)
        assert "offline" in page.text_content("#conn")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "offline-1280x800.png"))
        time.sleep(2)   # offline for a while: the page keeps retrying with backoff
        device = start_device(env)
        wait_online(page, timeout=40)
        assert page.is_hidden("#offline")
        # events of the new run (camera_online, the dog coming and going) arrive through the resume
        page.wait_for_function(f"() => Math.max(...[...document.querySelectorAll('#tl-list li')]"
                               f".map(li => Number(li.dataset.seq))) > {max(before)} + 2", timeout=40_000)
        time.sleep(1)
        after = shown_seqs(page)
        replayed = replayed_after_last_connection(link.received)
        # a second reconnect of the same page without a device restart changes nothing either: the tablet
        # loses its connection for a moment
        link.cut()
        page.wait_for_selector("#offline:not([hidden])", timeout=20_000)
        wait_online(page)
        time.sleep(1)
        again = shown_seqs(page)

    assert after == sorted(after, reverse=True), "timeline not newest first"
    assert len(after) == len(set(after)), f"doubled items: {after}"
    stored = stored_seqs(device.ws_url, min(after) - 1)
    assert sorted(after) == [s for s in stored if s <= max(after)], "timeline misses stored events"
    assert set(before) <= set(after)
    assert replayed >= 1, "no event came by resume: the restarted device's first events were not missed and replayed"
    assert again == sorted(set(again), reverse=True) and set(after) <= set(again)
    assert sorted(again) == [s for s in stored_seqs(device.ws_url, min(again) - 1) if s <= max(again)]


def test_scrolling_back_loads_every_earlier_event_once(start_device, dog_comes_and_goes: Path) -> None:
    device = start_device({"DOGMON_SOURCE": str(dog_comes_and_goes), "DOGMON_TEST_EVENTS": "1",
                           "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url) as ws:
        for i in range(75):
            ws.send(orjson.dumps({"type": "emit_test_event", "id": i, "data": {"n": i}}))
            if i % 15 == 14:  # stay under DOGMON_WS_RATE
                ws_collect(ws, lambda m, i=i: any(x["type"] == "reply" and x["data"]["id"] == i for x in m), 15)
                time.sleep(1)
    with open_app(device.http_url, hash_="timeline") as page:
        wait_online(page)
        page.wait_for_function("() => document.querySelectorAll('#tl-list li').length >= 30", timeout=20_000)
        first_page = len(shown_seqs(page))
        assert first_page < 75, "the first page should not hold the whole day"
        for _ in range(20):   # scroll to the foot: the next page loads by itself
            if "whole day" in page.text_content("#tl-status"):
                break
            page.locator("#tl-more").scroll_into_view_if_needed()
            time.sleep(0.5)
        assert "whole day" in page.text_content("#tl-status")
        # A live event after that is added on top, and the page still says it holds the whole day.
        shown = len(shown_seqs(page))
        with ws_connect(device.ws_url) as ws:
            ws.send(orjson.dumps({"type": "emit_test_event", "id": 99, "data": {"n": 99}}))
            ws_collect(ws, lambda m: any(x["type"] == "reply" and x["data"]["id"] == 99 for x in m), 15)
        page.wait_for_function(f"() => document.querySelectorAll('#tl-list li').length > {shown}", timeout=10_000)
        assert "whole day" in page.text_content("#tl-status"), page.text_content("#tl-status")
        seqs = shown_seqs(page)
    assert seqs == sorted(set(seqs), reverse=True)
    # every stored event up to the newest shown (the device's own events may be stored after the page was read)
    assert sorted(seqs) == [s for s in stored_seqs(device.ws_url, 0) if s <= max(seqs)]
    assert len(seqs) >= 75
