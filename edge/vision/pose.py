"""Dog pose inference, model-agnostic: a manifest says what the ONNX model wants and emits.

Owns the pose manifest format (``kind: "pose"``), the crop around a confirmed dog box, the
pre-processing, the decoding of the three supported output families and the mapping of keypoints
back to frame pixels. One onnxruntime session comes from :func:`edge.vision.runtime.create_session`.

Families (``family`` in the manifest):

* ``yolo_pose``: Ultralytics pose exports (e.g. trained on the Ultralytics Dog-Pose dataset, 24
  keypoints). One output tensor of rows ``[box(4), score, K × (x, y, visibility)]``, either
  ``[1, N, 5+3K]`` or, as Ultralytics emits it, transposed ``[1, 5+3K, N]``. Exports made with
  ``nms=True`` have rows ``[x1, y1, x2, y2, score, class, K × 3]`` (``6+3K``) and are read too.
  Boxes and keypoints are in input pixels; visibility is already a probability unless the
  manifest says ``"visibility": "logit"``.
* ``simcc``: RTMPose-style top-down models with two outputs, ``simcc_x [1, K, W·r]`` and
  ``simcc_y [1, K, H·r]`` (``r`` = ``simcc_split_ratio``, 2.0 for RTMPose). The position is the
  arg-max divided by ``r``; the confidence is the smaller of the two maxima (as MMPose does).
* ``heatmap``: top-down heatmap models with one output ``[1, K, h, w]``. The position is the arg-max
  moved a quarter pixel towards the higher neighbour (MMPose's classic refinement), scaled by
  ``input / heatmap`` size; the confidence is the maximum.

All three run on a crop: the dog box grown by ``crop_padding`` (fraction of its size) and widened
or heightened to the model's input aspect, so the dog is never distorted; parts of the crop outside
the frame are filled with ``pad_value``. Normalisation is ``(pixel − mean) / std`` per channel, in
the manifest's channel order (``"RGB"`` or ``"BGR"``), with mean/std in 0–255 units.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

FAMILIES = ("yolo_pose", "simcc", "heatmap")
Box = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class PoseSpec:
    """What a pose manifest declares, validated."""

    name: str
    family: str
    input_width: int
    input_height: int
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channels: str = "RGB"
    layout: str = "NCHW"
    pad_value: int = 0
    crop_padding: float = 0.25
    licence: str = ""
    score_threshold: float = 0.25
    keypoint_threshold: float = 0.3
    simcc_split_ratio: float = 2.0
    confidence: str = "raw"         # simcc/heatmap: "raw" or "sigmoid" (apply a sigmoid to the maxima)
    visibility: str = "probability"  # yolo_pose: "probability" or "logit"
    yolo_layout: str = "auto"       # yolo_pose: "auto", "rows" ([1,N,C]) or "channels" ([1,C,N])

    @classmethod
    def from_manifest(cls, spec: dict[str, Any]) -> PoseSpec:
        """Validate a manifest dict; ``ValueError`` names the field that is wrong."""
        name = str(spec.get("name", "pose"))
        family = spec.get("family")
        if family not in FAMILIES:
            raise ValueError(f"pose manifest {name}: family must be one of {', '.join(FAMILIES)}, got {family!r}")
        inp = spec.get("input") or {}
        try:
            width, height = int(inp["width"]), int(inp["height"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"pose manifest {name}: input.width and input.height are required integers") from None
        names = tuple(str(n) for n in spec.get("keypoints") or ())
        if not names:
            raise ValueError(f"pose manifest {name}: keypoints (the list of keypoint names) is required")
        skeleton = tuple((int(a), int(b)) for a, b in spec.get("skeleton") or ())
        if any(not (0 <= i < len(names)) for edge in skeleton for i in edge):
            raise ValueError(f"pose manifest {name}: skeleton refers to a keypoint index outside 0..{len(names) - 1}")
        means = [float(v) for v in inp.get("mean", (0, 0, 0))]
        stds = [float(v) for v in inp.get("std", (1, 1, 1))]
        if len(means) != 3 or len(stds) != 3 or any(s == 0 for s in stds):
            raise ValueError(f"pose manifest {name}: input.mean and input.std need 3 values, std non-zero")
        mean, std = (means[0], means[1], means[2]), (stds[0], stds[1], stds[2])
        channels = str(inp.get("channels", "RGB")).upper()
        layout = str(inp.get("layout", "NCHW")).upper()
        if channels not in ("RGB", "BGR") or layout not in ("NCHW", "NHWC"):
            raise ValueError(f"pose manifest {name}: input.channels must be RGB or BGR, input.layout NCHW or NHWC")
        out = spec.get("output") or {}
        return cls(
            name=name, family=family, input_width=width, input_height=height, keypoints=names,
            skeleton=skeleton, mean=mean, std=std, channels=channels, layout=layout,
            pad_value=int(inp.get("pad_value", 114 if family == "yolo_pose" else 0)),
            crop_padding=float(spec.get("crop_padding", 0.25)),
            licence=str(spec.get("licence", "")),
            score_threshold=float(out.get("score_threshold", 0.25)),
            keypoint_threshold=float(out.get("keypoint_threshold", 0.3)),
            simcc_split_ratio=float(out.get("simcc_split_ratio", 2.0)),
            confidence=str(out.get("confidence", "raw")),
            visibility=str(out.get("visibility", "probability")),
            yolo_layout=str(out.get("layout", "auto")),
        )


@dataclasses.dataclass(frozen=True)
class Pose:
    """Keypoints of one dog in frame pixels: ``keypoints[i] = (x, y, confidence)``."""

    keypoints: np.ndarray
    score: float
    names: tuple[str, ...]

    def named(self) -> dict[str, tuple[float, float, float]]:
        return {n: (float(k[0]), float(k[1]), float(k[2])) for n, k in zip(self.names, self.keypoints, strict=True)}


# --- crop geometry: pure -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Crop:
    """The frame region fed to the model: input pixel ``u`` is frame pixel ``x0 + u / scale``."""

    x0: float
    y0: float
    scale: float

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        out = np.array(points, dtype=np.float64, copy=True)
        out[:, 0] = self.x0 + out[:, 0] / self.scale
        out[:, 1] = self.y0 + out[:, 1] / self.scale
        return out

    def to_input(self, box: Box) -> Box:
        x1, y1, x2, y2 = box
        s = self.scale
        return ((x1 - self.x0) * s, (y1 - self.y0) * s, (x2 - self.x0) * s, (y2 - self.y0) * s)

    def matrix(self) -> np.ndarray:
        s = self.scale
        return np.array([[s, 0.0, -self.x0 * s], [0.0, s, -self.y0 * s]], dtype=np.float64)


def crop_for(box: Box, input_width: int, input_height: int, padding: float) -> Crop:
    """The padded, aspect-matched region around ``box`` (centred on it; may extend past the frame)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w = max(x2 - x1, 1.0) * (1 + padding)
    h = max(y2 - y1, 1.0) * (1 + padding)
    aspect = input_width / input_height
    if w / h > aspect:
        h = w / aspect
    else:
        w = h * aspect
    return Crop(cx - w / 2, cy - h / 2, input_width / w)


