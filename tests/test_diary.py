"""The diary tells a scripted day the way a person would read it (pure logic, fixed clock)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from edge.behaviour.diary import build_diary, duration_text

pytestmark = pytest.mark.unit

DAY = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
START = DAY.timestamp()
END = START + 86400


def at(hh: int, mm: int, ss: int = 0) -> float:
    return START + hh * 3600 + mm * 60 + ss


def hhmm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M")


def ev(seq: int, kind: str, ts: float, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "type": kind, "ts": ts, "data": data}


def scripted_day() -> list[dict[str, Any]]:
    return [
        ev(1, "dog_detected", at(7, 12), track_id=1),
        ev(2, "snapshot_saved", at(7, 12, 1), media_id="snap-1", url="/media/snap-1", thumb_url="/media/t1",
           captured=at(7, 12, 1), event_type="dog_detected"),
        ev(3, "zone_enter", at(7, 13), zone="Bed", entered_at=at(7, 13)),
        ev(4, "lie", at(7, 15), since=at(7, 14)),
        ev(5, "stand", at(9, 40, 5), since=at(9, 40)),
        ev(6, "zone_exit", at(9, 41), zone="Bed", exited_at=at(9, 41), entered_at=at(7, 13)),
        ev(7, "bark", at(10, 6), start=at(10, 5), duration_s=40.0, barks=7),
        ev(8, "bark", at(10, 8), start=at(10, 7, 30), duration_s=30.0, barks=5),
        ev(9, "dog_left", at(12, 0, 10), present_seconds=17000, absent_seconds=10),
        ev(10, "dog_detected", at(13, 30), track_id=2),
        ev(11, "fetch_return", at(14, 0)), ev(12, "fetch_return", at(14, 2)), ev(13, "fetch_return", at(14, 4)),
        ev(14, "bookmark_created", at(14, 5), label="good girl"),
    ]


def test_a_scripted_day_reads_as_episodes_with_their_times_and_figures() -> None:
    diary = build_diary(scripted_day(), "2026-12-01", START, END, clock=hhmm)
    texts = [e["text"] for e in diary["episodes"]]
    assert "07:14–09:40 lying down in Bed (2 h 26 min)" in texts
    assert "10:05 barked 12 times in 3 min" in texts
    assert "12:00–13:30 out of view" in texts
    assert "14:00 3 fetch returns" in texts
    assert "14:05 bookmark: good girl" in texts
    assert texts == sorted(texts, key=lambda t: t[:5])  # in the order of the day
    seen = next(e for e in diary["episodes"] if e["kind"] == "seen")
    assert seen["snapshot"]["media_id"] == "snap-1"
    totals = diary["totals"]
    assert totals["barks"] == 12 and totals["fetch_returns"] == 3 and totals["bookmarks"] == ["good girl"]
    assert totals["zone_seconds"]["Bed"] == pytest.approx(at(9, 41) - at(7, 13))
    assert totals["posture_seconds"]["lie"] == pytest.approx(at(9, 40) - at(7, 14))
    assert totals["barking_minutes"] == pytest.approx(70 / 60, abs=0.05)
    # seen 07:12 -> 12:00 and 13:30 -> end of day
    assert totals["seen_seconds"] == pytest.approx((at(12, 0) - at(7, 12)) + (END - at(13, 30)))


def test_short_naps_and_short_absences_are_not_episodes() -> None:
    events = [ev(1, "dog_detected", at(8, 0)), ev(2, "lie", at(8, 1), since=at(8, 1)),
              ev(3, "stand", at(8, 5), since=at(8, 5)),
              ev(4, "dog_left", at(8, 10, 10), absent_seconds=10, present_seconds=600),
              ev(5, "dog_detected", at(8, 10, 40))]
    kinds = [e["kind"] for e in build_diary(events, "2026-12-01", START, END, clock=hhmm)["episodes"]]
    assert "resting" not in kinds and "away" not in kinds


def test_an_empty_day_has_no_episodes_and_zero_totals() -> None:
    diary = build_diary([], "2026-12-01", START, END)
    assert diary["episodes"] == [] and diary["totals"]["seen_seconds"] == 0


@pytest.mark.parametrize(("seconds", "text"), [(40, "40 s"), (720, "12 min"), (8400, "2 h 20 min"), (7200, "2 h")])
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_zone_stays_are_episodes_and_each_episode_gets_its_best_snapshot() -> None:
    events = scripted_day() + [
        ev(20, "snapshot_saved", at(7, 14, 30), media_id="snap-lie", event_type="lie", captured=at(7, 14, 30)),
        ev(21, "snapshot_saved", at(10, 6), media_id="snap-bark", event_type="bark", captured=at(10, 6)),
        ev(22, "highlights_saved", at(23, 0), media_id="reel-1", url="/media/reel-1"),
    ]
    diary = build_diary(events, "2026-12-01", START, END, clock=hhmm)
    by_kind = {e["kind"]: e for e in reversed(diary["episodes"])}   # the first of each kind
    assert by_kind["zone"]["text"] == "07:13–09:41 in Bed (2 h 28 min)"
    # the snapshot taken for the event that opened the episode, not merely the first one inside it
    assert by_kind["resting"]["snapshot"]["media_id"] == "snap-lie"
    assert by_kind["barking"]["snapshot"]["media_id"] == "snap-bark"
    assert by_kind["seen"]["snapshot"]["media_id"] == "snap-1"
    assert diary["media"] == {"highlights": {"media_id": "reel-1", "url": "/media/reel-1"}, "timelapse": None}


def test_barking_ends_when_it_stopped_and_out_of_view_shows_no_picture_of_the_return() -> None:
    """A bark event is sent once the quiet after it is sure (here 50 s later): the episode ends with the barking.
    The return's snapshot lies at the end of the out-of-view episode: it would show a dog that was not there."""
    events = [
        ev(1, "dog_detected", at(8, 0)),
        ev(2, "dog_left", at(8, 10, 10), absent_seconds=10),
        ev(3, "bark", at(8, 12, 0), start=at(8, 11, 0), duration_s=10.0, barks=4),
        ev(4, "dog_detected", at(8, 20)),
        ev(5, "snapshot_saved", at(8, 20, 1), media_id="snap-back", url="/media/snap-back", captured=at(8, 20),
           event_type="dog_detected"),
    ]
    episodes = {e["kind"]: e for e in build_diary(events, "2026-12-01", START, at(8, 30), clock=hhmm)["episodes"]}
    assert episodes["barking"]["end"] == at(8, 11, 10) and "barked 4 times in 10 s" in episodes["barking"]["text"]
    assert episodes["away"]["snapshot"] is None
    assert episodes["barking"]["snapshot"] is None
