"""Bark detection logic: sliding windows, per-window class scores → episodes → events. No I/O, no threads.

Owns three pure pieces the audio feature strings together:

* :class:`WindowSlicer` turns a stream of 16 kHz chunks into YAMNet windows (15600 samples, 0.975 s)
  every ``hop`` seconds, each stamped with its start in stream seconds.
* :class:`OnsetCounter` follows the loudness envelope (20 ms frames) and records onsets, so an episode
  can say how many barks it held (YAMNet's 0.975 s windows overlap, so they cannot count barks).
* :class:`BarkDetector` takes each window's Bark/Howl/Growling/Whimper scores and groups windows at or
  above the threshold into episodes: a gap of ``gap_seconds`` without a vocal window ends one. It
  returns :class:`AudioEvent` items: one ``bark`` (or ``howl``/``whimper`` when that class dominated)
  per episode when it ends, and ``continuous_barking`` once when a barking episode outlasts
  ``continuous_seconds``. The Dog class (69) is deliberately not used: it fires on babies and cats.

Times are stream seconds (samples / 16000); the caller maps them to wall-clock time.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge.protocol.shapes import VOCAL_CLASS_NAMES

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 15600
WINDOW_SECONDS = WINDOW_SAMPLES / SAMPLE_RATE

# YAMNet class indices (0-based rows of yamnet_class_map.csv); checked against the CSV at load.
# YAMNet class indices of the vocal classes the protocol names (edge.protocol.shapes.VOCAL_CLASS_NAMES).
VOCAL_CLASSES: dict[str, int] = dict(zip(VOCAL_CLASS_NAMES, (70, 72, 74, 75), strict=True))
CLASS_NAMES: dict[str, str] = {"bark": "Bark", "howl": "Howl", "growling": "Growling", "whimper": "Whimper (dog)"}
# The event an episode produces when that class dominated it (growls are reported as barking).
EPISODE_EVENT: dict[str, str] = {"bark": "bark", "growling": "bark", "howl": "howl", "whimper": "whimper"}


class WindowSlicer:
    """Keeps the last window's worth of samples and yields ``(start_s, window)`` every ``hop`` samples."""

    def __init__(self, hop_seconds: float = 0.5) -> None:
        self.hop = max(1, round(hop_seconds * SAMPLE_RATE))
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0      # stream sample index of _buffer[0]
        self._next_start = 0        # stream sample index where the next window starts
        self.samples_seen = 0

    def push(self, chunk: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        self._buffer = np.concatenate([self._buffer, chunk.astype(np.float32, copy=False)])
        self.samples_seen += len(chunk)
        while self._next_start + WINDOW_SAMPLES <= self._buffer_start + len(self._buffer):
            offset = self._next_start - self._buffer_start
            yield self._next_start / SAMPLE_RATE, self._buffer[offset:offset + WINDOW_SAMPLES]
            self._next_start += self.hop
        # Drop what no future window needs (bounded memory whatever the hop).
        keep_from = min(self._next_start, self._buffer_start + len(self._buffer)) - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._buffer_start += keep_from


class OnsetCounter:
    """Loudness onsets: a 20 ms frame ``rise_db`` above the quietest of the previous ``lookback`` s."""

    FRAME = 320  # 20 ms

    def __init__(self, rise_db: float = 10.0, lookback: float = 0.3, refractory: float = 0.35,
                 floor_db: float = -50.0, keep_seconds: float = 600.0) -> None:
        self.rise_db, self.floor_db = rise_db, floor_db
        self._lookback: deque[float] = deque(maxlen=max(1, round(lookback * SAMPLE_RATE / self.FRAME)))
        self.refractory_frames = max(1, round(refractory * SAMPLE_RATE / self.FRAME))
        self._pending = np.zeros(0, dtype=np.float32)
        self._frame_index = 0
        self._last_onset = -10**9
        self.onsets: deque[float] = deque(maxlen=max(16, int(keep_seconds * 5)))
        self.last_level_db = -120.0

    def push(self, chunk: np.ndarray) -> None:
        data = np.concatenate([self._pending, chunk.astype(np.float32, copy=False)])
        whole = len(data) // self.FRAME * self.FRAME
        self._pending = data[whole:]
        if not whole:
            return
        frames = data[:whole].reshape(-1, self.FRAME).astype(np.float64)
        levels = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
        for level in levels:
            quietest = min(self._lookback) if self._lookback else level
            if (level >= self.floor_db and level - quietest >= self.rise_db
                    and self._frame_index - self._last_onset >= self.refractory_frames):
                self._last_onset = self._frame_index
                self.onsets.append(self._frame_index * self.FRAME / SAMPLE_RATE)
            self._lookback.append(level)
            self._frame_index += 1
        self.last_level_db = float(levels[-1])

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.onsets if start <= t <= end)


