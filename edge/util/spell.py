"""Log once per spell: the first of a run of like occurrences is reported, the rest are counted.

Pure logic on an injectable monotonic clock. A spell is a run of refusals, failures or one repeated warning.
It ends after ``quiet`` seconds without an occurrence (when a quiet time is given) or when :meth:`Spell.end`
says the thing works again; the next occurrence begins a new spell and is reported again. Used for refused
requests and uvicorn's repeated warnings (edge.web.server), the event log's and media's failure events
(edge.core.bus, edge.media.health) and MQTT commands over the rate limit (edge.transports.mqtt_commands).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True, slots=True)
class Occurrence:
    """What to do about one occurrence."""

    first: bool        # it begins a spell: report it
    suppressed: int    # occurrences the spell that just ended counted without reporting (say so first)


class Spell:
    def __init__(self, quiet: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet, self.clock = quiet, clock
        self._last: float | None = None  # the latest occurrence of the current spell; None between spells
        self.suppressed = 0              # occurrences of the current spell counted, not reported

    @property
    def active(self) -> bool:
        """A spell is on: it had an occurrence and has not ended."""
        return self._last is not None and not self._quiet_since(self._last)

    def occur(self) -> Occurrence:
        """Record one occurrence now."""
        now = self.clock()
        if self._last is not None and not self._quiet_since(self._last, now):
            self._last = now
            self.suppressed += 1
            return Occurrence(first=False, suppressed=0)
        ended = self.end()
        self._last = now
        return Occurrence(first=True, suppressed=ended)

    def end(self) -> int:
        """End the spell (the thing works again, or shutdown); returns how many of it were not reported."""
        ended, self._last, self.suppressed = self.suppressed, None, 0
        return ended

    def _quiet_since(self, last: float, now: float | None = None) -> bool:
        return self.quiet is not None and (self.clock() if now is None else now) - last > self.quiet


class Spells:
    """One :class:`Spell` per key (e.g. per warning text), at most ``max_keys`` of them (oldest forgotten)."""

    def __init__(self, quiet: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 64) -> None:
        self.quiet, self.clock, self.max_keys = quiet, clock, max_keys
        self._spells: dict[str, Spell] = {}

    def occur(self, key: str) -> Occurrence:
        spell = self._spells.get(key)
        if spell is None:
            spell = self._spells[key] = Spell(self.quiet, self.clock)
            if len(self._spells) > self.max_keys:
                self._spells.pop(next(iter(self._spells)))
        return spell.occur()
