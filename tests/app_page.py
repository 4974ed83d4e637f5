"""The tablet app in real headless Chromium (Debian's, through Playwright) against a real device process.

:func:`open_app` launches Chromium on the device's own ``/`` and checks every WebSocket message the
page receives against the published protocol (``/ws/ui`` messages and ``/ws/video`` LiveFrames), keeping
the ``/ws/ui`` ones in ``page.ui_messages``; uncaught page errors fail the test. Everything else reads
the page as a person would: visible text, element attributes and pixels. :func:`drawn_dog_box` reads
the dog box the page really drew, from the pixels of its overlay canvas. Screenshots go to
``$DOGMON_APP_SHOTS`` (default ``/tmp/app-shots``), never into the repository.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.protocol_check import check_live, check_ws

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("DOGMON_APP_SHOTS", "/tmp/app-shots"))
SIZES = ((1280, 800), (800, 1280), (390, 844))
SCREENS = ("live", "timeline", "zones", "analytics", "device")


def _check_frame(url: str, payload: str | bytes, page: Any) -> None:
    """Counts what the page received (``jpeg`` and ``live_meta`` on /ws/video, ``ui`` on /ws/ui) and
    keeps the /ws/ui messages."""
    seen = page.ws_seen
    if not isinstance(payload, str):
        seen["jpeg"] = seen.get("jpeg", 0) + 1
        return
    kind = "live_meta" if "/ws/video" in url else "ui"
    with contextlib.suppress(AssertionError):  # recorded for the autouse fixture, which fails the test
        (check_live if kind == "live_meta" else check_ws)(payload)
    seen[kind] = seen.get(kind, 0) + 1
    if kind == "ui":
        page.ui_messages.append(orjson.loads(payload))


@contextlib.contextmanager
def open_app(base_url: str, viewport: tuple[int, int] = (1280, 800), has_touch: bool = False,
             hash_: str = "live", before: Callable[[Any], None] | None = None,
             args: Sequence[str] = (), profile: Path | None = None,
             env: dict[str, str] | None = None) -> Iterator[Any]:
    """``before(page)`` runs before the page loads (e.g. to route its WebSockets); ``args`` are more Chromium
    flags; with a ``profile`` folder Chromium runs on that profile, not incognito (installing needs one);
    ``env`` is Chromium's environment (e.g. a ``HOME`` whose NSS store trusts a device's CA)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} missing: scripts/test installs Debian's chromium package", pytrace=False)
    with sync_playwright() as pw:
        size = {"viewport": {"width": viewport[0], "height": viewport[1]}, "has_touch": has_touch}
        if profile is None:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args], env=env)
            context = browser.new_context(**size)
        else:
            context = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                            args=[*CHROMIUM_ARGS, *args], env=env, **size)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.ws_seen = {}
            page.ui_messages = []
            page.on("websocket", lambda ws: ws.on(
                "framereceived", lambda payload: _check_frame(ws.url, payload, page)))
            if before is not None:
                before(page)
            page.goto(f"{base_url}/#{hash_}")
            yield page
            assert not errors, f"the page threw: {errors[:3]}"
        finally:
            context.close()
            if profile is None:
                browser.close()


def sign_in(page: Any, token: str) -> None:
    """The token dialog appears once; signing in sets the session cookie and the page connects."""
    page.wait_for_selector("#login[open]", timeout=15_000)
    page.fill("#login-token", "wrong")
    page.press("#login-token", "Enter")
    page.wait_for_function("() => document.getElementById('login-error').textContent.length > 0", timeout=10_000)
    page.fill("#login-token", token)
    page.press("#login-token", "Enter")
    page.wait_for_selector("#login:not([open])", state="attached", timeout=10_000)
    wait_online(page)


def wait_online(page: Any, timeout: float = 30) -> None:
    """The header says "online"."""
    page.wait_for_selector("#conn.online", timeout=timeout * 1000)


def goto(page: Any, screen: str) -> None:
    page.click(f"#tab-{screen}")
    page.wait_for_function(f"() => document.getElementById('screen-{screen}').classList.contains('active')")


