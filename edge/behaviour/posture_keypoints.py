"""Dog posture from keypoints: the anatomy rules behind :func:`classify_keypoints`, and the shared posture names.

**Keypoints** (:func:`classify_keypoints`). Keypoint names of either common scheme (AP-10K's 17 and
the Ultralytics Dog-Pose 24) are mapped to parts: front torso (shoulders, else withers/neck, else
front elbows), rear torso (hips, else tail root, else rear elbows), front paws, back paws, head.
Lengths are divided by the dog's size ``S`` (the larger side of the box around its keypoints), and
image y grows downwards. Features: *rise* = how much higher the front torso is than the rear
(body-axis tilt), *front/rear drop* = how far the paws hang below the torso (leg extension), *leg
verticality* = how upright the torso→paw vectors are (paws spread out forwards or sideways give low
values), *head* below the torso top (a head resting down). Each posture's score is a weighted mean of
soft ramps over these features:

* sit: front raised (rise 0.20 → 0.40), back paws level with the hips (rear drop 0.35 → 0.15),
  front legs hanging straight down (front drop 0.30 → 0.50, upright);
* stand: torso level (|rise| 0.35 → 0.15), both leg pairs hanging (drops 0.20 → 0.40), legs upright;
* lie: torso level, paws close to torso height (largest drop 0.35 → 0.15), legs not upright,
  a lowered head counting a little extra.

Too few visible keypoints (no front/rear torso pair, or no paw) give ``None``: the caller falls back
to the box. The ramps come from canine proportions (a standing dog's paws hang roughly half its
size below the torso; a lying dog's torso is within a fifth of its size of the floor), not from test
photos.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

SIT, STAND, LIE, UNKNOWN = "sit", "stand", "lie", "unknown"
POSTURES = (SIT, STAND, LIE)
Box = tuple[float, float, float, float]
Keypoints = Mapping[str, tuple[float, float, float]]

# Part → keypoint names (normalised: lower case, spaces and dashes as underscores) in AP-10K and Dog-Pose.
PARTS: dict[str, tuple[str, ...]] = {
    "shoulder": ("left_shoulder", "right_shoulder", "l_shoulder", "r_shoulder"),
    "hip": ("left_hip", "right_hip", "l_hip", "r_hip"),
    "withers": ("withers", "neck"),
    "tail_root": ("tail_start", "root_of_tail", "tail_root", "tail_base"),
    "front_elbow": ("front_left_elbow", "front_right_elbow", "l_elbow", "r_elbow", "left_elbow", "right_elbow"),
    "rear_elbow": ("rear_left_elbow", "rear_right_elbow"),
    "front_paw": ("front_left_paw", "front_right_paw", "l_f_paw", "r_f_paw", "left_front_paw",
                  "right_front_paw"),
    "back_paw": ("rear_left_paw", "rear_right_paw", "l_b_paw", "r_b_paw", "left_back_paw", "right_back_paw"),
    "head": ("nose", "left_eye", "right_eye", "l_eye", "r_eye", "chin", "left_ear_base", "right_ear_base"),
}
# Front/rear torso pairs, most precise first; both ends must come from the same pair.
TORSO_PAIRS = (("shoulder", "hip"), ("withers", "tail_root"), ("front_elbow", "rear_elbow"))
# The drop thresholds are set for shoulder/hip joints. The top line (withers, tail root) sits about a
# tenth of the dog's size above them and the elbows about a tenth below, so drops measured from those
# are shifted by that much to stay comparable.
DROP_OFFSET = {"shoulder": 0.0, "withers": 0.1, "front_elbow": -0.1}
NAME_TO_PART = {name: part for part, names in PARTS.items() for name in names}


def normalise_name(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between (``lo > hi`` gives a falling ramp)."""
    if lo == hi:
        return 1.0 if x >= hi else 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


@dataclasses.dataclass(frozen=True)
class Reading:
    """One frame's posture judgement for one dog."""

    posture: str
    confidence: float
    source: str            # "keypoints" or "box"
    detail: str = ""       # which rule decided (for logs and the eval table)


def _weighted_mean(terms: Iterable[tuple[float | None, float]]) -> float | None:
    total = weight = 0.0
    for value, w in terms:
        if value is not None:
            total += value * w
            weight += w
    return total / weight if weight else None


