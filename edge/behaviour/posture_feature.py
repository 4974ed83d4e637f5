"""The pose and posture stage: keypoints on confirmed dogs, ``sit`` / ``stand`` / ``lie`` events, ``pose`` overlays.

Runs on the inference thread after tracking. For every confirmed dog track matched in this frame it
runs the pose model (when one is installed: see :mod:`edge.vision.pose`) at most ``DOGMON_POSE_FPS``
times a second per track, then reads the posture (keypoints when fresh, the box otherwise) and passes
it through the hysteresis of :mod:`edge.behaviour.posture`. Each box comes with the share of it where
the motion stage saw pixels change (a dog active on its feet), and tracks not yet confirmed already
build their box history, so a dog walking in has a posture soon after it is confirmed.
Committed postures become events; the
current posture of the main dog (the longest-tracked one) goes into the device state (``posture``,
``posture_since``, ``posture_source``), which the retained MQTT ``state`` topic and the WebSocket
``connection`` message carry. The state is handed to the loop thread, never set from here.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from edge.behaviour.posture import LIE, POSTURES, SIT, STAND, UNKNOWN, PostureChange, PostureMonitor
from edge.config import Config
from edge.core.feature import Feature, FrameContext, StartupError
from edge.protocol import messages
from edge.protocol.messages import EventType, Message, OverlayType
from edge.util import clock
from edge.vision.motion import MotionResult
from edge.vision.pose import Pose, PoseRunner, keypoint_list, load_pose_runner, skeleton_list
from edge.vision.tracking import Track

if TYPE_CHECKING:
    from edge.core.feature import Host

log = logging.getLogger(__name__)

EVENT_TYPES = {SIT: EventType.SIT, STAND: EventType.STAND, LIE: EventType.LIE}
TRACK_GONE_SECONDS = 2.5   # a little over the tracker's coasting time: after this an unseen track is over
FIRST_POSTURE_SECONDS = 0.5  # a track's first posture: consistent evidence for this long (nothing to flicker against)


def motion_share(motion: object, box: tuple[float, float, float, float]) -> float | None:
    """Share of ``box`` covered by the motion stage's boxes (capped at 1); None when motion is unknown."""
    if not isinstance(motion, MotionResult) or motion.relearned:
        return None
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    covered = sum(max(0.0, min(box[2], m[2]) - max(box[0], m[0])) * max(0.0, min(box[3], m[3]) - max(box[1], m[1]))
                  for m in motion.boxes)
    return min(1.0, covered / area)


def track_box(track: Track) -> dict[str, Any]:
    x1, y1, x2, y2 = track.box
    return messages.box(x1, y1, x2, y2, "dog", track.score, track.track_id)