def preprocess(frame: np.ndarray, crop: Crop, spec: PoseSpec) -> np.ndarray:
    """Warp the crop to the input size, reorder channels, normalise, lay out as the model wants."""
    pad = (spec.pad_value,) * 3
    patch = cv2.warpAffine(frame, crop.matrix(), (spec.input_width, spec.input_height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=pad)
    if spec.channels == "RGB":
        patch = patch[:, :, ::-1]
    tensor = (patch.astype(np.float32) - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[np.newaxis], dtype=np.float32)


# --- decoders: pure, input-pixel coordinates out -------------------------------------------------

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def yolo_rows(output: np.ndarray, num_keypoints: int, layout: str = "auto") -> np.ndarray:
    """Bring a YOLO-pose output to rows ``(N, C)``, whichever of the two layouts it came in."""
    arr = np.asarray(output, dtype=np.float32)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            raise ValueError(f"yolo_pose output batch must be 1, got shape {arr.shape}")
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"yolo_pose output must be [1, N, C] or [1, C, N], got shape {np.shape(output)}")
    widths = {5 + 3 * num_keypoints, 6 + 3 * num_keypoints}
    rows_fit, cols_fit = arr.shape[1] in widths, arr.shape[0] in widths
    if layout == "rows" or (layout == "auto" and rows_fit and not cols_fit):
        rows = arr
    elif layout == "channels" or (layout == "auto" and cols_fit):
        # [C, N] is what Ultralytics emits; when both dimensions fit, that reading is the likelier one
        rows = arr.T
    else:
        raise ValueError(f"yolo_pose output shape {np.shape(output)} has no dimension of 5+3K or 6+3K "
                         f"for K={num_keypoints} keypoints; check keypoints in the manifest")
    if rows.shape[1] not in widths:
        raise ValueError(f"yolo_pose rows have {rows.shape[1]} values, expected 5+3K or 6+3K for K={num_keypoints}")
    return rows


