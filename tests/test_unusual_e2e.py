""""Unusual for her" through a real device, day after day, under a test clock (``DOGMON_TEST_CLOCK``, 60×).

Six Tuesday mornings in one data folder, each a device run that crosses 08:00 (the hour whose figures are
judged) with a real bark recording played into its microphone input: four Tuesdays with 2 barking episodes,
a fifth with 2 (a normal day: nothing is raised) and a sixth with 10, which raises ``unusual_activity`` about
barking, compared with the last four Tuesdays. Episodes are separated by four real seconds of silence, four
minutes of the day (an episode ends after two quiet minutes). Each morning starts early enough that its last
episode ends well before 08:00 even on a slow start (the loud one: its last bark ends about 63 s after the
start, 07:48 of the day)."""

from __future__ import annotations

import datetime as dt
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import events, ws_collect, ws_connect
from tests.test_bark_e2e import BARK_CLIP
from tests.test_diary_e2e import reply

pytestmark = pytest.mark.e2e

RATE = 60.0
EXCERPT_SECONDS = 2.0   # the loudest two seconds of the recording: two minutes of barking in the day
SILENCE_SECONDS = 4.0
USUAL_DAYS = ("2026-11-03", "2026-11-10", "2026-11-17", "2026-11-24")   # Tuesdays
NORMAL_DAY, LOUD_DAY = "2026-12-01", "2026-12-08"


def loudest_excerpt(path: Path) -> tuple[wave._wave_params, bytes]:
    with wave.open(str(path), "rb") as source:
        params, raw = source.getparams(), source.readframes(source.getnframes())
    assert params.sampwidth == 2 and params.nchannels == 1, params
    samples = np.frombuffer(raw, np.int16).astype(np.float64)
    size = round(EXCERPT_SECONDS * params.framerate)
    energy = np.convolve(samples ** 2, np.ones(size), "valid")
    start = int(np.argmax(energy))
    return params, samples[start:start + size].astype(np.int16).tobytes()


def barking_audio(path: Path, bark: Path, episodes: int) -> Path:
    params, excerpt = loudest_excerpt(bark)
    silence = b"\0" * (round(SILENCE_SECONDS * params.framerate) * 2)
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(silence + (excerpt + silence) * episodes)
    return path


def empty_room(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (160, 120))
    for _ in range(10):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    return path


def tuesday(start_device, data: Path, video: Path, audio: Path, day: str, start: str) -> tuple[dict, list[dict]]:
    """One morning from ``start`` until just after 08:00 of ``day``: its diary then, and what it raised."""
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_SOURCE_LOOP": "1", "DOGMON_DATA_DIR": str(data),
                           "DOGMON_TEST_CLOCK": f"{day}T{start}x{RATE:g}", "DOGMON_AUDIO_SOURCE": str(audio),
                           "DOGMON_AUDIO_LOOP": "0", "DOGMON_CLIP_EVENTS": "", "DOGMON_TIMELAPSE_SECONDS": "0"})
    judged = dt.datetime.fromisoformat(f"{day}T08:01").timestamp()   # a minute of the day after 08:00
    with ws_connect(device.ws_url) as ws:
        got: list[dict] = []
        ws_collect(ws, lambda m: any(x.get("ts", 0) >= judged for x in m), 150, into=got)
        diary = reply(ws, {"type": "get_diary", "id": "d", "day": day})["diary"]
        stored = reply(ws, {"type": "get_events", "id": "u", "event_types": ["unusual_activity"]})["events"]
    device.stop()
    raised = [e for e in stored if dt.datetime.fromtimestamp(e["ts"]).date().isoformat() == day]
    assert [e["seq"] for e in events(got, "unusual_activity")] == [e["seq"] for e in raised]  # live = stored
    return diary, raised


def barking_episodes(diary: dict) -> int:
    return len([e for e in diary["episodes"] if e["kind"] == "barking"])


def test_ten_barking_episodes_on_a_tuesday_that_usually_has_two_is_unusual(start_device, media: Path,
                                                                          tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    video = empty_room(tmp_path / "room.mp4")
    two = barking_audio(tmp_path / "two.wav", media / BARK_CLIP, 2)
    ten = barking_audio(tmp_path / "ten.wav", media / BARK_CLIP, 10)

    for day in USUAL_DAYS:   # the first week is silent whatever happens; then the baseline grows
        diary, raised = tuesday(start_device, data, video, two, day, "07:35")
        assert barking_episodes(diary) == 2, diary["episodes"]
        assert raised == []

    diary, raised = tuesday(start_device, data, video, two, NORMAL_DAY, "07:35")
    assert diary["baseline"]["learning_days_left"] == 0           # four weeks of history: the rule speaks
    assert barking_episodes(diary) == 2 and raised == [], raised  # a normal Tuesday raises nothing

    diary, raised = tuesday(start_device, data, video, ten, LOUD_DAY, "06:45")
    assert barking_episodes(diary) == 10, diary["episodes"]
    assert len(raised) == 1, raised
    finding = raised[0]["data"]
    assert finding["metric"] == "bark_episodes" and finding["direction"] == "more"
    assert finding["value"] == 10 and finding["usual_min"] == finding["usual_max"] == 2
    assert finding["compared_days"] == [*USUAL_DAYS[1:], NORMAL_DAY] and finding["weekday"] == "Tuesday"
    assert finding["until_hour"] == 7 and "by 08:00, a usual Tuesday has 2" in finding["text"]
