"""The tablet app's Live, Timeline player and Analytics screens in real headless Chromium against a real
device fed a video of a dog walking to and fro.

What a user would notice: the token is asked once and the picture appears; the yellow box the page
draws lies on the dog of the very picture on screen (compared, pixel for pixel from the overlay canvas,
with the device's detection box for that frame, which this test receives on its own /ws/ui connection),
with the frame/overlay mismatch in the debug readout; the snapshot and bookmark buttons work and the
bookmark's clip plays in the page's player; an analytics figure moves while the dog is in view.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pytest
from websockets.sync.client import connect

from edge import __version__
from tests.app_page import drawn_dog_box, goto, open_app, screenshots, sign_in, wait_frames
from tests.helpers import ws_connect
from tests.media import moving_dog_video
from tests.protocol_check import check_live
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.browser

TOKEN = "tablet-s3cret-0123"


class OverlayRecorder:
    """The test's own /ws/ui client: every detection overlay, by the capture time of its frame."""

    def __init__(self, url: str, token: str) -> None:
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(ws_connect(url, token=token))
        self.detections: dict[float, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                message = orjson.loads(self.ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            except Exception:
                return
            if message.get("overlay_type") == "detection":
                self.detections[message["data"]["frame_ts"]] = message["data"]

    def for_frame(self, frame_ts: float) -> dict[str, Any] | None:
        """The detection of that frame, or of the newest older frame (what the page should draw)."""
        older = [ts for ts in self.detections if ts <= frame_ts + 0.0005]
        return self.detections[max(older)] if older else None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.stack.close()


@pytest.fixture
def walking_dog(media: Path, tmp_path: Path) -> Path:
    return moving_dog_video(tmp_path / "walking.mp4", media / LABRADOR, seconds=60.0)


def dog_box(detection: dict[str, Any]) -> list[float] | None:
    dogs = [b for b in detection["boxes"] if b["label"] == "dog"]
    if not dogs:
        return None
    b = max(dogs, key=lambda b: b["w"] * b["h"])
    return [b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]]


def test_live_box_sits_on_the_walking_dog_and_a_bookmark_clip_plays(start_device, walking_dog: Path) -> None:
    device = start_device({
        "DOGMON_SOURCE": str(walking_dog), "DOGMON_WS_TOKEN": TOKEN, "DOGMON_LIVE_FPS": "10",
        "DOGMON_CLIP_PRE_SECONDS": "1", "DOGMON_CLIP_POST_SECONDS": "2", "DOGMON_CLIP_MAX_SECONDS": "4",
        "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_ANALYTICS_INTERVAL": "1"})
    recorder = OverlayRecorder(device.ws_url, TOKEN)
    try:
        with open_app(device.http_url) as page:
            sign_in(page, TOKEN)
            wait_frames(page, 10)
            page.click("#toggle-debug")
            page.wait_for_selector("#live-ovl:not([data-detection-ts=''])", state="attached", timeout=20_000)
            frame = next(iter(recorder.detections.values()))["frame"]   # the source's size, as the device says

            samples = []
            for _ in range(14):
                time.sleep(0.4)
                got = drawn_dog_box(page, frame)
                samples.append((got, recorder.for_frame(got["frame_ts"])))
            lefts, mismatches = [], []
            for got, truth in samples:
                assert truth is not None, f"the device sent no detection up to frame {got['frame_ts']}"
                expected = dog_box(truth)
                if expected is None:  # the detector missed the dog in this frame: nothing to draw either
                    continue
                assert got["box"] is not None, f"no dog box drawn over frame {got['frame_ts']}: {got}"
                for drawn_edge, true_edge, size in zip(got["frame_box"], expected, (frame["w"], frame["h"]) * 2,
                                                       strict=True):
                    assert abs(drawn_edge - true_edge) <= 0.05 * size, (
                        f"drawn box {got['frame_box']} is not on the dog {expected} of frame {got['frame_ts']}")
                assert got["overlay_ts"] <= got["frame_ts"] + 0.0005  # never an overlay from the future
                assert f"Δ {got['mismatch_ms']} ms" in got["readout"]
                lefts.append(expected[0])
                mismatches.append(got["mismatch_ms"])
            assert len(lefts) >= 8, f"the dog was found in only {len(lefts)} of {len(samples)} frames"
            assert max(lefts) - min(lefts) > 40, f"the dog did not move between samples: {lefts}"
            assert sum(m <= 100 for m in mismatches) >= len(mismatches) - 2, f"overlays older than frames: {mismatches}"

            # 127.0.0.1 is a secure context: the screen is kept awake while Live shows, and the page says so
            assert page.is_visible("#awake") and "kept on" in page.text_content("#awake")
            presence = page.text_content("[data-chip=presence]")
            assert presence.startswith("Dog here"), presence

            page.click("#btn-snapshot")
            page.wait_for_function("() => document.getElementById('live-toast').textContent.includes('Snapshot saved')",
                                   timeout=20_000)
            page.fill("#bookmark-label", "zoomies")
            page.click("#btn-bookmark")
            page.wait_for_function("() => document.getElementById('live-toast').textContent.includes('zoomies')",
                                   timeout=10_000)

            goto(page, "timeline")
            item = "li[data-type=bookmark_created]"
            page.wait_for_selector(f"{item}:has-text('zoomies')", timeout=15_000)
            page.wait_for_selector(f"{item} img.thumb", timeout=30_000)  # the clip's poster: the clip is saved
            page.click(f"{item} button")
            page.wait_for_function("() => { const v = document.getElementById('player');"
                                   " return v && (v.error !== null || (v.readyState >= 2 && v.currentTime > 0.5)); }",
                                   timeout=30_000)
            played = page.evaluate("() => { const v = document.getElementById('player'); return {error: v.error &&"
                                   " v.error.code, width: v.videoWidth, duration: v.duration, t: v.currentTime}; }")
            assert played["error"] is None and played["width"] == 640 and played["duration"] > 1, played
            page.click("#viewer-close")

            goto(page, "analytics")
            figure = "[data-figure=posture] text[data-value]"
            page.wait_for_selector(figure, timeout=15_000)
            first = page.text_content(figure)
            page.wait_for_function(f"(t) => document.querySelector('{figure}').textContent !== t", arg=first,
                                   timeout=20_000)
            assert page.text_content(figure) != first

            goto(page, "device")   # telemetry and /healthz as they arrive
            page.wait_for_selector("#dev-pipeline tr[data-stage=detect]", timeout=15_000)
            page.wait_for_selector("#dev-health [data-health=ok]", timeout=15_000)
            assert __version__ in page.text_content("#dev-about")

            files = screenshots(page, "live")
            assert all(f.stat().st_size > 5_000 for f in files)
            seen = page.ws_seen
            assert seen["jpeg"] > 20 and seen["ui"] > 20
            assert abs(seen["live_meta"] - seen["jpeg"]) <= 2, seen  # a LiveFrame before every JPEG
        # the same stream to any client: ?meta=1 gives a LiveFrame before each JPEG, on the overlays' clock;
        # without it, JPEGs only (existing clients are unchanged)
        with connect(device.ws_url.replace("/ws/ui", "/ws/video?meta=1"), open_timeout=10,
                     additional_headers={"Authorization": f"Bearer {TOKEN}"}) as video:
            pairs = []
            while len(pairs) < 5:
                meta = video.recv(timeout=10)
                assert isinstance(meta, str), "a JPEG came without its LiveFrame"
                check_live(meta)
                jpeg = video.recv(timeout=10)
                assert isinstance(jpeg, bytes) and jpeg.startswith(b"\xff\xd8")
                pairs.append((orjson.loads(meta), jpeg))
        for meta, jpeg in pairs:
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert (meta["width"], meta["height"]) == (image.shape[1], image.shape[0])
        time.sleep(0.5)
        assert any(meta["frame_ts"] in recorder.detections for meta, _ in pairs), "pictures and overlays: other clocks"
        with connect(device.ws_url.replace("/ws/ui", "/ws/video"), open_timeout=10,
                     additional_headers={"Authorization": f"Bearer {TOKEN}"}) as video:
            assert all(isinstance(video.recv(timeout=10), bytes) for _ in range(4))
    finally:
        recorder.close()


POSE_DRAWN_JS = """(p) => {
  const c = document.getElementById('live-ovl'), ctx = c.getContext('2d');
  const sx = c.width / p.frame.w, sy = c.height / p.frame.h;
  let shown = 0, hit = 0, cyan = 0;
  for (const [x, y, conf] of p.poses[0].keypoints) {
    if (conf < p.keypoint_threshold) continue;
    shown++;
    const d = ctx.getImageData(Math.round(x * sx), Math.round(y * sy), 1, 1).data;
    if (d[0] === 255 && d[1] === 124 && d[2] === 124) hit++;
  }
  const all = ctx.getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < all.length; i += 4)
    if (Math.abs(all[i] - 124) < 30 && Math.abs(all[i + 1] - 243) < 30 && all[i + 2] > 225 && all[i + 3] > 200) cyan++;
  return {shown, hit, cyan, model: p.model};
}"""


def test_live_draws_the_keypoints_and_skeleton_of_a_pose_model(start_device, media: Path, tmp_path: Path) -> None:
    from tests.media import compose_video
    from tests.pose_graphs import DOG_POSE_24, constant_outputs_model, write_manifest
    from tests.test_posture_e2e import standing_dog_in_input

    row = np.concatenate(([160, 160, 256, 207, 0.88], standing_dog_in_input().reshape(-1))).astype(np.float32)
    weights = constant_outputs_model(tmp_path / "dogpose_stub.onnx", [1, 3, 320, 320],
                                     {"output0": row.reshape(1, -1, 1)})
    manifest = write_manifest(tmp_path / "dogpose_stub.json", weights, {
        "name": "dogpose-stub", "family": "yolo_pose", "licence": "test graph",
        "input": {"width": 320, "height": 320, "mean": [0, 0, 0], "std": [255, 255, 255], "channels": "RGB"},
        "keypoints": DOG_POSE_24, "skeleton": [[22, 12], [12, 13], [22, 16]]})
    video = compose_video(tmp_path / "labrador.mp4", [(media / LABRADOR, 30.0)])
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_POSE_MODEL": str(manifest), "DOGMON_POSE_FPS": "4",
                           "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    with open_app(device.http_url) as page:
        wait_frames(page, 5)
        page.wait_for_selector("#live-ovl:not([data-pose-ts=''])", state="attached", timeout=30_000)
        pose_ts = float(page.get_attribute("#live-ovl", "data-pose-ts"))
        pose = next(m["data"] for m in page.ui_messages   # the pose overlay the page says it drew
                    if m.get("overlay_type") == "pose" and m["data"]["frame_ts"] == pose_ts)
        assert pose["poses"]
        drawn = page.evaluate(POSE_DRAWN_JS, pose)
        assert drawn["model"] == "dogpose-stub"
        assert drawn["shown"] >= 20 and drawn["hit"] >= 0.8 * drawn["shown"], drawn  # a dot on each keypoint
        assert drawn["cyan"] > 30, drawn                                             # and the skeleton's lines
        screenshots(page, "pose", screens=("live",))


def test_away_since_survives_the_state_poll_and_a_reload(start_device, media: Path, tmp_path: Path) -> None:
    from tests.media import compose_video

    video = compose_video(tmp_path / "visit.mp4", [(media / LABRADOR, 4.0), (None, 90.0)])
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_ABSENCE_SECONDS": "1",
                           "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    chip = "[data-chip=presence]"
    with open_app(device.http_url) as page:
        page.wait_for_selector(f"{chip}:has-text('Away since')", timeout=40_000)
        left = next(i for i, m in enumerate(page.ui_messages) if m.get("event_type") == "dog_left")
        away = page.text_content(chip)
        # the page asks get_state every 5 s: after a reply to that, the chip still says when the dog left
        deadline = time.monotonic() + 15
        while not any(m["type"] == "reply" and m["data"]["type"] == "get_state" for m in page.ui_messages[left:]):
            assert time.monotonic() < deadline, "no get_state poll after the dog left"
            page.wait_for_timeout(200)   # lets Playwright hand over the frames received meanwhile
        page.wait_for_timeout(500)
        assert page.text_content(chip).split(" (")[0] == away.split(" (")[0], page.text_content(chip)
        # a page opened now learns it from the device's state
        page.reload()
        page.wait_for_selector(f"{chip}:has-text('Away since')", timeout=15_000)
        assert page.text_content(chip).split(" (")[0] == away.split(" (")[0]
