"""Detect a duplicate MQTT client id: the broker kicking this client off again and again.

Pure logic. A broker allows one session per client id; when two devices share one (copied
``device.env`` with the same ``DOGMON_DEVICE_ID``), each new connection kicks the other off and both
reconnect a second later, forever. From the inside this looks like repeated disconnects shortly after
each successful connect (MQTT 5 brokers say "Session taken over"). :class:`KickLoopDetector` turns
that pattern into one clear warning instead of an endless trickle of "connection lost" lines.
"""

from __future__ import annotations

from collections import deque

TAKEN_OVER_HINTS = ("taken over", "session taken", "0x8e")


class KickLoopDetector:
    def __init__(self, client_id: str, short_seconds: float = 10.0, kicks: int = 3, window: float = 120.0,
                 rewarn_seconds: float = 600.0) -> None:
        self.client_id = client_id
        self.short_seconds, self.kicks, self.window = short_seconds, kicks, window
        self.rewarn_seconds = rewarn_seconds
        self._connected_at: float | None = None
        self._short_drops: deque[float] = deque()
        self._warned_at: float | None = None
        self.suspected = False

    def connected(self, now: float) -> None:
        self._connected_at = now

    def disconnected(self, now: float, reason: str) -> str | None:
        """Record a drop; return the warning to log when the pattern says another client has our id."""
        since = None if self._connected_at is None else now - self._connected_at
        self._connected_at = None
        taken_over = any(h in reason.lower() for h in TAKEN_OVER_HINTS)
        if since is not None and since <= self.short_seconds:
            self._short_drops.append(now)
        while self._short_drops and now - self._short_drops[0] > self.window:
            self._short_drops.popleft()
        if not (taken_over or len(self._short_drops) >= self.kicks):
            if not self._short_drops:
                self.suspected = False
            return None
        self.suspected = True
        if self._warned_at is not None and now - self._warned_at < self.rewarn_seconds:
            return None
        self._warned_at = now
        why = (f"the broker says the session was taken over ({reason})" if taken_over else
               f"the broker dropped this connection {len(self._short_drops)} times within "
               f"{self.short_seconds:.0f}s of connecting in the last {self.window:.0f}s (last reason: {reason})")
        return (f"MQTT client id {self.client_id!r} is probably used by another device or process: {why}. "
                "Brokers allow one connection per client id and kick the older one off, so both keep "
                "reconnecting. Give every device its own DOGMON_DEVICE_ID (the client id is derived from it).")
