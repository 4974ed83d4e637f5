"""The rule that keeps zone entries from flooding the disk with snapshots: once per zone per interval."""

from __future__ import annotations

import pytest

from edge.media.throttle import PerKeyInterval

pytestmark = pytest.mark.unit


def test_a_dog_pacing_a_zone_edge_every_3_s_for_10_minutes_gets_a_handful_of_snapshots() -> None:
    rule = PerKeyInterval(300.0)
    allowed = [t for t in range(0, 600, 3) if rule.allow("sofa", float(t))]
    assert allowed == [0, 300]


def test_each_zone_has_its_own_interval_and_zero_allows_every_entry() -> None:
    rule = PerKeyInterval(60.0)
    assert rule.allow("sofa", 0.0) and rule.allow("bed", 1.0)
    assert not rule.allow("sofa", 59.9) and not rule.allow("bed", 60.9)
    assert rule.allow("sofa", 60.0) and rule.allow("bed", 61.0)
    every = PerKeyInterval(0.0)
    assert all(every.allow("sofa", t / 10) for t in range(20))


def test_many_zones_stay_bounded_in_memory() -> None:
    rule = PerKeyInterval(300.0, max_keys=4)
    for n in range(10):
        assert rule.allow(f"zone{n}", 0.0)
    assert len(rule.last) == 4
    assert not rule.allow("zone9", 1.0)  # the newest are the ones remembered
