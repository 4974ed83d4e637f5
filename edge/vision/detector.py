"""YOLOX dog detection: letterbox pre-processing, grid decoding, NMS, and one onnxruntime session.

The pre- and post-processing follow what was verified for the shipped YOLOX-Nano export
(``../shared/models/PROVENANCE.md``): BGR 0-255 input, no normalisation, top-left padding with 114,
raw grid output ``[tx, ty, tw, th, obj, p_0..p_79]`` with obj and class scores already sigmoid'ed.

The dog score is read directly from the classes configured as the dog (``obj * p_dog``), not
from the arg-max class: this model often gives a dog a higher sheep or cow score, and the arg-max
would drop it. Other classes (toys for fetch) are reported with their own scores, and so are the
*candidate* classes (``cat``, ``bear``, ``sheep``, ``teddy bear``: what the model calls a curled or
sleeping dog), which the tracker may use only to keep a dog it already knows (never to report one).

A grey (infrared) frame is contrast-equalised first (:mod:`edge.vision.night`); ``flip`` looks at the
mirrored picture (a second look that sees the dog from the model's other side).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime as ort

from edge.core.frames import Detection
from edge.vision import night

CANDIDATE_CLASSES = ("cat", "bear", "sheep", "teddy bear")  # boxes the model gives lying and curled dogs


def letterbox(frame: np.ndarray, width: int, height: int, pad_value: int = 114) -> tuple[np.ndarray, float]:
    """Resize keeping aspect, paste top-left on a padded canvas; return NCHW float32 and the scale."""
    h, w = frame.shape[:2]
    ratio = min(width / w, height / h)
    resized = cv2.resize(frame, (int(w * ratio), int(h * ratio)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    tensor = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
    return tensor, ratio


def make_grid(width: int, height: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Grid offsets (N, 2) and per-row strides (N, 1) in the row order YOLOX emits."""
    grids, expanded = [], []
    for stride in strides:
        gh, gw = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grids.append(np.stack((xs, ys), axis=2).reshape(-1, 2))
        expanded.append(np.full((gh * gw, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def decode(output: np.ndarray, grid: np.ndarray, strides: np.ndarray, ratio: float,
           class_names: Sequence[str], dog_class_ids: Sequence[int], other_class_ids: Sequence[int],
           threshold: float, nms_iou: float = 0.45) -> list[Detection]:
    """Decode raw rows into boxes in source pixels; dogs first, labelled ``dog`` whatever class scored.

    ``dog_class_ids`` are the classes counted as the dog: their best ``obj * p`` is the dog score.
    ``other_class_ids`` (e.g. sports ball, frisbee) are kept under their own labels.
    """
    rows = output.reshape(-1, output.shape[-1])
    centres = (rows[:, :2] + grid) * strides
    sizes = np.exp(np.clip(rows[:, 2:4], -10, 10)) * strides
    xyxy = np.concatenate((centres - sizes / 2, centres + sizes / 2), axis=1) / ratio
    obj = rows[:, 4]
    cls = rows[:, 5:]
    found: list[Detection] = []
    groups: list[tuple[str, np.ndarray]] = [("dog", obj * cls[:, list(dog_class_ids)].max(axis=1))]
    groups += [(class_names[c], obj * cls[:, c]) for c in other_class_ids]
    for label, scores in groups:
        keep = np.flatnonzero(scores > threshold)
        if keep.size == 0:
            continue
        boxes = xyxy[keep]
        xywh = np.concatenate((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]), axis=1)
        chosen = cv2.dnn.NMSBoxes(xywh.tolist(), scores[keep].tolist(), threshold, nms_iou)
        for i in np.asarray(chosen, dtype=int).reshape(-1):
            x1, y1, x2, y2 = boxes[i]
            found.append(Detection(float(x1), float(y1), float(x2), float(y2), float(scores[keep][i]), label))
    return found


class Detector:
    """One YOLOX session plus its decoding constants; ``detect(frame)`` returns dogs and toys."""

    def __init__(self, session: ort.InferenceSession, spec: dict, dog_classes: Sequence[str],
                 threshold: float, other_classes: Sequence[str] = ("sports ball", "frisbee"),
                 candidate_classes: Sequence[str] = CANDIDATE_CLASSES, night_mode: bool = True) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.width = int(spec["input"]["width"])
        self.height = int(spec["input"]["height"])
        self.pad_value = int(spec["input"].get("pad_value", 114))
        self.class_names: list[str] = list(spec["classes"])
        unknown = [c for c in (*dog_classes, *other_classes) if c not in self.class_names]
        if unknown:
            raise ValueError(f"classes not in the model: {', '.join(unknown)}")
        self.dog_ids = [self.class_names.index(c) for c in dog_classes]
        # a candidate class the user counts as the dog (DOGMON_DETECT_CLASSES) is simply a dog
        candidates = [c for c in candidate_classes if c in self.class_names and c not in dog_classes]
        self.candidate_labels = frozenset(candidates)
        self.other_ids = [self.class_names.index(c) for c in (*other_classes, *candidates) if c not in dog_classes]
        self.night_mode = night_mode
        self.last_night = False  # whether the last frame looked at was grey (infrared)
        self.threshold = threshold
        self.grid, self.strides = make_grid(self.width, self.height, spec.get("strides", (8, 16, 32)))

    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        tensor, ratio = letterbox(frame, self.width, self.height, self.pad_value)
        return self.session.run(None, {self.input_name: tensor})[0], ratio

    def detect(self, frame: np.ndarray, threshold: float | None = None,
               region: tuple[int, int, int, int] | None = None, flip: bool = False) -> list[Detection]:
        """Boxes in ``frame`` pixels; with ``region`` (x1, y1, x2, y2) only that crop is looked at,
        with ``flip`` its mirror image (boxes are mapped back)."""
        image = frame if region is None else frame[region[1]:region[3], region[0]:region[2]]
        self.last_night = self.night_mode and night.is_gray(image)
        if self.last_night:
            image = night.enhance(image)
        if flip:
            image = np.ascontiguousarray(image[:, ::-1])
        output, ratio = self.infer(image)
        found = decode(output, self.grid, self.strides, ratio, self.class_names, self.dog_ids, self.other_ids,
                       self.threshold if threshold is None else threshold)
        width = image.shape[1]
        dx, dy = (0, 0) if region is None else region[:2]
        if flip:
            found = [dataclasses.replace(d, x1=width - d.x2, x2=width - d.x1) for d in found]
        if dx == dy == 0:
            return found
        return [dataclasses.replace(d, x1=d.x1 + dx, y1=d.y1 + dy, x2=d.x2 + dx, y2=d.y2 + dy) for d in found]
