"""A scripted day through a real device under a test clock (``DOGMON_TEST_CLOCK``, 6× real time).

The video (25 fps, played in real time, so each real second is six seconds of the dog's day): an empty room,
the dog arrives and stands on the left, walks right onto the bed (a zone), lies down there for 11 minutes,
leaves for 2.5 minutes (it barks meanwhile: a real bark recording in the audio), comes back (the owner
bookmarks) and goes out again. The device runs with its default rules (out of view ≥ 60 s, a zone stay
≥ 60 s, resting ≥ 10 min; clips for arrivals, zone entries and bookmarks; a time-lapse frame every 30 s), so
this is the day a household would get: each diary episode's times are checked against the script (±2 s of
the day, i.e. ±0.33 s of the test's real time), and the evening's reel and time-lapse are made from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import orjson
import pytest

from edge.core.models import MANIFEST_DIR
from edge.vision.detector import Detector
from edge.vision.runtime import create_session
from tests.app_page import fitting_shots, goto, open_app, wait_online
from tests.helpers import events, ws_collect, ws_connect
from tests.test_bark_e2e import BARK_CLIP
from tests.test_diary_e2e import near, reply
from tests.test_media_e2e import http_get
from tests.test_posture_e2e import LABRADOR, LYING, crop_around

RATE = 6.0                     # seconds of the day per real second (at 10× a busy machine's lag of
                               # 0.3-0.5 s real was 3-5 s of the day: beyond the ±2 s checked)
FPS = 25.0                     # frames per real second: about 4 frames per second of the day
SIZE = (640, 480)
FLOOR_Y = 450                  # where the dog's feet are
BED = {"name": "bed", "points": [[0.55, 0.0], [1.0, 0.0], [1.0, 1.0], [0.55, 1.0]]}
DAY = "2026-12-01"             # a Tuesday
CLOCK = f"{DAY}T07:00x{RATE:g}"
# the script, in seconds of the day from the first frame
ARRIVE, WALK, LIE_DOWN, LEAVE, RETURN, GONE, END = 30.0, 120.0, 150.0, 810.0, 960.0, 1040.0, 1100.0
STAND_X, BED_X = 40, 400       # the standing dog's left edge before and after the walk
BARK_AT = 880.0 / RATE         # real seconds into the audio: 880 s of the day, while the dog is away


def paste(frame: np.ndarray, image: np.ndarray, x: int, width: int) -> tuple[float, float]:
    """``image`` scaled to ``width`` with its bottom on the floor at ``x``; returns (scale, top)."""
    scale = width / image.shape[1]
    small = cv2.resize(image, (width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    top = FLOOR_Y - small.shape[0]
    frame[top:FLOOR_Y, x:x + width] = small
    return scale, top


def day_frames(media: Path) -> Iterator[np.ndarray]:
    standing = crop_around(media, *LABRADOR, 0.6)
    lying = crop_around(media, *LYING, 0.6)
    room = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    for i in range(round(END / RATE * FPS)):
        t = i / FPS * RATE
        frame = room.copy()
        if ARRIVE <= t < WALK:
            paste(frame, standing, STAND_X, 220)
        elif WALK <= t < LIE_DOWN:
            paste(frame, standing, round(STAND_X + (BED_X - STAND_X) * (t - WALK) / (LIE_DOWN - WALK)), 220)
        elif LIE_DOWN <= t < LEAVE:
            paste(frame, lying, 360, 260)
        elif RETURN <= t < GONE:
            paste(frame, standing, STAND_X, 220)
        yield frame


def write_video(path: Path, frames: Iterator[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def bark_audio(path: Path, bark: Path, at: float, total: float) -> Path:
    """Silence with one real bark recording starting ``at`` seconds in."""
    with wave.open(str(bark), "rb") as source:
        params, samples = source.getparams(), source.readframes(source.getnframes())
    width = params.sampwidth * params.nchannels
    before = b"\0" * (round(at * params.framerate) * width)
    after = b"\0" * (max(0, round((total - at) * params.framerate) * width - len(samples)))
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(before + samples + after)
    return path


def bed_entry(media: Path) -> float:
    """When the walking dog's box bottom centre crosses onto the bed (seconds of the day)."""
    standing = crop_around(media, *LABRADOR, 0.6)
    scale = 220 / standing.shape[1]
    # the Labrador's box in the crop: the crop starts at (x1 - 0.6 w) clipped at 0, as crop_around cuts it
    x1, _, x2, _ = LABRADOR[1]
    left = max(0, int(x1 - 0.6 * (x2 - x1)))
    centre_in_crop = ((x1 + x2) / 2 - left) * scale
    x_needed = BED["points"][0][0] * SIZE[0] - centre_in_crop
    return WALK + (x_needed - STAND_X) / (BED_X - STAND_X) * (LIE_DOWN - WALK)


