"""Inbound rate limits shared by every transport: a token bucket and a per-action cooldown.

Pure logic on a monotonic clock (injectable for tests). The WebSocket hub keeps one bucket per
client, MQTT commands one for the command topics, and actions that write to disk (``snapshot``,
``bookmark``) a cooldown whatever transport asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket: ``rate`` messages per second with ``burst`` in reserve."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def available(self) -> bool:
        """Whether :meth:`allow` would succeed now, without spending a token."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens >= 1


class Cooldown:
    """At most one action per ``seconds``; :meth:`wait` says how long until the next one is allowed."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.last: float | None = None

    def wait(self) -> float:
        """0 when the action may run now (and it is counted as run); else the seconds left."""
        now = self.clock()
        if self.last is not None and now - self.last < self.seconds:
            return self.seconds - (now - self.last)
        self.last = now
        return 0.0
