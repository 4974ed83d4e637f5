"""Dog posture (sit / stand / lie / unknown) from keypoints or from the box, with temporal hysteresis.

Pure logic: no I/O, no clock of its own (every call takes ``t``, monotonic seconds). Three parts:

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

**Box** (:class:`BoxPosture`). Without keypoints, evidence is the box over time. A dog moving by
more than 0.6 of its height per second, or whose box grows or shrinks by more than 25 % a second
while keeping its shape (walking towards or away from the camera), is standing: dogs do not walk
sitting or lying. While it stands, its box shape and floor line become the track's *standing
reference*. Against that reference, the box aspect (height/width) falling below 0.82 × the standing
aspect, or the top dropping by 30 % of the standing height while the floor line stays within 15 %,
is lying; the aspect rising above 1.45 × with the top roughly kept is sitting. With no reference yet
(a single photo, a dog first seen still) the absolute aspect decides: below 0.73 lying, above 1.31
sitting, else standing. These boundaries are the geometric means between typical side-view box
aspects (stand ≈ 0.9, sphinx lie ≈ 0.6, sit ≈ 1.9). Box posture cannot tell a dog turning towards
the camera from one sitting down.

**Hysteresis** (:class:`PostureHysteresis`): a new posture must be read continuously for
``min_seconds`` before it is committed; readings of the current posture cancel a candidate, so a
one-frame flip never fires. ``unknown`` readings neither confirm nor cancel.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence

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


# --- box evidence ------------------------------------------------------------------------------

ABS_LIE_ASPECT = 0.73    # sqrt(0.6 · 0.9): between a sphinx-lying and a standing side-view box
ABS_SIT_ASPECT = 1.31    # sqrt(0.9 · 1.9): between a standing and a sitting side-view box
REL_LIE = 0.82           # sqrt(0.6 / 0.9) of the same dog's standing aspect
REL_SIT = 1.45           # sqrt(1.9 / 0.9)
TOP_DROP_LIE = 0.30      # top edge fell by this share of the standing height …
FLOOR_STEADY = 0.15      # … while the floor line (bottom edge) stayed within this share
MOVING_SPEED = 0.6       # box heights per second: a dog moving this fast is on its feet
MOVING_SCALE_RATE = 0.25  # same-shape box growing/shrinking by this log-factor per second: walking to/from us
REFERENCE_TTL = 300.0    # seconds a standing reference stays valid without being refreshed


def _aspect(box: Box) -> float:
    return max(box[3] - box[1], 1e-6) / max(box[2] - box[0], 1e-6)


def classify_box_alone(box: Box) -> Reading:
    """A single image: the absolute box aspect (height/width) is all there is."""
    aspect = _aspect(box)
    if aspect < ABS_LIE_ASPECT:
        return Reading(LIE, _margin(ABS_LIE_ASPECT / aspect), "box", f"aspect {aspect:.2f} < {ABS_LIE_ASPECT}")
    if aspect > ABS_SIT_ASPECT:
        return Reading(SIT, _margin(aspect / ABS_SIT_ASPECT), "box", f"aspect {aspect:.2f} > {ABS_SIT_ASPECT}")
    edge = min(aspect / ABS_LIE_ASPECT, ABS_SIT_ASPECT / aspect)
    return Reading(STAND, _margin(edge), "box", f"aspect {aspect:.2f} in standing band")


def _margin(ratio: float) -> float:
    """Confidence from how far past a boundary a ratio is: 0.5 at the boundary, 0.9 at 1.5×."""
    return round(min(0.9, 0.5 + 0.4 * math.log(max(ratio, 1.0)) / math.log(1.5)), 3)


@dataclasses.dataclass
class StandingReference:
    aspect: float
    height: float
    top: float
    bottom: float
    t: float


class BoxPosture:
    """One track's box history and standing reference; :meth:`observe` gives a box reading."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self.history: deque[tuple[float, Box]] = deque(maxlen=256)
        self.reference: StandingReference | None = None

    def _window(self, t: float) -> list[tuple[float, Box]]:
        return [(ht, b) for ht, b in self.history if t - ht <= self.window]

    def speed(self, t: float) -> float:
        """Box-centre speed over the last window, in box heights per second (0 with under 0.4 s of history)."""
        recent = self._window(t)
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.4:
            return 0.0
        (t0, a), (t1, b) = recent[0], recent[-1]
        height = max(b[3] - b[1], 1e-6)
        dist = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
        return dist / height / (t1 - t0)

    def steady_shape(self, t: float, tolerance: float = 0.15) -> bool:
        """The aspect stayed within ``tolerance`` over the window (no cut, no posture change under way)."""
        aspects = [_aspect(b) for _, b in self._window(t)]
        return bool(aspects) and max(aspects) / min(aspects) <= 1 + tolerance

    def scale_rate(self, t: float) -> float:
        """How fast the box grows or shrinks while keeping its shape (walking to or from the camera), per second.

        A box that changes shape (a dog lying down, a scene cut) does not count as moving.
        """
        recent = self._window(t)
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.4 or not self.steady_shape(t):
            return 0.0
        (t0, a), (t1, b) = recent[0], recent[-1]
        diag_a = math.hypot(a[2] - a[0], a[3] - a[1])
        diag_b = math.hypot(b[2] - b[0], b[3] - b[1])
        return abs(math.log(max(diag_b, 1e-6) / max(diag_a, 1e-6))) / (t1 - t0)

    def observe(self, t: float, box: Box) -> Reading:
        self.history.append((t, box))
        while self.history and t - self.history[0][0] > 10 * self.window:
            self.history.popleft()
        if self.speed(t) >= MOVING_SPEED or self.scale_rate(t) >= MOVING_SCALE_RATE:
            return Reading(STAND, 0.7, "box", "moving")
        ref = self.reference
        if ref is None or t - ref.t > REFERENCE_TTL:
            return classify_box_alone(box)
        aspect = _aspect(box)
        rel = aspect / ref.aspect
        top_drop = (box[1] - ref.top) / ref.height
        floor_shift = abs(box[3] - ref.bottom) / ref.height
        if rel <= REL_LIE:
            return Reading(LIE, _margin(REL_LIE / rel), "box", f"aspect {rel:.2f}x standing")
        if top_drop >= TOP_DROP_LIE and floor_shift <= FLOOR_STEADY:
            return Reading(LIE, _margin(top_drop / TOP_DROP_LIE), "box", f"top fell {top_drop:.2f}, floor kept")
        if rel >= REL_SIT and top_drop <= 0.25:
            return Reading(SIT, _margin(rel / REL_SIT), "box", f"aspect {rel:.2f}x standing")
        return Reading(STAND, _margin(min(rel / REL_LIE, REL_SIT / rel)), "box", f"aspect {rel:.2f}x standing")

    def learn_standing(self, t: float, box: Box, evidence: str) -> None:
        """Fold a standing box into the reference; ``evidence`` is ``keypoints``, ``moving`` or ``still``.

        Keypoints always teach. A moving dog teaches when its box kept its shape over the window (a
        scene cut or a dog lying down changes the shape). A still box judged standing teaches only
        when it is steady and within 10 % of the reference, so a posture change under way cannot
        drag the reference along with it.
        """
        aspect, height = _aspect(box), max(box[3] - box[1], 1e-6)
        steady = self.steady_shape(t)
        ref = self.reference
        if ref is None or t - ref.t > REFERENCE_TTL:
            if evidence == "keypoints" or steady:
                self.reference = StandingReference(aspect, height, box[1], box[3], t)
            return
        # Exponential forgetting in time, not per frame, so the frame rate does not change how fast it adapts.
        if evidence == "keypoints":
            tau = 2.0
        elif evidence == "moving" and steady:
            tau = 3.0
        elif evidence == "still" and steady and 0.9 <= aspect / ref.aspect <= 1.1:
            tau = 20.0
        else:
            return
        a = 1 - math.exp(-max(t - ref.t, 0.0) / tau)
        ref.aspect += a * (aspect - ref.aspect)
        ref.height += a * (height - ref.height)
        ref.top += a * (box[1] - ref.top)
        ref.bottom += a * (box[3] - ref.bottom)
        ref.t = t


