"""The device's clock: the moments of the dog's world, read through one place.

``now()`` is wall time (event stamps, the day and its hours, media records); ``monotonic()`` is the time
frames, sounds and presence are measured in (absence, posture windows, clip spans). In production they are
``time.time()`` and ``time.monotonic()``.

A test can start the whole device at a chosen moment and run its clock faster than real time
(``DOGMON_TEST_CLOCK``, :func:`start`): a scripted day then plays in minutes, with every rule that counts
seconds (absence, resting, barking episodes, the hour's figures, the evening's reel) seeing the day's own
times. Only the dog's world runs fast. What stays on the system's clocks, on purpose: how long a computation
took (stage timers, fps), pacing of real input (a video file plays at its own frame rate, audio in real time:
one real second of footage is ``rate`` seconds of the day), network timeouts and backoff, and everything about
security (sessions, pairing codes, certificates, signatures), which must never be fooled by a test setting.
"""

from __future__ import annotations

import dataclasses
import time


@dataclasses.dataclass(frozen=True, slots=True)
class _Anchor:
    wall: float        # the device's wall time at the anchor
    real_mono: float   # the system's monotonic time at the anchor
    rate: float


_anchor: _Anchor | None = None


def start(wall: float, rate: float = 1.0) -> None:
    """From now on the device's wall clock reads ``wall`` and runs ``rate`` times faster than real time."""
    global _anchor
    if rate <= 0:
        raise ValueError("the clock's rate must be positive")
    _anchor = _Anchor(wall, time.monotonic(), rate)


def reset() -> None:
    """Back to the system's clocks."""
    global _anchor
    _anchor = None


def rate() -> float:
    """How many of the device's seconds pass in one real second (1 in production)."""
    return 1.0 if _anchor is None else _anchor.rate


def now() -> float:
    """Wall time of the dog's world (``time.time()`` in production)."""
    if _anchor is None:
        return time.time()
    return _anchor.wall + (time.monotonic() - _anchor.real_mono) * _anchor.rate


def monotonic() -> float:
    """Monotonic time of the dog's world (``time.monotonic()`` in production)."""
    if _anchor is None:
        return time.monotonic()
    return _anchor.real_mono + (time.monotonic() - _anchor.real_mono) * _anchor.rate


def real_seconds(device_seconds: float) -> float:
    """How long to wait in real time for ``device_seconds`` of the device's clock to pass."""
    return device_seconds / rate()
