"""Clips on a real device process: they play in headless Chromium, carry the bark's sound, have posters
and thumbnails that retention removes with them, and a clip being recorded at SIGTERM is saved.

Real parts: ``python -m edge run`` fed a composed video (and a shared bark WAV as its microphone),
Debian's Chromium driven by Playwright loading the clip from the device's own ``/media/<id>``,
PyAV decoding the sound.
"""

from __future__ import annotations

import http.server
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pytest

from tests.helpers import Msg, events, ws_collect, ws_connect
from tests.test_media_e2e import LABRADOR, http_get, media_file

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BARK = "audio/bark_esc50_4-191687-A-0.wav"


def reply(ws: Any, command: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    ws.send(orjson.dumps(command))
    got = ws_collect(ws, lambda m: any(x["type"] in ("reply", "error") and x["data"].get("id") == command["id"]
                                       for x in m), timeout)
    answer = next(x for x in got if x["type"] in ("reply", "error") and x["data"].get("id") == command["id"])
    assert answer["type"] == "reply", answer["data"]
    return answer["data"]


def clip_of(got: list[Msg], seq: int) -> dict[str, Any] | None:
    return next((e["data"] for e in events(got, "clip_saved") if seq in e["data"]["events"]), None)


@pytest.fixture
def room_with_dog(media: Path, tmp_path: Path) -> Path:
    from tests.media import compose_video

    return compose_video(tmp_path / "room.mp4", [(None, 2.0), (media / LABRADOR, 6.0)])


def play_in_chromium(device_port: int, token: str, clip_url: str) -> dict[str, Any]:
    """A tiny loopback page embeds the device's own /media/<id> URL (with the token) in a <video>."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} missing: scripts/test installs Debian's chromium package", pytrace=False)
    source = f"http://127.0.0.1:{device_port}{clip_url}?token={token}"
    page_html = (f'<!doctype html><video id="v" muted playsinline preload="auto" src="{source}"></video>').encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page_html)))
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                page.wait_for_function("() => { const v = document.getElementById('v');"
                                       " return v.readyState >= 2 || v.error !== null; }", timeout=20_000)
                first = page.evaluate("() => { const v = document.getElementById('v'); return {"
                                      "error: v.error && v.error.code, readyState: v.readyState,"
                                      "width: v.videoWidth, height: v.videoHeight, duration: v.duration}; }")
                assert first["error"] is None, f"Chromium cannot play the clip: MediaError {first['error']}"
                page.evaluate("() => document.getElementById('v').play()")
                page.wait_for_function("() => document.getElementById('v').currentTime > 0.5", timeout=20_000)
                first["currentTime"] = page.evaluate("() => document.getElementById('v').currentTime")
                return first
            finally:
                browser.close()
    finally:
        server.shutdown()


@pytest.mark.browser
def test_a_bookmark_clip_plays_in_chromium_with_poster_and_thumbnails_removed_by_retention(
        start_device, room_with_dog: Path, tmp_path: Path) -> None:
    token = "t0ken-t0ken-t0ken"
    data_dir = tmp_path / "data"
    device = start_device({
        "DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_WS_TOKEN": token,
        "DOGMON_CLIP_PRE_SECONDS": "1", "DOGMON_CLIP_POST_SECONDS": "2", "DOGMON_CLIP_MAX_SECONDS": "3",
        "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url, token=token) as ws:
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["ring"]["seconds"] >= 1
                                           for x in m), 20)
        telemetry = [x for x in got if x["type"] == "telemetry"][-1]["data"]["media"]
        assert telemetry["clip_codec"] == "h264" and telemetry["clip_encoder"] == "libx264"
        assert "h264_v4l2m2m" in telemetry["clip_encoders_refused"]  # probed with a test encode, not trusted
        snap = reply(ws, {"type": "snapshot", "id": "s"})
        mark = reply(ws, {"type": "bookmark", "id": "b", "label": "play me"})
        got = ws_collect(ws, lambda m: clip_of(m, mark["seq"]) is not None, 30)
        clip = clip_of(got, mark["seq"])
        assert clip is not None
        listing = reply(ws, {"type": "list_media", "id": "l"})["media"]

    assert clip["codec"] == "h264" and clip["encoder"] == "libx264" and clip["width"] == 640
    # Chromium plays it straight from the device: size and duration as announced
    played = play_in_chromium(device.port, token, clip["url"])
    assert played["readyState"] >= 2 and played["currentTime"] > 0.5
    assert played["width"] == clip["width"] and played["height"] == clip["height"]
    assert played["duration"] == pytest.approx(clip["duration"], abs=0.2)

    # thumbnails and posters: small JPEGs, announced and listed with their parents
    thumb_status, thumb, _ = http_get(device.port, snap["thumb_url"], token)
    poster_status, poster, _ = http_get(device.port, clip["poster_url"], token)
    for status, body in ((thumb_status, thumb), (poster_status, poster)):
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and len(body) <= 25_000 and image.shape[1] == 320, (status, len(body))
    assert snap["thumb_media_id"].startswith("snapt-") and clip["poster_media_id"].startswith("clipp-")
    by_id = {m["media_id"]: m for m in listing}
    assert by_id[snap["media_id"]]["thumb_media_id"] == snap["thumb_media_id"]
    assert by_id[clip["media_id"]]["poster_media_id"] == clip["poster_media_id"]
    device.stop()

    # retention: a tiny quota keeps only the newest group; the snapshot's thumbnail goes with it
    device = start_device({"DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data_dir),
                           "DOGMON_MEDIA_MAX_MB": "0.01", "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    # the web server answers /healthz before the features have started (transports first): retention runs as
    # the media feature starts, so the folder is read once that start is over (at most a few seconds)
    deadline = time.monotonic() + 15
    doomed = {snap["media_id"], snap["thumb_media_id"]}
    while doomed & (on_disk := {p.stem for p in (data_dir / "media").iterdir()}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert snap["media_id"] not in on_disk and snap["thumb_media_id"] not in on_disk
    assert clip["media_id"] in on_disk and clip["poster_media_id"] in on_disk  # newest group kept whole
    assert http_get(device.port, snap["thumb_url"])[0] == 404


@pytest.mark.e2e
def test_a_bark_clip_carries_the_bark_in_its_sound(start_device, room_with_dog: Path, media: Path,
                                                   tmp_path: Path) -> None:
    import av

    data_dir = tmp_path / "data"
    device = start_device({
        "DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_AUDIO_SOURCE": str(media / BARK),
        "DOGMON_AUDIO_LOOP": "0", "DOGMON_CLIP_PRE_SECONDS": "6", "DOGMON_CLIP_POST_SECONDS": "1",
        "DOGMON_CLIP_MAX_SECONDS": "2", "DOGMON_BARK_GAP_SECONDS": "1", "DOGMON_CLIP_EVENTS": "bark",
        "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url + "?since=0") as ws:
        got = ws_collect(ws, lambda m: bool(events(m, "bark")), 40)
        bark = events(got, "bark")[0]
        got = ws_collect(ws, lambda m: clip_of(m, bark["seq"]) is not None, 30, into=got)
    clip = clip_of(got, bark["seq"])
    assert clip is not None and clip["audio"] is True
    samples: list[np.ndarray] = []
    with av.open(str(media_file(data_dir, clip))) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        rate = container.streams.audio[0].codec_context.sample_rate
        for frame in container.decode(audio=0):
            samples.append(frame.to_ndarray().reshape(-1))
    sound = np.concatenate(samples)
    assert abs(len(sound) / rate - clip["duration"]) < 0.2
    # 100 ms levels: where the clip is loud is where the bark was (its episode start, on the clip's timeline)
    window = rate // 10
    level = np.array([np.abs(sound[i:i + window]).max() for i in range(0, len(sound) - window, window)])
    peak_at = clip["start"] + int(level.argmax()) / 10
    episode_start, episode_end = bark["data"]["start"], bark["data"]["start"] + bark["data"]["duration_s"]
    assert level.max() > 0.1 and np.median(level) < level.max() / 3, level.round(3)
    assert episode_start - 0.1 <= peak_at <= episode_end + 0.1, (peak_at, episode_start, episode_end)
    # In sync: find where the WAV sits in the clip's sound (cross-correlation) and compare with where it must
    # be. The file source's sample 0 was captured when audio_online was sent (its first 0.1 s chunk then ended).
    from edge.audio.source import load_audio_16k

    assert rate == 16000
    original = load_audio_16k(media / BARK)
    size = 1 << int(np.ceil(np.log2(len(sound) + len(original))))
    correlation = np.fft.irfft(np.fft.rfft(sound, size) * np.conj(np.fft.rfft(original, size)), size)
    lag = int(np.argmax(correlation))
    lag = lag - size if lag > size // 2 else lag
    online = next(e for e in events(got, "audio_online"))
    expected = (online["ts"] - 0.1) - clip["start"]
    assert abs(lag / rate - expected) < 0.1, f"sound is {lag / rate - expected:+.3f} s off the picture"


@pytest.mark.e2e
def test_sigterm_while_a_clip_records_finishes_and_saves_it(start_device, room_with_dog: Path,
                                                            tmp_path: Path) -> None:
    import av

    data_dir = tmp_path / "data"
    device = start_device({
        "DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_CLIP_PRE_SECONDS": "1",
        "DOGMON_CLIP_POST_SECONDS": "60", "DOGMON_CLIP_MAX_SECONDS": "60", "DOGMON_CLIP_EVENTS": "",
        "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url) as ws:
        ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["ring"]["seconds"] >= 1
                                     for x in m), 20)
        mark = reply(ws, {"type": "bookmark", "id": "b", "label": "cut short"})
        ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["recording"] for x in m), 10)
        time.sleep(2.0)  # let it record a couple of seconds of a 60 s clip
    assert device.stop(signal.SIGINT, timeout=20) == 0
    assert "finishing the clip being recorded" in device.logs()
    clips = sorted((data_dir / "media").glob("clip-*.mp4"))
    assert len(clips) == 1 and not list((data_dir / "media").glob(".*part*")), list((data_dir / "media").iterdir())
    with av.open(str(clips[0])) as container:
        assert container.duration / 1e6 > 2.0  # pre-roll plus what was recorded before the signal

    # its clip_saved was committed before exit: a restarted device replays it
    device = start_device({"DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data_dir),
                           "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url + "?since=0") as ws:
        got = ws_collect(ws, lambda m: clip_of(m, mark["seq"]) is not None, 15)
    clip = clip_of(got, mark["seq"])
    assert clip is not None and clip["media_id"] == clips[0].stem and clip["labels"] == ["cut short"]
    assert 2.0 < clip["duration"] < 20



@pytest.mark.e2e
def test_a_clip_whose_writes_fail_mid_clip_ends_with_an_error_and_the_next_clip_is_saved(
        start_device, room_with_dog: Path, tmp_path: Path) -> None:
    """A real failure inside PyAV's muxer: the device's data dir is a 16 MB tmpfs in its own mount namespace,
    and the test fills that disk while a clip records (through /proc/<pid>/root), then frees it."""
    import os
    import subprocess

    data = tmp_path / "small-disk"
    data.mkdir()
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to give the device a small private disk"
    mount_then_run = ["sh", "-c", f'mount -t tmpfs -o size=16m tmpfs "{data}" && exec "$0" "$@"']
    wrapper = [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--map-root-user", "--mount"]
    device = start_device({
        "DOGMON_SOURCE": str(room_with_dog), "DOGMON_DATA_DIR": str(data), "DOGMON_MEDIA_MIN_FREE_MB": "0",
        "DOGMON_CLIP_PRE_SECONDS": "1", "DOGMON_CLIP_POST_SECONDS": "30", "DOGMON_CLIP_MAX_SECONDS": "30",
        "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""}, wrapper=[*wrapper, *mount_then_run])
    private = Path(f"/proc/{device.proc.pid}/root") / data.relative_to("/")
    assert (private / "media").is_dir(), "the device's private disk is not visible through /proc/<pid>/root"
    filler = private / "filler"
    with ws_connect(device.ws_url) as ws:
        ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["ring"]["seconds"] >= 1
                                     for x in m), 20)
        first = reply(ws, {"type": "bookmark", "id": "b1", "label": "doomed"})
        ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["recording"] for x in m), 10)
        # fill the disk while the clip records
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
        got = ws_collect(ws, lambda m: any(e["data"].get("component") == "media" for e in events(m, "error")), 30)
        error = next(e for e in events(got, "error") if e["data"].get("component") == "media")["data"]
        assert error["disk_full"] is True and "No space" in error["detail"], error
        # the clip ended there: not recording any more, long before its 30 s, and nothing half-written is left
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" and not x["data"]["media"]["recording"]
                                           for x in m), 10, into=got)
        assert not events(got, "clip_saved")
        assert not [p.name for p in (private / "media").iterdir() if p.name.startswith("clip")]
        filler.unlink()
        second = reply(ws, {"type": "bookmark", "id": "b2", "label": "after"})
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["recording"]
                                           for x in m), 10, into=got)
        time.sleep(1.5)
        # the next clip records and is saved (here: finished by SIGTERM, its clip_saved still reaches us)
        device.proc.send_signal(signal.SIGTERM)
        got = ws_collect(ws, lambda m: clip_of(m, second["seq"]) is not None, 20, into=got)
    saved = clip_of(got, second["seq"])
    assert saved is not None and first["seq"] not in saved["events"] and saved["labels"] == ["after"]
    assert saved["bytes"] > 1000 and saved["duration"] > 1.0
    assert device.proc.wait(20) == 0
    assert "ended early" in device.logs()


@pytest.mark.e2e
def test_the_mp4v_fallback_says_so_in_codec_telemetry_and_log(start_device, room_with_dog: Path,
                                                              tmp_path: Path) -> None:
    device = start_device({"DOGMON_SOURCE": str(room_with_dog), "DOGMON_CLIP_ENCODER": "mp4v",
                           "DOGMON_CLIP_PRE_SECONDS": "1", "DOGMON_CLIP_POST_SECONDS": "1",
                           "DOGMON_CLIP_MAX_SECONDS": "1", "DOGMON_CLIP_EVENTS": "", "DOGMON_SNAPSHOT_EVENTS": ""})
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["ring"]["seconds"] >= 1
                                           for x in m), 20)
        assert [x for x in got if x["type"] == "telemetry"][-1]["data"]["media"]["clip_codec"] == "mp4v"
        mark = reply(ws, {"type": "bookmark", "id": "b"})
        got = ws_collect(ws, lambda m: clip_of(m, mark["seq"]) is not None, 20)
    clip = clip_of(got, mark["seq"])
    assert clip is not None and clip["codec"] == "mp4v" and clip["encoder"] == "mp4v" and clip["audio"] is False
    assert "clips are OpenCV mp4v, not H.264 (DOGMON_CLIP_ENCODER=mp4v)" in device.logs()
