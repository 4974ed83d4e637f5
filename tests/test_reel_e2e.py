"""The day's highlight reel and time-lapse on a real device process: a dog arrives, the owner bookmarks three
moments, ``make_highlights`` makes both on demand; the reel is an H.264 MP4 of at most 60 s that PyAV decodes,
copied from the clips without re-encoding, in which the device's own detector finds the dog in most sampled
frames; the time-lapse decodes and spans the run; both are listed and served like clips (and the reel plays
in Debian's Chromium).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import Msg, events, ws_collect, ws_connect
from tests.test_clips_e2e import clip_of, play_in_chromium, reply
from tests.test_media_e2e import LABRADOR, http_get

TOKEN = "reel-t0ken-reel-t0ken"


@pytest.fixture
def dog_stays(media: Path, tmp_path: Path) -> Path:
    from tests.media import compose_video

    return compose_video(tmp_path / "stay.mp4", [(None, 1.0), (media / LABRADOR, 12.0)])


def a_short_day(start_device: Any, video: Path, data_dir: Path) -> tuple[Any, dict[str, Any], list[Msg], float]:
    """Run a device: an arrival, three bookmarks (each with its clip), then make_highlights; the reply, what
    was received, and when the run began (wall time)."""
    device = start_device({
        "DOGMON_SOURCE": str(video), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_WS_TOKEN": TOKEN,
        "DOGMON_TIMELAPSE_SECONDS": "1", "DOGMON_HIGHLIGHTS_AT": "off", "DOGMON_CLIP_PRE_SECONDS": "1",
        "DOGMON_CLIP_POST_SECONDS": "2", "DOGMON_CLIP_MAX_SECONDS": "4", "DOGMON_CLIP_EVENTS": "dog_detected",
        "DOGMON_SNAPSHOT_EVENTS": ""})
    began = time.time()
    with ws_connect(device.ws_url + "?since=0", token=TOKEN) as ws:
        got = ws_collect(ws, lambda m: bool(events(m, "dog_detected")), 40)
        arrival = events(got, "dog_detected")[0]
        got = ws_collect(ws, lambda m: clip_of(m, arrival["seq"]) is not None, 30, into=got)
        for n in range(3):
            mark = reply(ws, {"type": "bookmark", "id": f"b{n}", "label": f"moment {n}"})
            got.append({"type": "reply", "data": mark})
            got = ws_collect(ws, lambda m, seq=mark["seq"]: clip_of(m, seq) is not None, 30, into=got)
        ws.send(orjson.dumps({"type": "make_highlights", "id": "h"}))
        got = ws_collect(ws, lambda m: any(x["type"] == "reply" and x["data"].get("id") == "h" for x in m), 120,
                         into=got)
    made = next(x for x in got if x["type"] == "reply" and x["data"].get("id") == "h")["data"]
    return device, {k: v for k, v in made.items() if k not in ("id", "type")}, got, began


@pytest.mark.e2e
def test_make_highlights_makes_a_reel_that_shows_the_dog_and_a_time_lapse_of_the_run(
        start_device, dog_stays: Path, model_dir: Path, tmp_path: Path) -> None:
    import av
    import cv2

    from edge.core.models import MANIFEST_DIR
    from edge.vision.detector import Detector
    from edge.vision.runtime import create_session

    data_dir = tmp_path / "data"
    device, made, got, began = a_short_day(start_device, dog_stays, data_dir)
    asked = time.time()
    today = dt.date.today().isoformat()
    reel = events(got, "highlights_saved")[0]["data"]
    lapse = events(got, "timelapse_saved")[0]["data"]
    assert made == {"day": today, "highlights": {"media_id": reel["media_id"], "url": reel["url"]},
                    "timelapse": {"media_id": lapse["media_id"], "url": lapse["url"]}}

    # the reel: the arrival and the three bookmarks, copied from the clips (all of one format) without re-encoding
    marks = [e["data"]["seq"] for e in got if e["type"] == "reply" and str(e["data"].get("id")).startswith("b")]
    shown = {m["seq"]: m for m in reel["moments"]}
    assert set(marks) <= set(shown) and events(got, "dog_detected")[0]["seq"] in shown
    assert [shown[s]["label"] for s in marks] == ["moment 0", "moment 1", "moment 2"]
    assert reel["copied"] >= 1 and reel["reencoded"] == 0 and reel["codec"] == "h264"
    assert 0 < reel["duration"] <= 60 and reel["cpu_seconds"] > 0

    status, body, headers = http_get(device.port, reel["url"], TOKEN)
    assert status == 200 and headers["content-type"] == "video/mp4" and len(body) == reel["bytes"]
    path = tmp_path / "reel.mp4"
    path.write_bytes(body)
    spec = json.loads((MANIFEST_DIR / "yolox_nano.json").read_text())
    detector = Detector(create_session(model_dir / "yolox_nano.onnx", threads=1), spec, ["dog"], 0.3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and container.format.name.startswith("mov")
        assert container.duration / 1e6 == pytest.approx(reel["duration"], abs=0.3)
        frames = [f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(stream)) if i % 5 == 0]
    with_dog = [any(d.label == "dog" for d in detector.detect(image)) for image in frames]
    assert len(frames) >= 4 and sum(with_dog) >= 0.7 * len(frames), with_dog

    # the time-lapse: one frame a second from the start of the run to make_highlights, stamped and decodable
    assert lapse["first"] <= began + 8 and asked - 3 <= lapse["last"] <= asked, (began, lapse, asked)
    assert lapse["frames"] >= 0.6 * (lapse["last"] - lapse["first"]) and lapse["interval"] == 1
    status, body, _ = http_get(device.port, lapse["url"], TOKEN)
    path = tmp_path / "lapse.mp4"
    path.write_bytes(body)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert stream.codec_context.name == "h264" and len(decoded) == lapse["frames"]
    assert decoded[0].shape[1] == 480 and cv2.absdiff(decoded[0], decoded[-1]).mean() > 1  # not one still frame
    assert lapse["heatmap"] is True  # the dog was seen: the day's heat map is blended in

    # listed like clips, by day, for the diary
    with ws_connect(device.ws_url, token=TOKEN) as ws:
        listed = reply(ws, {"type": "list_media", "id": "l", "kind": "highlights"})["media"]
    assert [(m["media_id"], m["label"]) for m in listed] == [(reel["media_id"], today)]


@pytest.mark.browser
def test_the_highlight_reel_plays_in_chromium(start_device, dog_stays: Path, tmp_path: Path) -> None:
    device, made, got, _ = a_short_day(start_device, dog_stays, tmp_path / "data")
    reel = events(got, "highlights_saved")[0]["data"]
    played = play_in_chromium(device.port, TOKEN, made["highlights"]["url"])
    assert played["error"] is None and played["currentTime"] > 0.5
    assert (played["width"], played["height"]) == (reel["width"], reel["height"])
    assert played["duration"] == pytest.approx(reel["duration"], abs=0.3)
