"""The Diary screen in real Chromium against a real device playing a clip: the day's episodes appear as
text with their snapshots, today's diary grows as events arrive, and the page says unusual-activity
alerts are silent in the first week. Screenshots at tablet and phone sizes go to $DOGMON_APP_SHOTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_page import fitting_shots, goto, open_app, wait_online
from tests.media import compose_video
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.browser

DEVICE_DAY = "2026-12-01"   # not the day the test runs on


def test_the_diary_screen_shows_today_with_snapshots_and_updates_live(start_device, media: Path,
                                                                     tmp_path: Path) -> None:
    clip = compose_video(tmp_path / "day.mp4", [(None, 2.0), (media / LABRADOR, 5.0), (None, 4.0)])
    # the device's clock is not the tablet's (a test clock on another day, at real speed): "today" is the device's
    device = start_device({"DOGMON_SOURCE": str(clip), "DOGMON_SOURCE_LOOP": "0", "DOGMON_ABSENCE_SECONDS": "1",
                           "DOGMON_CLIP_EVENTS": "", "DOGMON_TEST_CLOCK": f"{DEVICE_DAY}T07:00"})
    with open_app(device.http_url, hash_="diary") as page:
        wait_online(page)
        goto(page, "diary")
        # the dog arrives and leaves while the screen is open: the episode appears without a reload
        page.wait_for_selector("#di-list li[data-kind=seen] img.thumb", timeout=40_000)
        assert page.input_value("#di-day") == DEVICE_DAY
        text = page.text_content("#di-list li[data-kind=seen]")
        assert "in view" in text and "07:0" in text, text
        page.wait_for_function("() => document.getElementById('di-list').textContent.includes('–')", timeout=20_000)
        assert page.evaluate("() => document.querySelector('#di-list img.thumb').naturalWidth") > 0
        assert "first week" in page.text_content("#di-unusual")
        assert "Seen" in page.text_content("#di-totals")
        assert "updating live" in page.text_content("#di-status")
        # an earlier day from the picker: the device says nothing happened
        page.fill("#di-day", "2020-01-01")
        page.dispatch_event("#di-day", "change")
        page.wait_for_function("() => document.getElementById('di-list').textContent.includes('Nothing happened')",
                               timeout=10_000)
        page.click("#di-today")
        page.wait_for_selector("#di-list li[data-kind=seen]", timeout=10_000)
        fitting_shots(page, "diary", "diary")