class PostureFeature(Feature):
    name = "posture"
    posture_options = [SIT, STAND, LIE, UNKNOWN]   # what the Home Assistant posture sensor offers

    def __init__(self, min_seconds: float = 2.0, pose_fps: float = 5.0, runner: PoseRunner | None = None) -> None:
        self.runner = runner
        self.pose_interval = 1.0 / pose_fps if pose_fps > 0 else math.inf
        # keypoints older than this are stale: the box decides until the next pose run
        self.pose_max_age = max(1.0, 2 * self.pose_interval) if pose_fps > 0 else 0.0
        threshold = runner.spec.keypoint_threshold if runner is not None else 0.3
        self.monitor = PostureMonitor(min_seconds, keypoint_threshold=threshold, first_seconds=FIRST_POSTURE_SECONDS)
        self.host: Host | None = None
        self.last_run: dict[int, float] = {}
        self.last_pose: dict[int, tuple[float, Pose]] = {}
        self.last_seen: dict[int, float] = {}
        self.first_seen: dict[int, float] = {}
        self.pose_runs = 0
        self.pose_failures = 0
        self.pose_seconds = 0.0
        self.events = 0
        self._state: tuple[Any, ...] | None = None
        self._view: list[dict[str, Any]] = []   # replaced whole, so the loop thread can read it any time
        self._since_wall: dict[int, tuple[float, float]] = {}   # track → (monotonic start, wall start), fixed once

    def attach(self, host: Host) -> None:
        self.host = host
        # the keys exist from the start (null: no dog), so clients and Home Assistant see them before any dog
        host.update_state(posture=None, posture_since=None, posture_source=None)
        self._state = (None, None, None)

    # --- inference thread ---
    def process(self, ctx: FrameContext) -> list[Message]:
        out: list[Message] = []
        alive = [t.track_id for t in ctx.tracks]
        self._forget(self.monitor.forget(alive))
        ran = False
        for track in ctx.tracks:
            if not track.confirmed and track.last_seen == ctx.seen_time:
                self.monitor.read(ctx.now, track.track_id, track.box, motion=motion_share(ctx.frame.motion, track.box))
        for track in ctx.seen_tracks():
            tid = track.track_id
            self.last_seen[tid] = ctx.now
            self.first_seen.setdefault(tid, track.first_seen)
            ran |= self._run_pose(ctx, track)
            pose = self._fresh_pose(tid, ctx.now)
            track.pose = pose  # type: ignore[attr-defined]  # zones read paws from it
            change = self.monitor.update(ctx.now, tid, track.box, pose.named() if pose is not None else None,
                                         motion_share(ctx.frame.motion, track.box))
            if change is not None:
                out.append(self._event(change, track, ctx))
        if ran:
            out.append(self._overlay(ctx))
        self._refresh(ctx.now, ctx.wall)
        return out

    def idle(self, now: float) -> list[Message]:
        gone = [tid for tid, seen in self.last_seen.items() if now - seen > TRACK_GONE_SECONDS]
        if gone:
            self.monitor.forget([tid for tid in self.monitor.tracks if tid not in gone])
            self._forget(gone)
            self._refresh(now, clock.now())
        return []

    def _forget(self, gone: list[int]) -> None:
        for tid in gone:
            for table in (self.last_run, self.last_pose, self.last_seen, self.first_seen):
                table.pop(tid, None)
            self._since_wall.pop(tid, None)

    def _run_pose(self, ctx: FrameContext, track: Track) -> bool:
        # (a microsecond of slack: frame times like 6/30 s must count as the 0.2 s they are)
        if self.runner is None or ctx.now - self.last_run.get(track.track_id, -math.inf) < self.pose_interval - 1e-6:
            return False
        self.last_run[track.track_id] = ctx.now
        started = time.monotonic()
        try:
            pose = self.runner.estimate(ctx.frame.image, track.box)
        except Exception:  # a failing pose model must not stop posture: the box takes over
            self.pose_failures += 1
            if self.pose_failures == 1 or self.pose_failures % 100 == 0:
                log.exception("pose model %s failed (%d times so far)", self.runner.spec.name, self.pose_failures)
            return False
        self.pose_seconds += time.monotonic() - started
        self.pose_runs += 1
        if pose is None:
            self.last_pose.pop(track.track_id, None)
            return False
        self.last_pose[track.track_id] = (ctx.now, pose)
        return True

    def _fresh_pose(self, track_id: int, now: float) -> Pose | None:
        found = self.last_pose.get(track_id)
        if found is None or now - found[0] > self.pose_max_age:
            return None
        return found[1]

    def _event(self, change: PostureChange, track: Track, ctx: FrameContext) -> Message:
        self.events += 1
        started_wall = ctx.wall - (ctx.now - change.started)
        return messages.event(EVENT_TYPES[change.posture], {
            "track_id": change.track_id,
            "posture": change.posture,
            "confidence": change.confidence,
            "source": change.source,
            "previous": change.previous,
            "previous_seconds": change.previous_seconds,
            "since": round(started_wall, 3),
            "held_seconds": round(change.committed - change.started, 2),
            "box": track_box(track),
        }, ts=ctx.wall)

    def _overlay(self, ctx: FrameContext) -> Message:
        assert self.runner is not None
        spec = self.runner.spec
        poses = []
        for track in ctx.seen_tracks():
            pose = self._fresh_pose(track.track_id, ctx.now)
            if pose is not None:
                poses.append({"track_id": track.track_id, "score": round(pose.score, 3),
                              "keypoints": keypoint_list(pose), "box": track_box(track)})
        w, h = ctx.size
        return messages.overlay(OverlayType.POSE, {
            "frame": {"w": w, "h": h}, "model": spec.name, "keypoint_names": list(spec.keypoints),
            "skeleton": skeleton_list(spec.skeleton), "keypoint_threshold": spec.keypoint_threshold,
            "poses": poses,
        })

    def _refresh(self, now: float, wall: float) -> None:
        """Rebuild the per-track view and hand the main dog's posture to the device state when it changed."""
        view = []
        confirmed = [tid for tid in self.monitor.tracks if tid in self.first_seen]   # not tracks still forming
        for tid in sorted(confirmed, key=lambda t: self.first_seen[t]):
            current = self.monitor.current(tid)
            if current is None:
                view.append({"track_id": tid, "posture": UNKNOWN, "since": None, "source": None, "confidence": None})
                continue
            since = current["since"]
            if isinstance(since, float):
                # converted once: recomputing each frame would let clock jitter re-publish an unchanged state
                known = self._since_wall.get(tid)
                if known is None or known[0] != since:
                    known = self._since_wall[tid] = (since, round(wall - (now - since), 3))
                since = known[1]
            view.append({**current, "since": since})
        self._view = view
        main = view[0] if view else None
        state = (main["posture"], main["since"], main["source"]) if main else (None, None, None)
        if state != self._state:
            self._state = state
            if self.host is not None:
                self.host.post_state(posture=state[0], posture_since=state[1], posture_source=state[2])

    # --- loop thread ---
    def connection_info(self) -> dict[str, Any]:
        spec = self.runner.spec if self.runner is not None else None
        return {
            "pose_model": None if spec is None else {
                "name": spec.name, "family": spec.family, "keypoint_names": list(spec.keypoints),
                "skeleton": skeleton_list(spec.skeleton), "licence": spec.licence},
            "postures": list(self._view),
        }

    def telemetry(self) -> dict[str, Any]:
        return {
            "pose_model": self.runner.spec.name if self.runner is not None else None,
            "pose_runs": self.pose_runs,
            "pose_failures": self.pose_failures,
            "pose_ms_avg": round(1000 * self.pose_seconds / self.pose_runs, 1) if self.pose_runs else None,
            "tracks": len(self._view),
            "events": self.events,
        }


def posture_feature(config: Config) -> PostureFeature:
    """Build the stage from configuration; a pose model the user named but that cannot load stops startup."""
    from edge.core.models import FetchError

    runner = None
    if config.pose_fps > 0:
        try:
            runner = load_pose_runner(config.pose_model, config.model_dir, config.inference_threads,
                                      config.graph_optimization, config.execution_providers, mirror=config.mirror)
        except (ValueError, FetchError) as exc:
            raise StartupError(str(exc)) from exc
    if runner is None:
        log.info("pose stage off (no pose model installed): posture from the dog's box")
    else:
        log.info("pose model %s (%s, %d keypoints) at up to %.1f fps per dog", runner.spec.name,
                 runner.spec.family, len(runner.spec.keypoints), config.pose_fps)
    return PostureFeature(config.posture_min_seconds, config.pose_fps, runner)


__all__ = ["POSTURES", "PostureFeature", "posture_feature"]