@dataclasses.dataclass(slots=True)
class AudioEvent:
    """An event the detector decided on; ``at`` is the stream time it became known."""

    kind: str              # bark, howl, whimper or continuous_barking
    at: float
    data: dict[str, Any]


@dataclasses.dataclass(slots=True)
class Episode:
    """Vocal windows no further apart than the gap: one barking (howling, whimpering) spell."""

    start: float                      # start of the first vocal window (stream s)
    end: float                        # end of the last vocal window (stream s)
    windows: int = 0
    peaks: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(VOCAL_CLASSES, 0.0))
    totals: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(VOCAL_CLASSES, 0.0))
    continuous_reported: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def dominant(self) -> str:
        """The vocal class with the largest summed score over the episode's vocal windows."""
        return max(self.totals, key=lambda k: (self.totals[k], self.peaks[k]))

    @property
    def kind(self) -> str:
        return EPISODE_EVENT[self.dominant]


class BarkDetector:
    """Groups vocal windows into episodes and decides the events (see module docstring)."""

    def __init__(self, threshold: float = 0.3, gap_seconds: float = 3.0, continuous_seconds: float = 30.0,
                 onsets: OnsetCounter | None = None) -> None:
        self.threshold = threshold
        self.gap_seconds = gap_seconds
        self.continuous_seconds = continuous_seconds
        self.onsets = onsets
        self.episode: Episode | None = None
        self.episodes = 0

    def update(self, start: float, scores: dict[str, float]) -> list[AudioEvent]:
        """One window starting at ``start`` (stream s) with its vocal-class scores."""
        end = start + WINDOW_SECONDS
        out: list[AudioEvent] = []
        vocal = max(scores.values()) >= self.threshold
        episode = self.episode
        if episode is not None:
            # Quiet since the episode's last vocal window: up to this window's start if it is vocal itself,
            # else through its end.
            quiet = (start if vocal else end) - episode.end
            if quiet >= self.gap_seconds:
                out.append(self._close(end))
                episode = None
        if not vocal:
            return out
        if episode is None:
            episode = self.episode = Episode(start=start, end=end)
        episode.end = end
        episode.windows += 1
        for name, score in scores.items():
            episode.peaks[name] = max(episode.peaks[name], score)
            episode.totals[name] += score
        if (not episode.continuous_reported and episode.kind == "bark"
                and episode.duration >= self.continuous_seconds):
            episode.continuous_reported = True
            out.append(AudioEvent("continuous_barking", end, {**self._summary(episode), "ongoing": True}))
        return out

    def flush(self, now: float) -> list[AudioEvent]:
        """End any open episode (the stream stopped)."""
        return [self._close(now)] if self.episode is not None else []

    @property
    def active(self) -> bool:
        return self.episode is not None

    def _close(self, now: float) -> AudioEvent:
        episode = self.episode
        assert episode is not None
        self.episode = None
        self.episodes += 1
        return AudioEvent(episode.kind, now, self._summary(episode))

    def _summary(self, episode: Episode) -> dict[str, Any]:
        barks = self.onsets.count_between(episode.start, episode.end) if self.onsets is not None else 0
        return {
            "start": episode.start,
            "duration_s": round(episode.duration, 2),
            "peak_score": round(episode.peaks[episode.dominant], 3),
            "barks": max(barks, 1),
            "windows": episode.windows,
            "dominant": episode.dominant,
            "peaks": {k: round(v, 3) for k, v in episode.peaks.items()},
        }


def vocal_scores(row: np.ndarray, indices: dict[str, int] = VOCAL_CLASSES) -> dict[str, float]:
    """Pick the vocal classes out of YAMNet's 521 scores."""
    return {name: float(row[index]) for name, index in indices.items()}
