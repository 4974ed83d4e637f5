"""Analytics: a scripted day with explicit timestamps must add up to the second, across midnight and a restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edge.behaviour.analytics import DailyAnalytics
from edge.core.store import EventStore

pytestmark = pytest.mark.unit

TZ = dt.timezone(dt.timedelta(hours=2))   # the device's local time in this scenario
T0 = dt.datetime(2026, 11, 26, 8, 0, 0, tzinfo=TZ).timestamp()
MIDNIGHT = dt.datetime(2026, 11, 27, 0, 0, 0, tzinfo=TZ).timestamp()


def morning(analytics: DailyAnalytics) -> None:
    script = [
        (0, "dog_detected", {}),
        (10, "stand", {}),
        (70, "zone_enter", {"zone": "sofa", "entered_at": T0 + 68}),   # noticed 2 s after the dog got there
        (77, "sit", {"since": T0 + 75}),                                # sat at 75, held for 2 s
        (200, "lie", {}),
        (500, "zone_exit", {"zone": "sofa", "entered_at": T0 + 68, "exited_at": T0 + 498, "seconds": 430}),
        (610, "dog_left", {"absent_seconds": 10.0}),                    # last seen at 600
    ]
    for offset, kind, data in script:
        analytics.on_event(kind, data, T0 + offset)
    for second in range(90):                     # 90 active seconds from 08:01:00
        analytics.add_active_second(T0 + 60 + second)


def test_scripted_day_adds_up_to_the_second() -> None:
    analytics = DailyAnalytics(tz=TZ)
    morning(analytics)
    report = analytics.report("2026-11-26", T0 + 700)
    assert report["posture_seconds"] == {"lie": 400, "sit": 125, "stand": 65}
    assert report["posture_minutes"] == {"lie": 6.67, "sit": 2.08, "stand": 1.08}
    assert report["zone_seconds"] == {"sofa": 430}
    assert report["zone_visits"] == {"sofa": 1}
    assert report["activity_seconds"] == 90 and report["activity_minutes"] == 1.5
    assert report["event_counts"] == {"dog_detected": 1, "dog_left": 1, "lie": 1, "sit": 1, "stand": 1,
                                      "zone_enter": 1, "zone_exit": 1}


def test_open_intervals_count_live_without_being_closed() -> None:
    analytics = DailyAnalytics(tz=TZ)
    analytics.on_event("sit", {}, T0)
    analytics.on_event("zone_enter", {"zone": "bed", "entered_at": T0 + 5}, T0 + 6)
    live = analytics.report("2026-11-26", T0 + 65)
    assert live["posture_seconds"] == {"sit": 65} and live["zone_seconds"] == {"bed": 60}
    analytics.on_event("stand", {}, T0 + 100)
    assert analytics.report("2026-11-26", T0 + 130)["posture_seconds"] == {"sit": 100, "stand": 30}


def test_an_exit_dated_before_the_last_checkpoint_takes_the_excess_back() -> None:
    analytics = DailyAnalytics(tz=TZ)
    analytics.on_event("zone_enter", {"zone": "rug", "entered_at": T0}, T0 + 0.3)
    analytics.on_event("stand", {}, T0)
    for second in (1, 2, 3, 4, 5, 6, 7, 8, 9):      # the device checkpoints every second
        analytics.checkpoint(T0 + second)
    # the dog was last seen at T0+7.2; the exit is known 3 s later and dated back to that sighting
    analytics.on_event("zone_exit", {"zone": "rug", "exited_at": T0 + 7.2}, T0 + 10.2)
    # it had lain down at T0+6.5; the lie event fired after the posture held for 2 s
    analytics.on_event("lie", {"since": T0 + 6.5}, T0 + 8.5)
    analytics.on_event("dog_left", {"absent_seconds": 10}, T0 + 17.2)
    report = analytics.report("2026-11-26", T0 + 20)
    assert report["zone_seconds"] == {"rug": 7.2}
    assert report["posture_seconds"] == {"lie": 0.7, "stand": 6.5}


def test_a_stay_across_midnight_counts_on_both_days() -> None:
    analytics = DailyAnalytics(tz=TZ)
    analytics.on_event("zone_enter", {"zone": "door", "entered_at": MIDNIGHT - 30}, MIDNIGHT - 29)
    analytics.on_event("zone_exit", {"zone": "door", "exited_at": MIDNIGHT + 45}, MIDNIGHT + 46)
    day1, day2 = analytics.report("2026-11-26"), analytics.report("2026-11-27")
    assert day1["zone_seconds"] == {"door": 30} and day1["zone_visits"] == {"door": 1}
    assert day2["zone_seconds"] == {"door": 45} and day2["zone_visits"] == {}
    assert day1["event_counts"] == {"zone_enter": 1} and day2["event_counts"] == {"zone_exit": 1}


def test_totals_survive_a_restart_through_the_event_store(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    first = DailyAnalytics(tz=TZ, load=lambda day: store.get_meta(f"analytics:{day}"))
    first.on_event("stand", {}, T0)
    first.on_event("zone_enter", {"zone": "sofa", "entered_at": T0}, T0)
    first.checkpoint(T0 + 40)                         # the device persists at each checkpoint …
    for day, totals in first.take_dirty().items():
        store.set_meta(f"analytics:{day}", totals)
    store.close()                                     # … and then the process dies (open intervals are lost)

    store = EventStore(tmp_path)
    second = DailyAnalytics(tz=TZ, load=lambda day: store.get_meta(f"analytics:{day}"))
    second.on_event("lie", {}, T0 + 100)
    second.on_event("dog_left", {}, T0 + 130)
    report = second.report("2026-11-26", T0 + 200)
    assert report["posture_seconds"] == {"lie": 30, "stand": 40}
    assert report["zone_seconds"] == {"sofa": 40} and report["zone_visits"] == {"sofa": 1}
    assert report["event_counts"] == {"dog_left": 1, "lie": 1, "stand": 1, "zone_enter": 1}
    store.close()


def test_local_day_follows_the_device_time_zone() -> None:
    analytics = DailyAnalytics(tz=TZ)
    late = dt.datetime(2026, 11, 26, 23, 30, tzinfo=TZ).timestamp()   # 21:30 UTC
    assert analytics.day_of(late) == "2026-11-26"
    assert analytics.day_of(MIDNIGHT) == "2026-11-27"
    assert analytics.next_midnight(late) == pytest.approx(MIDNIGHT)
