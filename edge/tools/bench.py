"""``python -m edge.tools.bench``: measured ratios from one run on the shared clip (or any video).

Prints: the bare model loop (pre-processing + session + decoding on frames already in memory) vs the
full device pipeline with the file source unthrottled (capture thread, tracker, features, bus, event
log, WebSocket hub with clients attached), their ratio, per-stage p50/p95 latency, the cost of
fanning one message out per WebSocket client, and process RSS. Same session settings (inference threads)
and the same OpenCV threading in both loops; the ratio is the median of each round's back-to-back pair.

``--while-reel`` (:mod:`edge.tools.reelload`) prints instead, per round, that ratio plain and while the day's
highlight reel and time-lapse are built on the device's nice-10 ``media-daily`` thread, their medians and
difference, the build's CPU-seconds per day of footage and the process RSS peak during the build.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from edge.config import load_config
from edge.device import build_detector, ensure_models
from edge.tools.common import bare_loop, pipeline_config, pipeline_run, read_frames, rss_split
from edge.vision.runtime import default_threads


def device_rss(video: Path, folder: Path, model_dir: Path, mirror: Path | None, seconds: float = 20.0,
               audio: str = "bark_esc50_4-183992-A-0.wav") -> tuple[float, float, tuple[float, float]]:
    """Peak and settled RSS (MiB) of a real ``python -m edge run`` with every feature on and a live-view
    client attached, and its settled (anonymous, file-backed) split: the device's own memory, not this
    benchmark's."""
    import socket
    import subprocess

    from websockets.sync.client import connect as sync_connect

    from edge.transports.live import LIVE_PATH

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    media = (mirror / "media") if mirror else model_dir
    env = {**os.environ, "DOGMON_SOURCE": str(video.resolve()), "DOGMON_SOURCE_REALTIME": "1",
           "DOGMON_WS_HOST": "127.0.0.1", "DOGMON_TLS": "off", "DOGMON_MDNS": "0", "DOGMON_SETUP_PORT": "0",
           "DOGMON_WS_TOKEN": "open", "DOGMON_HIGHLIGHTS_AT": "off",
           "DOGMON_WS_PORT": str(port), "DOGMON_DATA_DIR": str(folder / "data"),
           "DOGMON_MODEL_DIR": str(model_dir.resolve()),
           "DOGMON_MQTT_URL": "", "DOGMON_AUDIO_SOURCE": str(media / "audio" / audio), "DOGMON_LOG_LEVEL": "warning"}
    if mirror:
        env["DOGMON_MIRROR"] = str(mirror)
    child = subprocess.Popen([sys.executable, "-m", "edge", "run"], cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = settled = 0.0
    try:
        process = psutil.Process(child.pid)
        deadline = time.monotonic() + 60
        viewer = None
        while viewer is None:
            try:
                viewer = sync_connect(f"ws://127.0.0.1:{port}{LIVE_PATH}", open_timeout=2, legacy=True)
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    exited = child.poll() is not None and child.stderr is not None
                    detail = child.stderr.read().decode(errors="replace")[-600:] if exited and child.stderr else ""
                    raise SystemExit(f"the device for the RSS figure did not start: {detail}") from None
                time.sleep(0.2)
        started = time.monotonic()
        live_frames = 0
        while time.monotonic() - started < seconds:
            with contextlib.suppress(TimeoutError):
                viewer.recv(timeout=0.5)
                live_frames += 1
            settled = process.memory_info().rss / 2**20
            peak = max(peak, settled)
        split = rss_split(process)
        viewer.close()
        if live_frames == 0:  # a device without camera frames would make a flattering figure
            raise SystemExit(f"the device for the RSS figure sent no live-view frame from {video}")
    finally:
        child.terminate()
        child.wait(10)
    return peak, settled, split


RSS_STEPS = """
import psutil, numpy as np
p = psutil.Process(); print(p.memory_info().rss)
import edge.device, edge.audio.feature, edge.media.feature
print(p.memory_info().rss)
from edge.config import load_config
d = edge.device.build_detector(load_config())
d.detect(np.zeros((512, 512, 3), np.uint8)); print(p.memory_info().rss)
"""


def rss_steps(folder: Path, model_dir: Path) -> list[float]:
    """RSS (MiB) of a fresh interpreter: bare, after the device's imports, after the detector's first run."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", RSS_STEPS], cwd=folder, capture_output=True, text=True,
                         check=True, env={**os.environ, "DOGMON_MODEL_DIR": str(model_dir.resolve())})
    return [int(line) / 2**20 for line in out.stdout.split()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.bench", description=__doc__)
    parser.add_argument("--video", help="video file (default: the demo clip)")
    parser.add_argument("--frames", type=int, default=150, help="frames per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bare/pipeline measurements, interleaved; medians are reported (other load evens out)")
    parser.add_argument("--clients", type=int, default=3, help="WebSocket clients attached for the fan-out figure")
    parser.add_argument("--audio", action="store_true", help="benchmark bark detection instead (edge.tools.audiobench)")
    parser.add_argument("--store", action="store_true", help="benchmark event log writes instead (tools.storebench)")
    parser.add_argument("--web", action="store_true", help="benchmark the web server instead (edge.tools.webbench)")
    parser.add_argument("--while-reel", action="store_true",
                        help="the ratio plain and while the day's reel and time-lapse are built on the device's "
                        "nice-10 thread, per round, their medians and difference, the build's CPU-seconds and "
                        "the RSS peak (edge.tools.reelload; its options: --while-reel --help)")
    parser.add_argument("--no-gating", action="store_true", help="skip the motion-gating scenarios (a)-(e)")
    parser.add_argument("--cpu-seconds", type=float, default=8.0, help="seconds per CPU measurement in (a)")
    argv = sys.argv[1:] if argv is None else argv
    if "--while-reel" in argv:  # all its options (--video, --frames, --rounds, the day's, --help) are its own
        from edge.tools.reelload import main as reel_main

        return reel_main([a for a in argv if a != "--while-reel"])
    args, rest = parser.parse_known_args(argv)
    if args.audio:
        from edge.tools.audiobench import main as audio_main

        return audio_main(rest)
    if args.store:
        from edge.tools.storebench import main as store_main

        return store_main(rest)
    if args.web:
        from edge.tools.webbench import main as web_main

        return web_main(rest)
    base = load_config()
    ensure_models(base)
    video = Path(args.video) if args.video else base.model_dir / "dog_walking_vidtome.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        config = pipeline_config(base, video, Path(tmp))
        frames = read_frames(video)
        bares, pipes = [], []
        device = None
        detector = build_detector(config)  # one session for every bare round (and the gating scenarios)
        for _ in range(args.rounds):
            bares.append(bare_loop(detector, frames, args.frames))
            run, device, _ = asyncio.run(pipeline_run(config, args.frames, 0))
            pipes.append(run)
        zero = asyncio.run(pipeline_run(config, 20, 0))[2]
        fanout = asyncio.run(pipeline_run(config, 20, args.clients))[2]
    assert device is not None
    bare, fps = statistics.median(r.fps for r in bares), statistics.median(r.fps for r in pipes)
    # each round's pair ran back to back, under the same outside load: their ratio is the fair figure
    ratios = [p.fps / b.fps for b, p in zip(bares, pipes, strict=True)]
    cpu_bare, cpu_pipe = statistics.median(r.cpu_ms for r in bares), statistics.median(r.cpu_ms for r in pipes)
    ready = [r.ready_ms for r in (*bares, *pipes)]
    stages = device.timers.percentiles()
    rss = psutil.Process(os.getpid()).memory_info().rss / 2**20
    print(f"video: {video.name} ({len(frames)} frames, {frames[0].shape[1]}x{frames[0].shape[0]}), "
          f"threads={config.inference_threads or default_threads()}, cores={os.cpu_count()}, rounds={args.rounds}")
    print(f"bare model loop      : {bare:7.2f} fps  (runs: {', '.join(f'{x.fps:.1f}' for x in bares)})")
    print(f"full pipeline        : {fps:7.2f} fps  (runs: {', '.join(f'{x.fps:.1f}' for x in pipes)}; "
          "source unthrottled, every feature on, event log, WebSocket hub)")
    print(f"ratio pipeline/bare  : {statistics.median(ratios):7.3f}  (median of each round's pair; rounds: "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; spread {min(ratios):.3f}-{max(ratios):.3f})")
    print(f"inference thread     : {cpu_pipe:.2f} ms of CPU per frame in the pipeline vs {cpu_bare:.2f} in the bare "
          f"loop ({cpu_bare / cpu_pipe:.3f}: the pipeline's own work on that thread)" + ("" if None in ready else
          "; waiting for a core (other threads and processes on it) per frame: bare "
          f"{statistics.median(r.ready_ms for r in bares if r.ready_ms is not None):.2f} ms, pipeline "
          f"{statistics.median(r.ready_ms for r in pipes if r.ready_ms is not None):.2f} ms"))
    print("stage latency (ms)   : " + ", ".join(
        f"{name} p50 {v['p50']} p95 {v['p95']}" for name, v in stages.items() if v["p50"] is not None))
    per_client = (fanout["publish_us"] - zero["publish_us"]) / max(1, fanout["clients"])
    print(f"fan-out              : publish {zero['publish_us']:.1f} us with 0 clients, "
          f"{fanout['publish_us']:.1f} us with {fanout['clients']}; {per_client:.2f} us per added client "
          "(encoded once, same bytes to every client; clients in this process)")
    print(f"dropped frames       : {device.holder.dropped} (lock-step file source: expected 0)")
    print(f"bench process RSS    : {rss:.1f} MiB (this process: a bare session, {args.rounds + 2} devices built "
          "one after another, the decoded clip; not a device's figure, see the next lines)")
    duty = device.pipeline.gating_telemetry()["duty_cycle"]
    print(f"gating in the ratio  : detector on {duty} of the pipeline's frames (the clip moves throughout)")
    with tempfile.TemporaryDirectory() as tmp:
        peak, settled, (anon, file_backed) = device_rss(video, Path(tmp), base.model_dir, base.mirror)
        steps = rss_steps(Path(tmp), base.model_dir)
    print(f"device RSS           : peak {peak:.1f} MiB, after 20 s {settled:.1f} MiB (`python -m edge run`, "
          "every feature on: bark detection from a WAV, posture, zones, media pre-roll, live view watched)")
    print(f"device RSS split     : {anon:.1f} MiB anonymous (the device's own), {file_backed:.1f} MiB file-backed "
          "(shared-library pages: reclaimable, and larger when the libraries are hot in the page cache)")
    print(f"RSS where it goes    : interpreter {steps[0]:.0f}, + imports (numpy, cv2, onnxruntime, transports) "
          f"{steps[1] - steps[0]:.0f}, + detector session and first run {steps[2] - steps[1]:.0f}, + the rest "
          f"(YAMNet, threads, pre-roll ring, buffers) {peak - steps[2]:.0f} MiB")
    if not args.no_gating:
        from edge.tools.gatebench import measure

        media = (base.mirror / "media") if base.mirror else base.model_dir
        with tempfile.TemporaryDirectory() as tmp:
            config = dataclasses.replace(config, source_loop=True, data_dir=Path(tmp) / "data")
            for line in measure(config, detector, media, Path(tmp), args.cpu_seconds):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
