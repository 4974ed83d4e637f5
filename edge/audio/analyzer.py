"""One audio stream's analysis: chunks in, bark/howl/whimper decisions out (model call, no I/O, no threads).

Owns the chain the feature, the tests and the benchmark share: loudness (level and bark onsets),
YAMNet windows every hop, and the episode detector. Times are stream seconds since the first sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.audio.bark import SAMPLE_RATE, AudioEvent, BarkDetector, OnsetCounter, WindowSlicer, vocal_scores

Scorer = Callable[[np.ndarray], np.ndarray]  # 15600 samples → 521 YAMNet scores


class BarkAnalyzer:
    def __init__(self, scorer: Scorer, threshold: float = 0.3, hop_seconds: float = 0.5, gap_seconds: float = 3.0,
                 continuous_seconds: float = 30.0) -> None:
        self.scorer = scorer
        self.slicer = WindowSlicer(hop_seconds)
        self.onsets = OnsetCounter()
        self.detector = BarkDetector(threshold, gap_seconds, continuous_seconds, self.onsets)
        self.level_dbfs: float | None = None
        self.last_scores: dict[str, float] = {}
        self.windows = 0

    @property
    def stream_seconds(self) -> float:
        return self.slicer.samples_seen / SAMPLE_RATE

    def push(self, chunk: np.ndarray) -> list[AudioEvent]:
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if len(chunk) else 0.0
        self.level_dbfs = round(20.0 * np.log10(max(rms, 1e-6)), 1)
        self.onsets.push(chunk)
        out: list[AudioEvent] = []
        for start, window in self.slicer.push(chunk):
            scores = vocal_scores(self.scorer(window))
            self.windows += 1
            self.last_scores = {k: round(v, 3) for k, v in scores.items()}
            out += self.detector.update(start, scores)
        return out

    def flush(self) -> list[AudioEvent]:
        """The stream ended: close an open episode so it is still reported."""
        return self.detector.flush(self.stream_seconds)
