"""``python -m edge.tools.bench --while-reel``: does building the day's reel disturb the live pipeline?

Generates a day first (not timed; as ``edge.tools.reelbench``: ``--clips`` clips of ``--clip-seconds`` s at
640×480 by the device's clip encoder, one arrival in each, and ``--hours`` of time-lapse frames every
``--interval`` s). Then each of ``--rounds`` rounds measures two back-to-back pairs, in alternating order:

- plain: the bare model loop, then the full pipeline (the real Device on ``--video``, as ``edge.tools.bench``);
- while reel: the bare loop, then the same pipeline while the day's highlight reel and time-lapse are built
  again and again by the device's own code path, :func:`edge.media.daily.build_day` on a
  :class:`~edge.media.daily.LowPriorityThread` (the device's ``media-daily`` thread: nice 10 and ``SCHED_IDLE``),
  from before the device starts until its measurement ends. The build in progress then is waited for, so no
  build overlaps a plain pair or a bare loop.

Prints: per round both ratios (pipeline fps / bare fps of the pair) and their difference; the two medians,
their difference and the median of the per-round differences, with the plain ratios' spread as the noise and
in how many rounds the ratio was lower while the reel was built; the inference thread's wait for a core per
frame in each; the builds completed, the build thread's niceness (read back from the kernel) and the CPU it
got while the pipeline ran; the reel's and the time-lapse's CPU-seconds per build (median) for the generated
day and extrapolated to 8 h of footage; the process RSS peak (total and anonymous, sampled every 50 ms) during
the plain pairs and while the reel was built, and the RSS before and at the peak of one build run alone before
the rounds (the reel maker's own memory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from edge.config import Config, load_config
from edge.device import build_detector, ensure_models
from edge.media.daily import LowPriorityThread, build_day
from edge.media.encoder import EncoderChoice, choose_encoders
from edge.media.reelmaker import keyframe_times
from edge.media.worker import RECORD_FPS
from edge.tools.common import (
    Day,
    Run,
    add_day_arguments,
    bare_loop,
    eight_hours,
    make_day_from,
    pipeline_config,
    pipeline_run,
    read_frames,
    rss_split,
    thread_clock,
)
from edge.vision.detector import Detector
from edge.vision.runtime import default_threads


class ReelLoop:
    """The device's daily build of one day, again and again on a ``media-daily`` thread while switched on."""

    def __init__(self, day: Day, folder: Path, encoder: EncoderChoice, config: Config) -> None:
        self.day, self.folder, self.encoder, self.config = day, folder, encoder, config
        self.builder = LowPriorityThread("media-daily", 2)
        self.on, self.idle = threading.Event(), threading.Event()
        self.idle.set()
        self.failed: BaseException | None = None
        self.builds = 0
        self.reel_cpu: list[float] = []
        self.lapse_cpu: list[float] = []
        self.nice: int | None = None

    def start(self) -> None:
        self.builder.start()

    def _job(self) -> None:
        try:
            with contextlib.suppress(OSError):
                self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            reel, lapse = build_day(self.day.day, self.day.moments, self.day.clips, self.folder, self.encoder,
                                    self.config, RECORD_FPS, 0)
            if reel is None or lapse is None:
                raise RuntimeError("the day's reel or time-lapse was not made")
            self.reel_cpu.append(reel.result["cpu_seconds"])
            self.lapse_cpu.append(lapse.result["cpu_seconds"])
            for built in (reel, lapse):  # made and saved; removed so that a long run does not fill the disk
                (self.folder / built.file).unlink()
            self.builds += 1
        except Exception as exc:
            self.failed = exc
        if self.on.is_set() and self.failed is None and self.builder.offer(self._job):
            return  # the next build, queued by the thread itself: no gap for a measurement to slip into
        self.idle.set()

    def begin(self) -> None:
        self.idle.clear()
        self.on.set()
        if not self.builder.submit(self._job):
            raise SystemExit("the media-daily thread did not take the build")

    def end(self) -> None:
        """Stop after the build in progress, and wait for it."""
        self.on.clear()
        self.idle.wait()
        if self.failed is not None:
            raise SystemExit(f"the day's build failed: {self.failed!r}")