@dataclasses.dataclass
class Day:
    device: Any
    diary: dict
    made: dict          # make_highlights' reply and the *_saved events' data by event type
    stored: list[dict]
    mark: dict          # the bookmark's reply
    workdir: Path


@pytest.fixture(scope="module")
def scripted_day(start_module_device, media: Path, tmp_path_factory: pytest.TempPathFactory) -> Day:
    """The day played once through one device; the tests below read it (the device stays up for the page)."""
    workdir = tmp_path_factory.mktemp("scripted-day")
    video = write_video(workdir / "day.mp4", day_frames(media))
    audio = bark_audio(workdir / "day.wav", media / BARK_CLIP, BARK_AT, END / RATE + 5)
    data = workdir / "data"
    data.mkdir()
    (data / "zones.json").write_bytes(orjson.dumps({"version": 1, "zones": [BED]}))
    device = start_module_device({"DOGMON_SOURCE": str(video), "DOGMON_SOURCE_LOOP": "0",
                                  "DOGMON_DATA_DIR": str(data), "DOGMON_TEST_CLOCK": CLOCK,
                                  "DOGMON_AUDIO_SOURCE": str(audio), "DOGMON_AUDIO_LOOP": "0"})
    with ws_connect(device.ws_url) as ws:
        got: list[dict] = []
        ws_collect(ws, lambda m: len(events(m, "dog_detected")) >= 2, END / RATE + 60, into=got)
        mark = reply(ws, {"type": "bookmark", "id": "b", "label": "back from the garden"})
        ws_collect(ws, lambda m: len(events(m, "dog_left")) >= 2, 60, into=got)
        stored = reply(ws, {"type": "get_events", "id": "e", "limit": 500,
                            "event_types": ["camera_online", "bark", "bookmark_created", "lie"]})["events"]
        diary = reply(ws, {"type": "get_diary", "id": "d", "day": DAY})["diary"]
        made = reply(ws, {"type": "make_highlights", "id": "h", "day": DAY}, timeout=120, got=got)
        made |= {f"{e['event_type']}": e["data"] for e in events(got) if e["event_type"].endswith("_saved")}
    return Day(device, diary, made, stored, mark, workdir)


