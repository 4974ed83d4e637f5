"""Motion-gating scenarios for ``python -m edge.tools.bench``, all measured in one run.

(a) CPU of a static 30 fps scene vs a busy one (a real device in this process, realtime file source);
(b) frames from the dog's first frame to ``dog_detected``, gated vs gating off;
(c) detection recall on moving-dog clips, gated vs off, and on a small distant dog with and without regions;
(d) a dog lying still for 60 s: ``dog_detected`` / ``dog_left`` counts;
(e) a sudden global brightness jump: detector runs it costs.
(b)-(e) feed OpenCV-decoded videos through the real :class:`~edge.vision.pipeline.FramePipeline` and model on
the video's own clock (:func:`edge.tools.scenes.play`); the videos are composed from the shared media.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import psutil

from edge.config import Config
from edge.core.telemetry import StageTimers
from edge.device import build_gate
from edge.protocol.messages import EventType, Message, OverlayType
from edge.tools import scenes
from edge.vision.detector import Detector
from edge.vision.pipeline import FramePipeline
from edge.vision.tracking import DogTracker

EMPTY_SCENE = "neg_bridge_wikimedia.jpg"
LYING_DOG = "dog_lying_person_horse_darknet.jpg"
CLIP = "dog_walking_vidtome.mp4"


@dataclasses.dataclass
class Run:
    """What one scene produced through the pipeline."""

    frames: int = 0
    detected: int = 0
    dog_frames: int = 0                      # frames whose own detector run reported a dog box
    events: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    runs_at: list[int] = dataclasses.field(default_factory=list)

    def first(self, event_type: str) -> int | None:
        return next((i for i, kind in self.events if kind == event_type), None)

    def count(self, event_type: str) -> int:
        return sum(kind == event_type for _, kind in self.events)


def gated_pipeline(config: Config, detector: Detector, gating: bool = True, regions: bool = True) -> FramePipeline:
    config = dataclasses.replace(config, detect_idle_seconds=config.detect_idle_seconds if gating else 0.0)
    gate = build_gate(config, detector)
    gate.regions = regions
    return FramePipeline(detector, DogTracker(absence_seconds=config.absence_seconds), StageTimers(), gate=gate)


def run_scene(video: Path, pipeline: FramePipeline) -> Run:
    run = Run()
    before = [0]

    def on_frame(index: int, out: list[Message]) -> None:
        for message in out:
            if message.event_type in (EventType.DOG_DETECTED, EventType.DOG_LEFT):
                run.events.append((index, str(message.event_type)))
            if message.overlay_type is OverlayType.DETECTION and any(
                    b["label"] == "dog" for b in message.data["boxes"]):
                run.dog_frames += 1
        if pipeline.frames_detected > before[0]:
            run.runs_at.append(index)
            before[0] = pipeline.frames_detected

    run.frames, _ = scenes.play(video, pipeline.process, on_frame=on_frame)
    run.detected = pipeline.frames_detected
    return run


def compose(media: Path, folder: Path) -> dict[str, Path]:
    """The scenes, written once per bench run (about 15 s of encoding)."""
    clip = scenes.read_clip(media / CLIP)
    empty = scenes.read_image(media / EMPTY_SCENE)
    lying = scenes.read_image(media / LYING_DOG)
    return {
        "static": scenes.write_video(folder / "static.mp4", scenes.still_frames(empty, 10, 30, (512, 512)), 30),
        "busy": scenes.write_video(folder / "busy.mp4", scenes.walking_frames(clip, 10, 30), 30),
        "arrival": scenes.write_video(folder / "arrival.mp4", scenes.pasted_frames(
            clip, empty, 6, 30, (1280, 720), 400, (700, 250), appear_at=2.0), 30),
        "small": scenes.write_video(folder / "small.mp4", scenes.pasted_frames(
            clip, empty, 9.6, 10, (1920, 1080), 96, (1400, 700), appear_at=0.0), 10),
        "lying": scenes.write_video(folder / "lying.mp4", scenes.still_frames(lying, 60, 10, (640, 480)), 10),
        "jump": scenes.write_video(folder / "jump.mp4", scenes.brightness_jump_frames(
            empty, 20, 10, 30, (640, 480)), 30),
    }


async def device_cpu(config: Config, video: Path, seconds: float, warmup: float = 2.0) -> dict[str, Any]:
    """Process CPU (cores) of a whole device in this process playing ``video`` in real time.

    No snapshots or clips: only the busy scene would trigger them, which would flatter the ratio."""
    from edge.tools.common import start_in_process

    config = dataclasses.replace(config, source=str(video), source_realtime=True, source_loop=True,
                                 clip_events=(), snapshot_events=())
    device, task = await start_in_process(config)
    try:
        while device.inference.frames < 3:
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup)
        process = psutil.Process()
        pipeline = device.pipeline
        cpu0, wall0 = process.cpu_times(), time.perf_counter()
        frames0, detected0 = pipeline.frames, pipeline.frames_detected
        await asyncio.sleep(seconds)
        cpu1, wall = process.cpu_times(), time.perf_counter() - wall0
        frames, detected = pipeline.frames - frames0, pipeline.frames_detected - detected0
    finally:
        device.stopping.set()
        await task
    cores = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
    return {"cores": cores, "fps": frames / wall, "duty": detected / max(1, frames)}


def measure(config: Config, detector: Detector, media: Path, folder: Path, cpu_seconds: float = 8.0) -> list[str]:
    """Run every scenario; returns the lines to print."""
    videos = compose(media, folder)
    lines: list[str] = []
    # (a) static vs busy CPU (gating as configured, every feature on, no clients)
    static = asyncio.run(device_cpu(config, videos["static"], cpu_seconds))
    busy = asyncio.run(device_cpu(config, videos["busy"], cpu_seconds))
    off = asyncio.run(device_cpu(dataclasses.replace(config, detect_idle_seconds=0.0), videos["static"], cpu_seconds))
    lines.append(f"(a) static/busy CPU : {static['cores'] / busy['cores']:7.3f}  (static {static['cores']:.3f} cores "
                 f"at {static['fps']:.1f} fps, duty {static['duty']:.3f}; busy {busy['cores']:.3f} cores at "
                 f"{busy['fps']:.1f} fps, duty {busy['duty']:.3f}; static with gating off {off['cores']:.3f} cores "
                 f"= {off['cores'] / busy['cores']:.3f} of busy; goal <= 0.25)")
    # (b) latency to dog_detected in frames
    appear = round(2.0 * 30)
    gated = run_scene(videos["arrival"], gated_pipeline(config, detector))
    ungated = run_scene(videos["arrival"], gated_pipeline(config, detector, gating=False))
    no_regions = run_scene(videos["arrival"], gated_pipeline(config, detector, regions=False))

    def after(run: Run) -> int | None:
        first = run.first("dog_detected")
        return None if first is None else first - appear

    lines.append(f"(b) first frame->dog_detected: gated {after(gated)} frames (gated without regions "
                 f"{after(no_regions)}), gating off {after(ungated)} frames (dog 400 px in 1280x720, 30 fps; "
                 "goal: at most 1 frame more than off)")
    # (c) recall on moving-dog clips
    recall = []
    clip = media / CLIP
    for name, video in (("demo clip 10 fps", clip), ("busy 30 fps", videos["busy"])):
        a = run_scene(video, gated_pipeline(config, detector))
        b = run_scene(video, gated_pipeline(config, detector, gating=False))
        recall.append(f"{name} {a.dog_frames}/{a.frames} gated vs {b.dog_frames}/{b.frames} off")
    lines.append("(c) recall (frames with the dog reported): " + "; ".join(recall))
    with_regions = run_scene(videos["small"], gated_pipeline(config, detector))
    without = run_scene(videos["small"], gated_pipeline(config, detector, regions=False))
    full = run_scene(videos["small"], gated_pipeline(config, detector, gating=False))
    lines.append(f"    small distant dog (96 px in 1920x1080, {with_regions.frames} frames): regions "
                 f"{with_regions.dog_frames}, gated without regions {without.dog_frames}, gating off "
                 f"{full.dog_frames}; regions {with_regions.first('dog_detected')} / no regions "
                 f"{without.first('dog_detected')} first dog_detected frame")
    # (d) a dog lying still for 60 s
    lying = run_scene(videos["lying"], gated_pipeline(config, detector))
    lines.append(f"(d) lying still 60 s: dog_detected {lying.count('dog_detected')}, dog_left "
                 f"{lying.count('dog_left')} (goal 1 and 0); detector on {lying.detected}/{lying.frames} frames "
                 "(a live track keeps it running)")
    # (e) brightness jump at 10 s
    jump = run_scene(videos["jump"], gated_pipeline(config, detector))
    at = 10 * 30
    runs_after = [i for i in jump.runs_at if at <= i < at + 90]
    runs_before = [i for i in jump.runs_at if at - 90 <= i < at]
    lines.append(f"(e) brightness jump: {len(runs_after)} detector runs in the 3 s after it (frames "
                 f"{', '.join(str(i - at) for i in runs_after)} after), {len(runs_before)} in the 3 s before; "
                 f"{jump.detected}/{jump.frames} frames detected in 20 s; gating off: every frame")
    return lines
