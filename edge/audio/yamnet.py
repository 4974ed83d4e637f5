"""YAMNet on onnxruntime: one 0.975 s window of 16 kHz audio in, the dog vocal-class scores out.

Owns loading the model and its class map, checking that the class indices the detector relies on
(Bark 70, Howl 72, Growling 74, Whimper 75) name what they should, and timing each call. The model
takes a 1-D float32 tensor of 15600 samples (no batch) and returns ``[1, 521]`` sigmoid scores.
"""

from __future__ import annotations

import csv
import time
from collections import deque
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.audio.bark import CLASS_NAMES, VOCAL_CLASSES, WINDOW_SAMPLES


def read_class_map(path: Path) -> list[str]:
    """Display names by index from ``yamnet_class_map.csv`` (``index,mid,display_name``)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"]))]


def check_class_map(names: list[str]) -> None:
    for key, index in VOCAL_CLASSES.items():
        if index >= len(names) or names[index] != CLASS_NAMES[key]:
            found = names[index] if index < len(names) else "nothing"
            raise ValueError(f"class map row {index} is {found!r}, expected {CLASS_NAMES[key]!r}: not YAMNet's map")


class YamnetClassifier:
    def __init__(self, session: ort.InferenceSession, class_names: list[str] | None = None) -> None:
        self.session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [WINDOW_SAMPLES]:
            raise ValueError(f"expected one input of shape [{WINDOW_SAMPLES}], got "
                             f"{[(i.name, i.shape) for i in inputs]}: not the YAMNet waveform model")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        if class_names is not None:
            check_class_map(class_names)
        self.class_names = class_names
        self.call_ms: deque[float] = deque(maxlen=200)

    def scores(self, window: np.ndarray) -> np.ndarray:
        """All 521 scores for one window of exactly 15600 samples."""
        started = time.perf_counter()
        out = self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(window, np.float32)})
        self.call_ms.append((time.perf_counter() - started) * 1000.0)
        return out[0][0]

    def median_ms(self) -> float | None:
        return round(float(np.median(self.call_ms)), 2) if self.call_ms else None
