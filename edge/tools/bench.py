"""``python -m edge.tools.bench``: measured ratios from one run on the shared clip (or any video).

Prints: the bare model loop (pre-processing + session + decoding on frames already in memory) vs the
full device pipeline with the file source unthrottled (capture thread, tracker, features, bus, event
log, WebSocket hub with clients attached), their ratio, per-stage p50/p95 latency, the cost of
fanning one message out per WebSocket client, and process RSS. Same session settings (inference threads)
and the same OpenCV threading in both loops; the ratio is the median of each round's back-to-back pair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import psutil
from websockets.asyncio.client import connect

from edge.config import Config, load_config
from edge.device import Device, build_detector, ensure_models
from edge.protocol import messages
from edge.tools.common import drain, loopback_config, start_in_process
from edge.vision.detector import Detector
from edge.vision.runtime import default_threads


def read_frames(path: Path) -> list:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (item := capture.read())[0]:
        frames.append(item[1])
    if not frames:
        raise SystemExit(f"cannot decode any frame from {path}")
    return frames


@dataclasses.dataclass
class Run:
    """One measurement: frames per second and where the measured thread's wall time went (ms per frame)."""

    fps: float
    cpu_ms: float           # on a core
    ready_ms: float | None  # runnable but waiting for a core (other threads and processes had them)


def thread_clock(native_id: int) -> tuple[float, float | None]:
    """Seconds a thread has run on a core and waited for one; Linux schedstat, else CPU time only."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            ran, waited = (int(x) / 1e9 for x in f.read().split()[:2])
        return ran, waited
    except (OSError, ValueError):
        for thread in psutil.Process().threads():
            if thread.id == native_id:
                return thread.user_time + thread.system_time, None
        return 0.0, None


def run_since(native_id: int, before: tuple[float, float | None], started: float, frames: int) -> Run:
    ran, waited = thread_clock(native_id)
    ready = None if waited is None or before[1] is None else (waited - before[1]) / frames * 1e3
    return Run(frames / (time.perf_counter() - started), (ran - before[0]) / frames * 1e3, ready)


def bare_loop(detector: Detector, frames: list, total: int) -> Run:
    for frame in frames[:3]:  # warm-up
        detector.detect(frame)
    me = threading.get_native_id()
    before, started = thread_clock(me), time.perf_counter()
    for i in range(total):
        detector.detect(frames[i % len(frames)])
    return run_since(me, before, started, total)


async def pipeline_run(config: Config, total: int, clients: int) -> tuple[Run, Device, dict]:
    device, task = await start_in_process(config)
    url = f"ws://127.0.0.1:{device.hub.port}/ws/ui"
    sockets = [await connect(url) for _ in range(clients)]
    readers = [asyncio.create_task(drain(ws)) for ws in sockets]
    while device.inference.frames < 3:
        await asyncio.sleep(0.01)
    inference = device.inference.native_id
    assert inference is not None
    start_frames, before, started = device.inference.frames, thread_clock(inference), time.perf_counter()
    while device.inference.frames - start_frames < total:
        await asyncio.sleep(0.02)
    run = run_since(inference, before, started, device.inference.frames - start_frames)
    fanout = await fanout_cost(device)
    for reader in readers:
        reader.cancel()
    device.stopping.set()
    await task
    for ws in sockets:
        await ws.close()
    return run, device, fanout


async def fanout_cost(device: Device, rounds: int = 2000) -> dict:
    """Time Bus.publish of a typical detection overlay with the clients currently attached."""
    overlay = messages.detection_overlay(512, 512, [messages.box(10, 20, 200, 300, "dog", 0.8, 1)], 1)
    clients = len(device.hub.clients)
    started = time.perf_counter()
    for _ in range(rounds):
        device.bus.publish(overlay)
        if _ % 50 == 0:
            await asyncio.sleep(0)  # let senders run, as the live loop would
    per_message_us = (time.perf_counter() - started) / rounds * 1e6
    return {"clients": clients, "publish_us": per_message_us}


def rss_split(process: psutil.Process) -> tuple[float, float]:
    """(anonymous, file-backed) resident MiB of a process (psutil's ``shared``: RssFile + RssShmem).

    The file-backed part is shared-library pages, clean and reclaimable, and it depends on the page cache:
    freshly installed libraries (all cached) fault in many more pages around each touched one, so the same
    device reads ~60 MiB more RSS from a new virtualenv. The anonymous part is the device's own memory."""
    info = process.memory_info()
    return (info.rss - info.shared) / 2**20, info.shared / 2**20


def device_rss(video: Path, folder: Path, model_dir: Path, mirror: Path | None, seconds: float = 20.0,
               audio: str = "bark_esc50_4-183992-A-0.wav") -> tuple[float, float, tuple[float, float]]:
    """Peak and settled RSS (MiB) of a real ``python -m edge run`` with every feature on and a live-view
    client attached, and its settled (anonymous, file-backed) split: the device's own memory, not this
    benchmark's."""
    import socket
    import subprocess
    import sys

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
    import sys

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
    parser.add_argument("--no-gating", action="store_true", help="skip the motion-gating scenarios (a)-(e)")
    parser.add_argument("--cpu-seconds", type=float, default=8.0, help="seconds per CPU measurement in (a)")
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
        overrides: dict[str, Any] = {
            "source": str(video), "source_loop": True, "source_realtime": False, "ws_host": "127.0.0.1",
            "ws_port": 0, "data_dir": Path(tmp), "mqtt_url": "", "telemetry_interval": 3600.0}
        if hasattr(base, "audio_source"):
            overrides["audio_source"] = ""  # the video pipeline alone
        config = loopback_config(base, **overrides)
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