# --- hysteresis and the per-track monitor ------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PostureChange:
    """A committed posture: what the ``sit`` / ``stand`` / ``lie`` event says."""

    track_id: int
    posture: str
    confidence: float
    source: str
    previous: str | None
    previous_seconds: float | None   # how long the previous posture lasted (until this one began)
    started: float                   # t at which this posture was first read
    committed: float                 # t at which it had held long enough


class PostureHysteresis:
    def __init__(self, min_seconds: float) -> None:
        self.min_seconds = min_seconds
        self.current: str | None = None
        self.current_since: float | None = None
        self.current_source: str | None = None
        self.current_confidence: float | None = None
        self.candidate: str | None = None
        self.candidate_since = 0.0
        self._confidences: list[float] = []
        self._sources: Counter[str] = Counter()

    def update(self, t: float, reading: Reading, track_id: int = 0) -> PostureChange | None:
        if reading.posture not in POSTURES:
            return None
        if reading.posture == self.current:
            self.candidate = None
            return None
        if reading.posture != self.candidate:
            self.candidate, self.candidate_since = reading.posture, t
            self._confidences, self._sources = [], Counter()
        self._confidences.append(reading.confidence)
        self._sources[reading.source] += 1
        if t - self.candidate_since < self.min_seconds:
            return None
        change = PostureChange(
            track_id=track_id, posture=reading.posture,
            confidence=round(sum(self._confidences) / len(self._confidences), 3),
            source=self._sources.most_common(1)[0][0],
            previous=self.current,
            previous_seconds=(round(self.candidate_since - self.current_since, 2)
                              if self.current_since is not None else None),
            started=self.candidate_since, committed=t)
        self.current, self.current_since = reading.posture, self.candidate_since
        self.current_source, self.current_confidence = change.source, change.confidence
        self.candidate = None
        return change