def decode_yolo_pose(output: np.ndarray, num_keypoints: int, target: Box | None, score_threshold: float,
                     layout: str = "auto", visibility: str = "probability") -> tuple[np.ndarray, float] | None:
    """Pick the row for the target dog (score weighted by overlap with ``target``), return its keypoints.

    Rows of width 5+3K carry centre-size boxes (raw head output); rows of 6+3K come from exports with
    NMS and carry corner boxes and a class column.
    """
    rows = yolo_rows(output, num_keypoints, layout)
    scores = rows[:, 4]
    candidates = np.flatnonzero(scores >= score_threshold)
    if candidates.size == 0:
        return None
    corner = rows.shape[1] == 6 + 3 * num_keypoints
    best, best_key = -1, -1.0
    for i in candidates:
        if corner:
            box = (float(rows[i, 0]), float(rows[i, 1]), float(rows[i, 2]), float(rows[i, 3]))
        else:
            cx, cy, w, h = (float(v) for v in rows[i, :4])
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        # The crop is centred on the tracked dog; another dog in the crop must not steal its keypoints.
        key = float(scores[i]) * (0.25 + (_iou(box, target) if target is not None else 0.0))
        if key > best_key:
            best, best_key = int(i), key
    kpts = rows[best, rows.shape[1] - 3 * num_keypoints:].reshape(num_keypoints, 3).astype(np.float64)
    if visibility == "logit":
        kpts[:, 2] = _sigmoid(kpts[:, 2])
    return kpts, float(scores[best])


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float,
                 confidence: str = "raw") -> tuple[np.ndarray, float]:
    sx = np.asarray(simcc_x, dtype=np.float64).reshape(simcc_x.shape[-2], simcc_x.shape[-1])
    sy = np.asarray(simcc_y, dtype=np.float64).reshape(simcc_y.shape[-2], simcc_y.shape[-1])
    if sx.shape[0] != sy.shape[0]:
        raise ValueError(f"simcc_x has {sx.shape[0]} keypoints but simcc_y has {sy.shape[0]}")
    x = np.argmax(sx, axis=1) / split_ratio
    y = np.argmax(sy, axis=1) / split_ratio
    conf = np.minimum(sx.max(axis=1), sy.max(axis=1))
    if confidence == "sigmoid":
        conf = _sigmoid(conf)
    kpts = np.stack((x, y, conf), axis=1)
    return kpts, float(conf.mean())


