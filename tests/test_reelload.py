"""``python -m edge.tools.bench --while-reel`` with tiny settings: the real device on the demo clip, measured
plain and while the real reel maker builds a small generated day on the device's nice-10 media-daily thread."""

from __future__ import annotations

import re

import pytest

from edge.tools.bench import main

pytestmark = pytest.mark.e2e


def test_while_reel_prints_both_ratios_and_builds_the_reel_during_the_measurement(tool_env, capsys) -> None:
    assert main(["--while-reel", "--frames", "15", "--rounds", "1", "--clips", "2", "--clip-seconds", "2",
                 "--hours", "0.05", "--interval", "30"]) == 0
    out = capsys.readouterr().out
    rounds = re.findall(r"round 1: plain (\d\.\d+) .* while reel (\d\.\d+) .* difference ([+-]\d\.\d+)", out)
    assert len(rounds) == 1, out
    plain, loaded, diff = (float(x) for x in rounds[0])
    assert plain > 0 and loaded > 0 and abs(loaded - plain - diff) < 0.002
    assert re.search(r"ratio plain +: +\d\.\d+", out) and re.search(r"ratio while reel +: +\d\.\d+", out)
    builds = re.search(r"reel builds +: (\d+) completed while the pipeline was measured, (\d+) alone before, "
                       r"on the media-daily thread \(nice (\d+)\)", out)
    assert builds is not None, out
    assert int(builds[1]) >= 1 and int(builds[2]) >= 1
    assert builds[3] == "10"  # the device's builder priority, read back from the kernel on the building thread
    cpu = re.search(r"CPU-seconds per day +: reel (\d+\.\d+) \+ time-lapse (\d+\.\d+)", out)
    assert cpu is not None and float(cpu[2]) > 0
    assert re.search(r"process RSS peak +: \d+\.\d MiB .* while the reel was built", out)
