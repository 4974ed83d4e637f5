"""Capped exponential backoff for anything that reconnects (camera, microphone, ``dogmonitor watch``).

Pure logic: the caller waits ``delay`` seconds (on its own stop event), then calls :meth:`Backoff.failed`
after another failure or :meth:`Backoff.reset` once the source delivered again. The reconnect figures the
device promises (0.5 s doubling to 30 s; the watchdog's windows are sized from the ceiling) live here once.
"""

from __future__ import annotations

RECONNECT_INITIAL = 0.5  # seconds before the first retry of a camera or microphone
RECONNECT_MAX = 30.0     # ceiling between retries (systemd's watchdog allows for it)


class Backoff:
    def __init__(self, initial: float = RECONNECT_INITIAL, maximum: float = RECONNECT_MAX,
                 factor: float = 2.0) -> None:
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.delay = initial

    def failed(self) -> float:
        """Grow the delay for the next attempt (capped); return the delay that was due now."""
        due = self.delay
        self.delay = min(self.delay * self.factor, self.maximum)
        return due

    def reset(self) -> None:
        self.delay = self.initial
