"""Unusual for her: the day's figures against the same weekday's usual range (pure logic, scripted days)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from edge.behaviour.diary import figures_until
from edge.behaviour.unusual import judge, learning_days_left
from edge.transports.mqtt import ha

pytestmark = pytest.mark.unit

TUESDAY = dt.date(2026, 12, 1)   # a Tuesday


def start_of(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def barking_day(day: dt.date, episodes: int) -> list[dict[str, Any]]:
    """The dog in view 08:00-18:00, barking ``episodes`` times (each half an hour apart, 5 barks each)."""
    t0 = start_of(day)
    out = [{"seq": 1, "type": "dog_detected", "ts": t0 + 8 * 3600, "data": {}}]
    for i in range(episodes):
        ts = t0 + 9 * 3600 + i * 1800
        out.append({"seq": 2 + i, "type": "bark", "ts": ts, "data": {"start": ts - 20, "barks": 5, "duration_s": 20}})
    out.append({"seq": 99, "type": "dog_left", "ts": t0 + 18 * 3600 + 10, "data": {"absent_seconds": 10}})
    return out


def hourly(day: dt.date, events: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    t0 = start_of(day)
    return {str(h): figures_until(events, t0, t0 + (h + 1) * 3600) for h in range(24)}


def history_of(days: list[dt.date], episodes: int = 2) -> dict[str, dict[str, dict[str, float]]]:
    return {d.isoformat(): hourly(d, barking_day(d, episodes)) for d in days}


PAST = [TUESDAY - dt.timedelta(weeks=w) for w in (4, 3, 2, 1)]


def test_ten_barking_episodes_on_a_tuesday_that_usually_has_two_is_unusual() -> None:
    history = history_of(PAST)
    today = hourly(TUESDAY, barking_day(TUESDAY, 10))
    found = judge(TUESDAY.isoformat(), 23, today["23"], history)
    assert [(f.metric, f.direction) for f in found] == [("bark_episodes", "more")]
    data = found[0].data()
    assert data["value"] == 10 and data["usual_min"] == 2 and data["usual_max"] == 2
    assert data["weekday"] == "Tuesday" and data["compared_days"] == [d.isoformat() for d in PAST]
    assert data["text"] == "more barking episodes than usual: 10 by 00:00, a usual Tuesday has 2"
    # by the afternoon it is already clear (cumulative figures, same hour on the usual days) …
    assert [f.metric for f in judge(TUESDAY.isoformat(), 13, today["13"], history)] == ["bark_episodes"]
    # … and once raised it is not raised again that day
    assert judge(TUESDAY.isoformat(), 23, today["23"], history, raised=[("bark_episodes", "more")]) == []


def test_a_normal_day_raises_nothing() -> None:
    history = history_of(PAST)
    today = hourly(TUESDAY, barking_day(TUESDAY, 2))
    assert all(judge(TUESDAY.isoformat(), h, today[str(h)], history) == [] for h in range(24))
    # three episodes instead of two is within the minimum difference: not worth an alert
    assert judge(TUESDAY.isoformat(), 23, hourly(TUESDAY, barking_day(TUESDAY, 3))["23"], history) == []


def test_less_than_usual_is_unusual_too() -> None:
    history = history_of(PAST)
    quiet = hourly(TUESDAY, [])   # not seen at all
    found = judge(TUESDAY.isoformat(), 23, quiet["23"], history)
    assert ("seen_minutes", "less") in [(f.metric, f.direction) for f in found]


def test_the_first_week_is_silent() -> None:
    last_week = TUESDAY - dt.timedelta(weeks=1)
    history = history_of([last_week + dt.timedelta(days=1)])   # history only six days old
    today = hourly(TUESDAY, barking_day(TUESDAY, 10))
    assert judge(TUESDAY.isoformat(), 23, today["23"], history) == []
    assert learning_days_left(TUESDAY.isoformat(), (last_week + dt.timedelta(days=1)).isoformat()) == 1
    assert learning_days_left(TUESDAY.isoformat(), None) == 7
    # a week of history with last Tuesday in it: it speaks
    assert judge(TUESDAY.isoformat(), 23, today["23"], history_of([last_week]))


def test_home_assistant_offers_unusual_activity_where_the_diary_runs() -> None:
    info = ha.DeviceInfo(device_id="d", mqtt_prefix="dogmonitor", ha_prefix="homeassistant", sw_version="1",
                         configuration_url=None, telemetry_interval=10)
    def types(commands: set[str]) -> list[str]:
        configs = ha.discovery(info, commands=commands)
        return next(c for t, c in configs.items() if "/event/" in t)["event_types"]
    assert "unusual_activity" in types({"get_diary"})
    assert "unusual_activity" not in types(set())
