"""Log once per spell (edge.util.spell): what is reported, what is counted, when a spell ends."""

from __future__ import annotations

import logging

import pytest

from edge.util.spell import Occurrence, Spell, Spells
from edge.web.server import RepeatFilter, SpellLog

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_spell_reports_its_first_and_counts_the_rest_until_quiet_time_passes() -> None:
    clock = Clock()
    spell = Spell(quiet=60.0, clock=clock)
    assert not spell.active
    assert spell.occur() == Occurrence(first=True, suppressed=0)
    for _ in range(4):
        clock.now += 59.0  # each within the quiet time of the one before: the spell goes on
        assert spell.occur() == Occurrence(first=False, suppressed=0)
    assert spell.active and spell.suppressed == 4
    clock.now += 60.5
    assert not spell.active
    assert spell.occur() == Occurrence(first=True, suppressed=4)  # a new spell, and the old one's count
    assert spell.suppressed == 0


def test_a_spell_without_quiet_time_lasts_until_it_is_ended() -> None:
    clock = Clock()
    spell = Spell(clock=clock)
    assert spell.occur().first
    clock.now += 1e6
    assert not spell.occur().first and spell.active
    assert spell.end() == 1
    assert not spell.active and spell.end() == 0
    assert spell.occur() == Occurrence(first=True, suppressed=0)


def test_spells_are_kept_per_key_and_bounded() -> None:
    clock = Clock()
    spells = Spells(quiet=10.0, clock=clock, max_keys=2)
    assert spells.occur("a").first and spells.occur("b").first
    assert not spells.occur("a").first
    assert spells.occur("c").first  # "a" is forgotten to make room
    assert spells.occur("a").first


def test_refusal_log_says_the_first_then_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = SpellLog(quiet=60.0, clock=clock)
    with caplog.at_level("INFO", logger="edge.web.server"):
        for _ in range(3):
            refusals.refused(401, "no token", "10.0.0.2", "/api/state")
        clock.now += 61.0
        refusals.refused(403, "origin", "10.0.0.3", "/ws/ui")
        refusals.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "/api/state" in lines[0] and "401" in lines[0]
    assert "2 more" in lines[1]
    assert "/ws/ui" in lines[2] and "403" in lines[2]


def test_uvicorn_warning_passes_once_per_spell_and_errors_always() -> None:
    clock = Clock()
    repeat = RepeatFilter(quiet=60.0, clock=clock)

    def record(level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, None, None)

    assert repeat.filter(record(logging.WARNING, "Invalid HTTP request received."))
    assert not repeat.filter(record(logging.WARNING, "Invalid HTTP request received."))
    assert repeat.filter(record(logging.WARNING, "Unsupported upgrade request."))
    assert repeat.filter(record(logging.ERROR, "Exception in ASGI application"))
    assert repeat.filter(record(logging.ERROR, "Exception in ASGI application"))
    clock.now += 61.0
    assert repeat.filter(record(logging.WARNING, "Invalid HTTP request received."))