def decode_heatmap(heatmaps: np.ndarray, input_width: int, input_height: int,
                   confidence: str = "raw") -> tuple[np.ndarray, float]:
    hm = np.asarray(heatmaps, dtype=np.float64)
    hm = hm.reshape(hm.shape[-3], hm.shape[-2], hm.shape[-1])
    k, h, w = hm.shape
    flat = hm.reshape(k, -1).argmax(axis=1)
    ys, xs = np.divmod(flat, w)
    kpts = np.zeros((k, 3), dtype=np.float64)
    for i in range(k):
        px, py = float(xs[i]), float(ys[i])
        x, y = int(xs[i]), int(ys[i])
        if 0 < x < w - 1:
            px += 0.25 * np.sign(hm[i, y, x + 1] - hm[i, y, x - 1])
        if 0 < y < h - 1:
            py += 0.25 * np.sign(hm[i, y + 1, x] - hm[i, y - 1, x])
        kpts[i] = (px * input_width / w, py * input_height / h, hm[i, y, x])
    if confidence == "sigmoid":
        kpts[:, 2] = _sigmoid(kpts[:, 2])
    return kpts, float(kpts[:, 2].mean())


# --- the runner ----------------------------------------------------------------------------------

class PoseRunner:
    """One pose session: ``estimate(frame, box)`` gives the dog's keypoints in frame pixels."""

    def __init__(self, session: ort.InferenceSession, spec: PoseSpec) -> None:
        self.session = session
        self.spec = spec
        inputs = session.get_inputs()
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        expected = ([1, 3, spec.input_height, spec.input_width] if spec.layout == "NCHW"
                    else [1, spec.input_height, spec.input_width, 3])
        if len(shape) == 4 and any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected[1:],
                                                                                   strict=True)):
            raise ValueError(f"pose model {spec.name}: input {self.input_name} has shape {shape}, but the manifest "
                             f"says {spec.layout} {spec.input_width}x{spec.input_height}")
        self.output_names = [o.name for o in session.get_outputs()]
        self._simcc_order = self._find_simcc_order() if spec.family == "simcc" else (0, 1)

    def _find_simcc_order(self) -> tuple[int, int]:
        if len(self.output_names) < 2:
            raise ValueError(f"pose model {self.spec.name}: a simcc model needs two outputs (simcc_x, simcc_y)")
        low = [n.lower() for n in self.output_names[:2]]
        if low[0].endswith("y") and low[1].endswith("x"):
            return (1, 0)
        return (0, 1)

    def estimate(self, frame: np.ndarray, box: Box) -> Pose | None:
        spec = self.spec
        crop = crop_for(box, spec.input_width, spec.input_height, spec.crop_padding)
        tensor = preprocess(frame, crop, spec)
        outputs = self.session.run(None, {self.input_name: tensor})
        k = len(spec.keypoints)
        if spec.family == "yolo_pose":
            found = decode_yolo_pose(outputs[0], k, crop.to_input(box), spec.score_threshold,
                                     spec.yolo_layout, spec.visibility)
            if found is None:
                return None
            kpts, score = found
        elif spec.family == "simcc":
            ix, iy = self._simcc_order
            kpts, score = decode_simcc(outputs[ix], outputs[iy], spec.simcc_split_ratio, spec.confidence)
        else:
            kpts, score = decode_heatmap(outputs[0], spec.input_width, spec.input_height, spec.confidence)
        if kpts.shape[0] != k:
            raise ValueError(f"pose model {spec.name} gave {kpts.shape[0]} keypoints; the manifest lists {k}")
        return Pose(crop.to_frame(kpts), score, spec.keypoints)


# --- finding an installed model ------------------------------------------------------------------

def _installed(manifest: Any, model_dir: Path, mirror: Path | None) -> Path | None:
    """The manifest's verified weights in ``model_dir``, fetched first (mirror or URLs) if the manifest says where."""
    from edge.core.models import FetchError, fetch_file, is_present

    entry = manifest.files[0]
    if not is_present(model_dir, entry) and (entry.urls or (mirror is not None and entry.mirror)):
        try:
            fetch_file(entry, model_dir, mirror)
        except FetchError as exc:
            log.warning("pose manifest %s: %s", manifest.name, exc)
    return model_dir / entry.name if is_present(model_dir, entry) else None