class RssPeaks(threading.Thread):
    """This process's peak RSS and anonymous RSS (MiB) per phase, sampled every ``period`` s."""

    def __init__(self, period: float = 0.05) -> None:
        super().__init__(name="rss-peaks", daemon=True)
        self.period, self.phase = period, "setup"
        self.peaks: dict[str, tuple[float, float]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        process = psutil.Process()
        while not self.done.wait(self.period):
            anon, file_backed = rss_split(process)
            total = anon + file_backed
            old = self.peaks.get(self.phase, (0.0, 0.0))
            self.peaks[self.phase] = (max(old[0], total), max(old[1], anon))


def plain_pair(detector: Detector, frames: list, config: Config, count: int) -> tuple[Run, Run]:
    return bare_loop(detector, frames, count), asyncio.run(pipeline_run(config, count, 0))[0]


def reel_pair(detector: Detector, frames: list, config: Config, count: int,
              load: ReelLoop) -> tuple[Run, Run, tuple[float, float | None, float]]:
    """Bare loop with no build, then the pipeline while the day is built; the build thread's (CPU-s, wait-s,
    wall-s) from the build's start until the measurement ended."""
    bare = bare_loop(detector, frames, count)
    load.begin()
    while load.builder.native_id is None:
        time.sleep(0.01)
    before, started = thread_clock(load.builder.native_id), time.perf_counter()
    pipe = asyncio.run(pipeline_run(config, count, 0))[0]
    after, wall = thread_clock(load.builder.native_id), time.perf_counter() - started
    load.end()
    waited = None if after[1] is None or before[1] is None else after[1] - before[1]
    return bare, pipe, (after[0] - before[0], waited, wall)


def build_alone(load: ReelLoop, rss: RssPeaks) -> tuple[float, float]:
    """One build with nothing else running: this process's RSS (MiB) just before it and its peak during it."""
    time.sleep(0.2)
    before = psutil.Process().memory_info().rss / 2**20
    rss.phase = "alone"
    load.begin()
    load.on.clear()  # this build only
    load.end()
    rss.phase = "between"
    return before, rss.peaks.get("alone", (before, 0.0))[0]


def median_ready(runs: list[Run]) -> str:
    ready = [r.ready_ms for r in runs if r.ready_ms is not None]
    return f"{statistics.median(ready):.2f}" if ready else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.bench --while-reel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", help="video file for the pipeline (default: the demo clip)")
    parser.add_argument("--frames", type=int, default=150, help="frames per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each a plain and a while-reel pair")
    add_day_arguments(parser)
    args = parser.parse_args(argv)
    base = load_config()
    ensure_models(base)
    video = Path(args.video) if args.video else base.model_dir / "dog_walking_vidtome.mp4"
    encoder = choose_encoders("auto")[0][0]
    rss = RssPeaks()
    rss.start()
    with tempfile.TemporaryDirectory(prefix="reelload-") as tmp:
        folder = Path(tmp) / "media"
        folder.mkdir()
        day = make_day_from(args, folder, base.model_dir, encoder)
        scan0 = time.thread_time()
        for clip in day.clips:
            keyframe_times(Path(clip.file))
        scan = (time.thread_time() - scan0) / len(day.clips)
        config = pipeline_config(base, video, Path(tmp) / "data")
        frames = read_frames(video)
        detector = build_detector(config)
        load = ReelLoop(day, folder, encoder, base)
        load.start()
        alone = build_alone(load, rss)
        alone_builds = load.builds
        plain: list[tuple[Run, Run]] = []
        loaded: list[tuple[Run, Run]] = []
        builder: list[tuple[float, float | None, float]] = []
        print(f"video: {video.name} ({len(frames)} frames, {frames[0].shape[1]}x{frames[0].shape[0]}), "
              f"threads={config.inference_threads or default_threads()}, cores={os.cpu_count()}, "
              f"rounds={args.rounds}, frames={args.frames}; encoder {encoder.name}; day: {day.describe()}",
              flush=True)
        for i in range(args.rounds):
            for which in (("plain", "reel") if i % 2 == 0 else ("reel", "plain")):
                rss.phase = which
                if which == "plain":
                    plain.append(plain_pair(detector, frames, config, args.frames))
                else:
                    bare, pipe, used = reel_pair(detector, frames, config, args.frames, load)
                    loaded.append((bare, pipe))
                    builder.append(used)
            rss.phase = "between"
            (b0, p0), (b1, p1), (cpu, _, wall) = plain[-1], loaded[-1], builder[-1]
            r0, r1 = p0.fps / b0.fps, p1.fps / b1.fps
            print(f"round {i + 1}: plain {r0:.3f} (bare {b0.fps:.1f}, pipeline {p0.fps:.1f} fps) | while reel "
                  f"{r1:.3f} (bare {b1.fps:.1f}, pipeline {p1.fps:.1f} fps; build thread {cpu:.1f} CPU-s in "
                  f"{wall:.1f} s) | difference {r1 - r0:+.3f} | builds so far {load.builds}", flush=True)
        load.builder.stop()
    rss.done.set()
    rss.join()
    ratios0 = [p.fps / b.fps for b, p in plain]
    ratios1 = [p.fps / b.fps for b, p in loaded]
    diffs = [r1 - r0 for r0, r1 in zip(ratios0, ratios1, strict=True)]
    m0, m1 = statistics.median(ratios0), statistics.median(ratios1)
    print(f"ratio plain          : {m0:7.3f}  (median; rounds {', '.join(f'{x:.3f}' for x in ratios0)}; "
          f"spread {min(ratios0):.3f}-{max(ratios0):.3f})")
    print(f"ratio while reel     : {m1:7.3f}  (median; rounds {', '.join(f'{x:.3f}' for x in ratios1)}; "
          f"spread {min(ratios1):.3f}-{max(ratios1):.3f})")
    print(f"difference           : {m1 - m0:+7.3f}  (medians; median of the rounds' differences "
          f"{statistics.median(diffs):+.3f}; plain spread, the noise: {max(ratios0) - min(ratios0):.3f}; lower "
          f"while the reel was built in {sum(d < 0 for d in diffs)} of {len(diffs)} rounds)")
    print(f"inference thread     : waiting for a core {median_ready([p for _, p in plain])} ms per frame plain, "
          f"{median_ready([p for _, p in loaded])} ms while the reel was built (median)")
    cpu, wall = sum(u[0] for u in builder), sum(u[2] for u in builder)
    waits = [u[1] for u in builder]
    waited = "" if None in waits else f", waited for a core {sum(w for w in waits if w is not None):.1f} s"
    print(f"reel builds          : {load.builds - alone_builds} completed while the pipeline was measured, "
          f"{alone_builds} alone before, on the media-daily thread (nice {load.nice}); while "
          f"the pipeline ran it got {cpu:.1f} CPU-s in {wall:.1f} s ({100 * cpu / max(wall, 1e-9):.0f} % of a "
          f"core{waited})")
    reel_cpu, lapse_cpu = statistics.median(load.reel_cpu), statistics.median(load.lapse_cpu)
    print(f"CPU-seconds per day  : reel {reel_cpu:.3f} + time-lapse {lapse_cpu:.3f} = {reel_cpu + lapse_cpu:.2f} "
          f"CPU-s per build (median of {load.builds}; this day: {day.describe()}); header scan "
          f"{1000 * scan:.2f} ms/clip")
    print(f"per 8 h of footage   : {eight_hours(day, reel_cpu, lapse_cpu, scan)}")
    (t0, a0), (t1, a1) = rss.peaks.get("plain", (0.0, 0.0)), rss.peaks.get("reel", (0.0, 0.0))
    print(f"process RSS peak     : {t0:.1f} MiB ({a0:.1f} anonymous) in the plain pairs, {t1:.1f} MiB ({a1:.1f} "
          f"anonymous) while the reel was built: {t1 - t0:+.1f} MiB ({a1 - a0:+.1f} anonymous); sampled every "
          f"{1000 * rss.period:.0f} ms, this bench's process (a bare session, a device per pair)")
    print(f"RSS, one build alone : {alone[0]:.1f} MiB before, peak {alone[1]:.1f} MiB during it "
          f"({alone[1] - alone[0]:+.1f} MiB: the reel maker's own memory, streamed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
