"""Capped exponential backoff for anything that reconnects (camera, microphone).

Pure logic: the caller waits ``delay`` seconds (on its own stop event), then calls :meth:`Backoff.failed`
after another failure or :meth:`Backoff.reset` once the source delivered again.
"""

from __future__ import annotations


class Backoff:
    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.delay = initial

    def failed(self) -> float:
        """Grow the delay for the next attempt (capped); return the delay that was due now."""
        due = self.delay
        self.delay = min(self.delay * self.factor, self.maximum)
        return due

    def reset(self) -> None:
        self.delay = self.initial