@dataclasses.dataclass
class TrackPosture:
    box: BoxPosture
    hysteresis: PostureHysteresis
    last_reading: Reading | None = None


class PostureMonitor:
    """Posture for every seen dog track: keypoints when given, box otherwise, hysteresis on top."""

    def __init__(self, min_seconds: float = 2.0, keypoint_threshold: float = 0.3) -> None:
        self.min_seconds = min_seconds
        self.keypoint_threshold = keypoint_threshold
        self.tracks: dict[int, TrackPosture] = {}

    def read(self, t: float, track_id: int, box: Box, keypoints: Keypoints | None = None) -> Reading:
        """One frame's reading for one track (also teaches the track's standing reference)."""
        state = self.tracks.get(track_id)
        if state is None:
            state = self.tracks[track_id] = TrackPosture(BoxPosture(), PostureHysteresis(self.min_seconds))
        box_reading = state.box.observe(t, box)
        reading = box_reading
        if keypoints is not None:
            from_keypoints = classify_keypoints(keypoints, self.keypoint_threshold)
            if from_keypoints is not None and from_keypoints.posture != UNKNOWN:
                reading = from_keypoints
        if reading.posture == STAND:
            evidence = ("keypoints" if reading.source == "keypoints"
                        else "moving" if box_reading.detail == "moving" else "still")
            state.box.learn_standing(t, box, evidence)
        state.last_reading = reading
        return reading

    def update(self, t: float, track_id: int, box: Box, keypoints: Keypoints | None = None) -> PostureChange | None:
        reading = self.read(t, track_id, box, keypoints)
        return self.tracks[track_id].hysteresis.update(t, reading, track_id)

    def forget(self, alive: Sequence[int]) -> list[int]:
        """Drop tracks that ended; returns their ids."""
        gone = [tid for tid in self.tracks if tid not in set(alive)]
        for tid in gone:
            del self.tracks[tid]
        return gone

    def current(self, track_id: int) -> dict[str, object] | None:
        state = self.tracks.get(track_id)
        if state is None or state.hysteresis.current is None:
            return None
        h = state.hysteresis
        return {"track_id": track_id, "posture": h.current, "source": h.current_source,
                "confidence": h.current_confidence, "since": h.current_since}