def wait_frames(page: Any, count: int = 5, timeout: float = 30) -> None:
    """The picture on the shown screen has changed to ``count`` different frames (its data-frame-ts)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} pictures in {timeout} s"
        ts = page.get_attribute(".screen.active canvas[data-frame-ts]", "data-frame-ts", timeout=timeout * 1000)
        if ts:
            seen.add(ts)
        time.sleep(0.05)


def number(text: str | None) -> float | None:
    return float(text) if text else None


DRAWN_BOX_JS = """() => {
  const c = document.getElementById('live-ovl');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const i = (y * c.width + x) * 4;
    if (d[i] === 255 && d[i + 1] === 212 && d[i + 2] === 0 && d[i + 3] === 255) {
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
  }
  const sync = document.getElementById('sync');
  return {frame_ts: c.dataset.frameTs, overlay_ts: c.dataset.detectionTs, mismatch_ms: sync.dataset.mismatchMs,
          readout: sync.textContent, canvas: [c.width, c.height], box: x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1]};
}"""


def drawn_dog_box(page: Any, frame: dict[str, int]) -> dict[str, Any]:
    """The dog box as drawn (DOG_COLOUR pixels on the overlay canvas), in pixels of the source ``frame``
    ({"w", "h"}), with the capture time of the picture on screen and of the overlay drawn over it
    (the canvas's data-frame-ts and data-detection-ts)."""
    got = page.evaluate(DRAWN_BOX_JS)
    got["frame_ts"], got["overlay_ts"] = number(got["frame_ts"]), number(got["overlay_ts"])
    got["mismatch_ms"] = None if got["mismatch_ms"] in ("", None) else int(got["mismatch_ms"])
    got["frame"] = frame
    if got["box"] is not None:
        sx, sy = frame["w"] / got["canvas"][0], frame["h"] / got["canvas"][1]
        x0, y0, x1, y1 = got["box"]
        got["frame_box"] = [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
    return got


SMALL_TARGETS_JS = """() => {
  const out = [];
  for (const n of document.querySelectorAll('button, a[href], select, input, [tabindex]')) {
    const target = n.type === 'checkbox' ? n.closest('label') || n : n;
    const r = target.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || n.closest('[hidden], dialog:not([open])')) continue;  // not on screen
    if (r.height < 44 || r.width < 44)
      out.push(`${n.tagName.toLowerCase()}#${n.id} ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  return out;
}"""


PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
TABLET_AND_PHONE = ((1280, 800), (390, 844))


def fitting_shots(page: Any, folder: str, stem: str, overflow_js: str = PAGE_OVERFLOW) -> list[Path]:
    """The screen as it stands at a tablet's and a phone's size, saved as ``SHOTS/folder/stem-WxH.png`` (look at
    them); fails when ``overflow_js`` says something is wider than the screen. Back at the tablet's size after."""
    out = SHOTS / folder
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for width, height in TABLET_AND_PHONE:
        page.set_viewport_size({"width": width, "height": height})
        time.sleep(1)
        path = out / f"{stem}-{width}x{height}.png"
        page.screenshot(path=str(path), full_page=True)
        files.append(path)
        assert page.evaluate(overflow_js) <= 0, f"{stem} is wider than the screen at {width}x{height}"
    page.set_viewport_size({"width": TABLET_AND_PHONE[0][0], "height": TABLET_AND_PHONE[0][1]})
    return files


def screenshots(page: Any, name: str, screens: tuple[str, ...] = SCREENS, settle: float = 1.5) -> list[Path]:
    """Every screen at every size; returns the files (look at them). Fails when a control on screen is a
    smaller touch target than 44×44 px."""
    folder = SHOTS / name
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for screen in screens:
            goto(page, screen)
            time.sleep(settle)
            path = folder / f"{screen}-{width}x{height}.png"
            page.screenshot(path=str(path), full_page=True)
            files.append(path)
            small = page.evaluate(SMALL_TARGETS_JS)
            assert not small, f"{screen} at {width}x{height}: touch targets under 44 px: {small}"
    page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
    return files