def part_points(keypoints: Keypoints, threshold: float) -> dict[str, tuple[float, float]]:
    """Mean position of each part's visible keypoints (confidence ≥ threshold)."""
    sums: dict[str, list[float]] = {}
    for name, (x, y, conf) in keypoints.items():
        part = NAME_TO_PART.get(normalise_name(name))
        if part is None or not (conf >= threshold) or not (math.isfinite(x) and math.isfinite(y)):
            continue
        acc = sums.setdefault(part, [0.0, 0.0, 0.0])
        acc[0] += x
        acc[1] += y
        acc[2] += 1
    return {part: (sx / n, sy / n) for part, (sx, sy, n) in sums.items()}


def keypoint_features(keypoints: Keypoints, threshold: float = 0.3) -> dict[str, float] | None:
    """The posture features, or None when too few keypoints are visible to judge."""
    parts = part_points(keypoints, threshold)
    pair = next(((f, r) for f, r in TORSO_PAIRS if f in parts and r in parts), None)
    if pair is None or ("front_paw" not in parts and "back_paw" not in parts):
        return None
    xs = [p[0] for p in parts.values()]
    ys = [p[1] for p in parts.values()]
    size = max(max(xs) - min(xs), max(ys) - min(ys))
    if size <= 1e-6:
        return None
    front, rear = parts[pair[0]], parts[pair[1]]
    features = {"size": float(size), "rise": float(rear[1] - front[1]) / size}
    for paw, top, key in (("front_paw", front, "front"), ("back_paw", rear, "rear")):
        if paw in parts:
            dx, dy = parts[paw][0] - top[0], parts[paw][1] - top[1]
            features[f"{key}_drop"] = float(dy / size - DROP_OFFSET[pair[0]])
            length = math.hypot(dx, dy)
            if length > 0.05 * size:
                features[f"{key}_vertical"] = float(dy / length)
    if "head" in parts:
        features["head_low"] = float(parts["head"][1] - min(front[1], rear[1])) / size
    return features


def score_postures(f: Mapping[str, float]) -> dict[str, float]:
    rise = f["rise"]
    fd, rd = f.get("front_drop"), f.get("rear_drop")
    fv, rv = f.get("front_vertical"), f.get("rear_vertical")
    level = 1 - ramp(abs(rise), 0.15, 0.35)
    drops = [d for d in (fd, rd) if d is not None]
    verticals = [v for v in (fv, rv) if v is not None]
    upright = sum(ramp(v, 0.5, 0.85) for v in verticals) / len(verticals) if verticals else None
    legs_long = sum(ramp(d, 0.20, 0.40) for d in drops) / len(drops)
    legs_low = 1 - ramp(max(drops), 0.15, 0.35)
    head_low = f.get("head_low")
    sit = _weighted_mean([
        (ramp(rise, 0.20, 0.40), 2.0),
        (None if rd is None else 1 - ramp(rd, 0.15, 0.35), 1.0),
        (None if fd is None else ramp(fd, 0.30, 0.50), 1.0),
        (None if fv is None else ramp(fv, 0.5, 0.85), 1.0),
    ])
    stand = _weighted_mean([(level, 2.0), (legs_long, 2.0), (upright, 1.0)])
    lie = _weighted_mean([
        (level, 2.0), (legs_low, 2.0), (None if upright is None else 1 - upright, 1.0),
        # a head resting at or below the torso top is extra evidence; a raised head is no evidence against
        (ramp(head_low, 0.0, 0.1) if head_low is not None and head_low > 0 else None, 0.5),
    ])
    return {SIT: sit or 0.0, STAND: stand or 0.0, LIE: lie or 0.0}


def classify_keypoints(keypoints: Keypoints, threshold: float = 0.3) -> Reading | None:
    """Sit/stand/lie from keypoints; None when they do not show enough of the dog."""
    features = keypoint_features(keypoints, threshold)
    if features is None:
        return None
    scores = score_postures(features)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < 0.5:
        return Reading(UNKNOWN, round(1 - top, 3), "keypoints", "no posture scores 0.5")
    confidence = top * (0.5 + 0.5 * min(1.0, (top - second) / 0.3))
    detail = ", ".join(f"{k}={v:.2f}" for k, v in features.items() if k != "size")
    return Reading(best, round(confidence, 3), "keypoints", detail)
