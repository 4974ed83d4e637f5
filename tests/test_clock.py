"""The device's clock (``edge.util.clock``) and ``DOGMON_TEST_CLOCK``: a test can start the dog's world at a
chosen moment and run it faster, and a bad value names the key and what it accepts."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from edge.config import ConfigError, load_config
from edge.util import clock

pytestmark = pytest.mark.unit


def test_the_clock_is_the_systems_until_a_test_clock_starts() -> None:
    clock.reset()
    assert abs(clock.now() - time.time()) < 0.05 and abs(clock.monotonic() - time.monotonic()) < 0.05
    assert clock.rate() == 1.0 and clock.real_seconds(3.0) == 3.0


def test_a_test_clock_starts_at_its_moment_and_runs_faster() -> None:
    start = dt.datetime(2026, 12, 1, 7, 0).timestamp()
    try:
        clock.start(start, 20.0)
        wall0, mono0, real0 = clock.now(), clock.monotonic(), time.monotonic()
        assert abs(wall0 - start) < 1.0
        time.sleep(0.1)
        real = time.monotonic() - real0
        assert clock.now() - wall0 == pytest.approx(20 * real, abs=0.2)
        assert clock.monotonic() - mono0 == pytest.approx(20 * real, abs=0.2)
        assert clock.real_seconds(60.0) == 3.0
    finally:
        clock.reset()
    assert abs(clock.now() - time.time()) < 0.05


def test_dogmon_test_clock_is_read_and_checked() -> None:
    config = load_config(environ={"DOGMON_TEST_CLOCK": "2026-12-01T07:00x10"})
    assert config.test_clock_start == (dt.datetime(2026, 12, 1, 7, 0).timestamp(), 10.0)
    assert load_config(environ={}).test_clock_start is None
    for bad in ("yesterday", "2026-12-01T07:00x0", "2026-12-01T07:00x500", "2026-13-01T07:00"):
        with pytest.raises(ConfigError) as caught:
            load_config(environ={"DOGMON_TEST_CLOCK": bad})
        assert "DOGMON_TEST_CLOCK" in str(caught.value) and "x<rate>" in str(caught.value)