@pytest.mark.e2e
def test_a_scripted_day_under_a_test_clock_gives_the_diary_reel_and_time_lapse_of_that_day(
        scripted_day: Day, media: Path, model_dir: Path) -> None:
    device, diary, made, stored, mark = (scripted_day.device, scripted_day.diary, scripted_day.made,
                                         scripted_day.stored, scripted_day.mark)
    tmp_path = scripted_day.workdir
    with urllib.request.urlopen(f"{device.http_url}/api/diary?day={DAY}", timeout=15) as response:
        assert json.loads(response.read())["diary"]["episodes"] == diary["episodes"]

    online = next(e["ts"] for e in stored if e["event_type"] == "camera_online")
    # the test clock: the day is the scripted one, starting at 07:00 (the device started a few seconds before)
    assert dt.datetime.fromtimestamp(online).date().isoformat() == DAY
    assert dt.datetime.fromtimestamp(online).hour == 7

    def at(offset: float) -> float:
        return online + offset

    kinds: dict[str, list[dict]] = {}
    for episode in diary["episodes"]:
        kinds.setdefault(episode["kind"], []).append(episode)
    summary = [(e["kind"], round(e["start"] - online, 1), round(e["end"] - online, 1), e["text"])
               for e in diary["episodes"]]

    seen = kinds["seen"]
    assert len(seen) == 2, summary
    assert near(seen[0]["start"], at(ARRIVE)) and near(seen[0]["end"], at(LEAVE)), summary
    assert near(seen[1]["start"], at(RETURN)) and near(seen[1]["end"], at(GONE)), summary
    assert f"07:00–07:13 in view ({int((seen[0]['end'] - seen[0]['start']) // 60)} min)" in seen[0]["text"]

    away = kinds["away"]
    assert len(away) == 1 and near(away[0]["start"], at(LEAVE)) and near(away[0]["end"], at(RETURN)), summary
    assert "out of view" in away[0]["text"]

    resting = kinds["resting"]
    assert len(resting) == 1, summary
    assert near(resting[0]["start"], at(LIE_DOWN)) and near(resting[0]["end"], at(LEAVE)), summary
    minutes = int((resting[0]["end"] - resting[0]["start"]) // 60)    # 10 or 11: whole minutes of about 660 s
    assert resting[0]["figures"]["zone"] == "bed" and f"lying down in bed ({minutes} min)" in resting[0]["text"]

    zone = kinds["zone"]
    assert len(zone) == 1 and zone[0]["figures"]["zone"] == "bed", summary
    assert near(zone[0]["start"], at(bed_entry(media))) and near(zone[0]["end"], at(LEAVE)), summary

    barks = [e for e in stored if e["event_type"] == "bark"]
    barking = kinds["barking"]
    assert len(barking) == 1 and barks, summary
    assert near(barking[0]["start"], barks[0]["data"]["start"]), summary
    assert away[0]["start"] < barking[0]["start"] < away[0]["end"], summary   # she barked while out of view
    assert barking[0]["figures"]["barks"] == sum(e["data"]["barks"] for e in barks)

    marked = next(e for e in stored if e["event_type"] == "bookmark_created")
    bookmark = kinds["bookmark"]
    assert len(bookmark) == 1 and near(bookmark[0]["start"], marked["ts"]) and mark["label"] in bookmark[0]["text"]
    assert seen[1]["start"] <= bookmark[0]["start"] <= seen[1]["end"]

    totals = diary["totals"]
    assert totals["zone_seconds"]["bed"] == pytest.approx(LEAVE - bed_entry(media), abs=4)
    assert totals["posture_seconds"]["lie"] == pytest.approx(LEAVE - LIE_DOWN, abs=4)
    assert totals["bookmarks"] == [mark["label"]]

    # the evening: the reel of the day's moments shows the dog; the time-lapse spans the day
    reel, lapse = the_reel_and_time_lapse(device, made, model_dir, tmp_path)
    assert 0 < reel["duration"] <= 60 and reel["codec"] == "h264" and len(reel["moments"]) >= 3
    assert lapse["first"] <= at(ARRIVE) and lapse["last"] >= at(GONE), (lapse, online)
    assert lapse["frames"] >= 0.8 * (lapse["last"] - lapse["first"]) / 30


def the_reel_and_time_lapse(device, made: dict, model_dir: Path, tmp_path: Path) -> tuple[dict, dict]:
    """Both files as served: H.264 that PyAV decodes; in the reel the device's own detector finds the dog in
    most sampled frames; the time-lapse is not one still picture."""
    spec = json.loads((MANIFEST_DIR / "yolox_nano.json").read_text())
    detector = Detector(create_session(model_dir / "yolox_nano.onnx", threads=1), spec, ["dog"], 0.3)
    decoded: dict[str, list[np.ndarray]] = {}
    for kind in ("highlights", "timelapse"):
        status, body, headers = http_get(device.port, made[kind]["url"])
        assert status == 200 and headers["content-type"] == "video/mp4", (kind, status)
        (tmp_path / f"{kind}.mp4").write_bytes(body)
        with av.open(str(tmp_path / f"{kind}.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            decoded[kind] = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    sampled = decoded["highlights"][::3]
    with_dog = [any(d.label == "dog" for d in detector.detect(image)) for image in sampled]
    # most, not all: a cut's pre-roll shows the room before she arrives, and the barking moment an empty room
    assert len(sampled) >= 4 and sum(with_dog) > 0.5 * len(sampled), with_dog
    lapse = decoded["timelapse"]
    assert cv2.absdiff(lapse[0], lapse[len(lapse) // 2]).mean() > 1
    return made["highlights_saved"], made["timelapse_saved"]


@pytest.mark.browser
def test_the_diary_screen_tells_the_scripted_day_with_its_snapshots(scripted_day: Day) -> None:
    """The Diary screen of that day on a tablet and a phone: the episodes in order with their pictures, the
    day's figures, and the reel and time-lapse to watch (screenshots in DOGMON_APP_SHOTS/diary-day)."""
    with open_app(scripted_day.device.http_url, hash_="diary") as page:
        wait_online(page)
        goto(page, "diary")
        page.wait_for_selector("#di-list li[data-kind=resting]", timeout=20_000)
        assert page.input_value("#di-day") == DAY   # the device's day, not the tablet's
        kinds = page.eval_on_selector_all("#di-list li", "items => items.map((li) => li.dataset.kind)")
        assert [k for k in kinds if k in ("seen", "resting", "away", "barking", "bookmark")] == [
            "seen", "resting", "away", "barking", "seen", "bookmark"], kinds
        assert "lying down in bed" in page.text_content("#di-list li[data-kind=resting]")
        assert "barked" in page.text_content("#di-list li[data-kind=barking]")
        assert "back from the garden" in page.text_content("#di-list li[data-kind=bookmark]")
        pictures = page.eval_on_selector_all("#di-list img.thumb", "imgs => imgs.map((i) => i.naturalWidth)")
        assert len(pictures) >= 3 and all(w > 0 for w in pictures), pictures
        for kind in ("highlights", "timelapse"):
            assert page.is_visible(f"#di-media [data-media={kind}]"), kind
        totals = page.text_content("#di-totals")
        assert "Seen" in totals and "In bed" in totals and "Time lying" in totals, totals
        fitting_shots(page, "diary-day", "diary")
