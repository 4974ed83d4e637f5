"""Dog posture (sit / stand / lie / unknown) from keypoints or from the box, with temporal hysteresis.

Pure logic: no I/O, no clock of its own (every call takes ``t``, monotonic seconds). Three parts:

**Keypoints** (:func:`classify_keypoints`, in :mod:`edge.behaviour.posture_keypoints`): shoulders,
hips, paws and head measured against the dog's size.

**Box** (:class:`BoxPosture`). Without keypoints, evidence is the box over time. A dog moving by
more than 0.6 of its height per second, or whose box grows or shrinks by more than 25 % a second
while keeping its shape (walking towards or away from the camera), is standing: dogs do not walk
sitting or lying. While it stands, its box shape and floor line become the track's *standing
reference*. Against that reference, the box aspect (height/width) falling below 0.82 × the standing
aspect, or the top dropping by 30 % of the standing height while the floor line stays within 15 %,
is lying; the aspect rising above 1.45 × with the top roughly kept is sitting. With no reference yet
(a single photo, a dog first seen still) the absolute aspect decides: below 0.73 lying, above 1.31
sitting, else standing. These boundaries are the geometric means between typical side-view box
aspects (stand ≈ 0.9, sphinx lie ≈ 0.6, sit ≈ 1.9).

A box alone cannot tell a dog turning towards the camera from one sitting down; time can. Sitting and
lying are still postures: the shape rules count only once the box has *settled*. While the box keeps
changing (its aspect varying by over 25 %, or its floor point moving by over a quarter of its size,
within the last second) *and* the camera's motion stage sees pixels change over the dog, the dog is
active, and an active dog is on its feet (``stand``; the protocol has no separate walking state). Both
are required: a box that jumps with no pixel motion under it is the detector's jitter, not a dog
moving (this holds for the speed rule above too, whenever the motion stage's view is known). A
posture change itself takes about a second, so its own movement reads ``stand`` only briefly, never
long enough to commit.

**Hysteresis** (:class:`PostureHysteresis`): a new posture is committed once it was first read at
least ``min_seconds`` ago and makes at least two thirds of the readings over the last ``min_seconds``
(the current posture's readings count against it, and it is dropped when it falls to half or less of the
readings since it began), so a one-frame flip never
fires and a dog turning while it walks does not flicker. A track's first posture needs only
``first_seconds``: there is nothing to flicker against, and the page shows a posture sooner.
``unknown`` readings neither confirm nor cancel.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Sequence

from edge.behaviour.posture_keypoints import (
    LIE,
    POSTURES,
    SIT,
    STAND,
    UNKNOWN,
    Box,
    Keypoints,
    Reading,
    classify_keypoints,
)

__all__ = ["LIE", "POSTURES", "SIT", "STAND", "UNKNOWN", "Box", "Keypoints", "Reading", "classify_keypoints"]

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
ACTIVE_ASPECT = 1.25     # box aspect varying by this factor within the window: not settled
ACTIVE_SHIFT = 0.25      # floor point (bottom centre) moving by this share of the box size: not settled
ACTIVE_MOTION = 0.2      # share of the box the motion stage saw change: pixels really move over the dog


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

    def unsettled(self, t: float) -> bool:
        """The box's shape or floor point kept changing over the window (at least 0.25 s of it)."""
        recent = self._window(t)
        if len(recent) < 3 or recent[-1][0] - recent[0][0] < 0.25:
            return False
        aspects = [_aspect(b) for _, b in recent]
        if max(aspects) / min(aspects) >= ACTIVE_ASPECT:
            return True
        last = recent[-1][1]
        size = math.sqrt(max((last[2] - last[0]) * (last[3] - last[1]), 1e-6))
        floor = [((b[0] + b[2]) / 2, b[3]) for _, b in recent]
        return max(math.dist(a, b) for a in floor for b in floor) >= ACTIVE_SHIFT * size

    def observe(self, t: float, box: Box, motion: float | None = None) -> Reading:
        """One box; ``motion`` is the share of it where the motion stage saw pixels change (None: unknown)."""
        self.history.append((t, box))
        while self.history and t - self.history[0][0] > 10 * self.window:
            self.history.popleft()
        pixels_move = motion is None or motion >= ACTIVE_MOTION   # unknown: the box alone decides
        if pixels_move and (self.speed(t) >= MOVING_SPEED or self.scale_rate(t) >= MOVING_SCALE_RATE):
            return Reading(STAND, 0.7, "box", "moving")
        if motion is not None and pixels_move and self.unsettled(t):
            return Reading(STAND, 0.6, "box", "active")
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
    def __init__(self, min_seconds: float, first_seconds: float | None = None) -> None:
        self.min_seconds = min_seconds
        self.first_seconds = min_seconds if first_seconds is None else min(first_seconds, min_seconds)
        self.current: str | None = None
        self.current_since: float | None = None
        self.current_source: str | None = None
        self.current_confidence: float | None = None
        self.candidate: str | None = None
        self.candidate_since = 0.0
        self._recent: deque[tuple[float, str]] = deque()   # posture readings over the last min_seconds
        self._confidences: list[float] = []
        self._sources: Counter[str] = Counter()

    def _share(self, since: float) -> float:
        """The candidate's share of the posture readings since ``since`` (within the last min_seconds)."""
        window = [p for ht, p in self._recent if ht >= max(since, self.candidate_since) - 1e-9]
        return sum(p == self.candidate for p in window) / len(window) if window else 0.0

    def update(self, t: float, reading: Reading, track_id: int = 0) -> PostureChange | None:
        if reading.posture not in POSTURES:
            return None
        self._recent.append((t, reading.posture))
        while t - self._recent[0][0] > self.min_seconds + 1e-9:
            self._recent.popleft()
        if reading.posture != self.candidate:
            if self.candidate is not None and self._share(self.candidate_since) <= 0.5:
                self.candidate = None
            if self.candidate is None and reading.posture != self.current:
                self.candidate, self.candidate_since = reading.posture, t
                self._confidences, self._sources = [], Counter()
            if reading.posture != self.candidate:
                return None
        self._confidences.append(reading.confidence)
        self._sources[reading.source] += 1
        needed = self.min_seconds if self.current is not None else self.first_seconds
        if t - self.candidate_since < needed - 1e-9 or self._share(t - needed) < 2 / 3:
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

    def __init__(self, min_seconds: float = 2.0, keypoint_threshold: float = 0.3,
                 first_seconds: float | None = None) -> None:
        self.min_seconds = min_seconds
        self.first_seconds = first_seconds
        self.keypoint_threshold = keypoint_threshold
        self.tracks: dict[int, TrackPosture] = {}

    def read(self, t: float, track_id: int, box: Box, keypoints: Keypoints | None = None,
             motion: float | None = None) -> Reading:
        """One frame's reading for one track (also teaches the track's standing reference).

        ``motion``: the share of the box where the camera's motion stage saw pixels change (None: unknown).
        """
        state = self.tracks.get(track_id)
        if state is None:
            state = self.tracks[track_id] = TrackPosture(
                BoxPosture(), PostureHysteresis(self.min_seconds, self.first_seconds))
        box_reading = state.box.observe(t, box, motion)
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

    def update(self, t: float, track_id: int, box: Box, keypoints: Keypoints | None = None,
               motion: float | None = None) -> PostureChange | None:
        reading = self.read(t, track_id, box, keypoints, motion)
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