def resolve_pose_manifest(selector: str, model_dir: Path, manifest_dir: Path | None = None,
                          mirror: Path | None = None) -> tuple[Any, Path] | None:
    """Find the pose manifest and its weights; None means the pose stage is off.

    ``selector``: ``""`` or ``auto`` (the first ``kind: "pose"`` manifest in ``models/`` whose weights
    are present and verify, or can be fetched from the mirror or the manifest's URLs), ``off``, a
    manifest name, or a path to a manifest ``.json`` (its weights are looked for next to it, then in
    ``model_dir``). A named or path-given model that is missing raises ``ValueError``: the user asked
    for it, so silence would hide a mistake.
    """
    from edge.core.models import MANIFEST_DIR, is_present, load_manifest, load_manifests

    selector = selector.strip()
    if selector.lower() == "off":
        return None
    directory = manifest_dir or MANIFEST_DIR
    if selector.endswith(".json"):
        path = Path(selector).expanduser()
        if not path.is_file():
            raise ValueError(f"DOGMON_POSE_MODEL: no manifest at {path}")
        manifest = load_manifest(path)
        if manifest.kind != "pose":
            raise ValueError(f"DOGMON_POSE_MODEL: {path} is a {manifest.kind!r} manifest, not 'pose'")
        if is_present(path.parent, manifest.files[0]):
            return manifest, path.parent / manifest.main_file
        weights = _installed(manifest, model_dir, mirror)
        if weights is None:
            raise ValueError(f"DOGMON_POSE_MODEL: {manifest.main_file} (sha256 as in {path.name}) is neither in "
                             f"{path.parent} nor in {model_dir}")
        return manifest, weights
    poses = [m for m in load_manifests(directory) if m.kind == "pose"]
    if selector and selector.lower() != "auto":
        chosen = [m for m in poses if m.name == selector]
        if not chosen:
            raise ValueError(f"DOGMON_POSE_MODEL={selector!r}: no kind 'pose' manifest of that name in {directory} "
                             f"(found: {', '.join(m.name for m in poses) or 'none'})")
        weights = _installed(chosen[0], model_dir, mirror)
        if weights is None:
            raise ValueError(f"DOGMON_POSE_MODEL={selector!r}: {chosen[0].main_file} is missing from {model_dir} "
                             "or its sha256 does not match the manifest")
        return chosen[0], weights
    for manifest in poses:
        weights = _installed(manifest, model_dir, mirror)
        if weights is not None:
            return manifest, weights
        log.warning("pose manifest %s: %s not in %s (or sha256 differs); skipped", manifest.name,
                    manifest.main_file, model_dir)
    return None


def load_pose_runner(selector: str, model_dir: Path, threads: int = 0, optimization: str = "all",
                     providers: str = "auto", manifest_dir: Path | None = None,
                     mirror: Path | None = None) -> PoseRunner | None:
    from edge.vision.runtime import create_session

    found = resolve_pose_manifest(selector, model_dir, manifest_dir, mirror)
    if found is None:
        return None
    manifest, weights = found
    spec = PoseSpec.from_manifest(manifest.spec)
    session = create_session(weights, threads, optimization, providers)
    return PoseRunner(session, spec)


def keypoint_list(pose: Pose, decimals: int = 1) -> list[list[float]]:
    """Keypoints as ``[[x, y, confidence], …]`` for messages."""
    return [[round(float(x), decimals), round(float(y), decimals), round(float(c), 3)] for x, y, c in pose.keypoints]


def skeleton_list(skeleton: Sequence[tuple[int, int]]) -> list[list[int]]:
    return [[int(a), int(b)] for a, b in skeleton]
