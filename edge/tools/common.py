"""What the measuring tools share: a whole device run inside the tool's own event loop, a client that
reads a WebSocket as a tablet would, frames of a video looped to a count, the bench's bare-loop and pipeline
measurements (``edge.tools.bench``, ``edge.tools.reelload``), and a generated day of clips and time-lapse
frames for the reel benchmarks (with their 8 h extrapolation)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
from websockets.asyncio.client import connect

from edge.config import Config
from edge.device import Device
from edge.media import render
from edge.media.encoder import EncoderChoice, open_clip
from edge.media.reel import ClipSpan, Moment, day_of
from edge.media.timelapse import HEAT_FILE, QUALITY, WIDTH, day_folder
from edge.media.worker import RECORD_FPS
from edge.protocol import messages
from edge.vision.detector import Detector


async def start_in_process(config: Config) -> tuple[Device, asyncio.Task]:
    """Run a whole device in this event loop (benchmarks); returns once its inference thread runs."""
    device = Device(config)
    task = asyncio.create_task(device.run())
    while not hasattr(device, "inference") or not device.inference.is_alive():
        await asyncio.sleep(0.05)
        if task.done():
            raise SystemExit(f"device failed to start: {task.exception()}")
    return device, task


async def drain(ws: AsyncIterable[object]) -> int:
    """Read a WebSocket until it closes, as a tablet would; returns the number of messages."""
    count = 0
    async for _ in ws:
        count += 1
    return count


def rss_split(process: psutil.Process) -> tuple[float, float]:
    """(anonymous, file-backed) resident MiB of a process (psutil's ``shared``: RssFile + RssShmem).

    The file-backed part is shared-library pages, clean and reclaimable, and it depends on the page cache:
    freshly installed libraries (all cached) fault in many more pages around each touched one, so the same
    device reads ~60 MiB more RSS from a new virtualenv. The anonymous part is the device's own memory."""
    info = process.memory_info()
    return (info.rss - info.shared) / 2**20, info.shared / 2**20


def looped_frames(video: Path, count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """``count`` decoded frames of ``video``, from the start again when it ends; resized to ``size`` if given."""
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            if not frames:
                raise SystemExit(f"cannot read frames from {video}")
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return frames


def loopback_config(base: Config, **overrides: Any) -> Config:
    """A device for a measurement: on loopback with auth off (allowed there only), plain HTTP, no setup port,
    no mDNS, no daily reel — the benchmark's clients connect without a token and nothing else runs."""
    return dataclasses.replace(base, **{"ws_host": "127.0.0.1", "ws_port": 0, "ws_token": "open", "tls": "off",
                                        "setup_port": 0, "mdns": False, "highlights_at": "off", **overrides})


@dataclasses.dataclass
class Day:
    """A generated day for the reel benchmarks: its clips (one arrival in each) and time-lapse frames."""

    day: str
    clips: list[ClipSpan]
    moments: list[Moment]
    lapse_frames: int
    clip_mb: float
    clip_seconds: float
    hours: float
    interval: float

    def describe(self) -> str:
        return (f"{len(self.clips)} clips × {self.clip_seconds:g} s at 640×480 ({self.clip_mb:.1f} MB), "
                f"{self.lapse_frames} time-lapse frames ({self.hours:g} h every {self.interval:g} s)")


def add_day_arguments(parser: argparse.ArgumentParser) -> None:
    """The generated day's size (:func:`make_day`), the same in every tool that builds one."""
    parser.add_argument("--clips", type=int, default=16, help="clips in the generated day")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--hours", type=float, default=8.0, help="hours of time-lapse frames")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between time-lapse frames")


def make_day_from(args: argparse.Namespace, folder: Path, model_dir: Path, encoder: EncoderChoice) -> Day:
    """:func:`make_day` from the demo clip with the sizes :func:`add_day_arguments` read."""
    return make_day(folder, model_dir / "dog_walking_vidtome.mp4", encoder, args.clips, args.clip_seconds,
                    args.hours, args.interval)


def make_day(folder: Path, video: Path, encoder: EncoderChoice, clips: int, clip_seconds: float, hours: float,
             interval: float) -> Day:
    """Write a day into ``folder`` as the device would have: ``clips`` clips of ``clip_seconds`` at 640×480 by
    the device's clip encoder from ``video``, spread over the last ``hours``, one arrival moment in each; and
    today's time-lapse folder with a 480 px JPEG every ``interval`` s of those hours and a heat map."""
    per_clip = int(clip_seconds * RECORD_FPS)
    frames = looped_frames(video, per_clip, (640, 480))
    day_start = time.time() - hours * 3600
    spans, moments = [], []
    for i in range(clips):
        path = folder / f"clip-{i}.mp4"
        writer = open_clip(path, encoder, (640, 480), RECORD_FPS, None)
        for image in frames:
            writer.add_video(image)
        writer.close()
        start = day_start + i * hours * 3600 / clips
        spans.append(ClipSpan(f"clip-{i}", str(path), start, per_clip / RECORD_FPS))
        moments.append(Moment(start + clip_seconds / 2, "arrival", i, 4))
    day = day_of(time.time())
    lapse = day_folder(folder, day)
    lapse.mkdir(parents=True)
    count = max(1, int(hours * 3600 / interval))
    for i in range(count):
        jpeg = render.encode_jpeg(render.fit_width(frames[i % len(frames)], WIDTH), QUALITY)
        (lapse / f"{day_start + i * interval:.3f}.jpg").write_bytes(jpeg)
    np.save(lapse / HEAT_FILE, np.random.default_rng(1).random((18, 32), np.float32))
    clip_mb = sum(Path(c.file).stat().st_size for c in spans) / 2**20
    return Day(day, spans, moments, count, clip_mb, clip_seconds, hours, interval)


def eight_hours(day: Day, reel_cpu: float, lapse_cpu: float, scan: float) -> str:
    """The CPU-seconds of a day with 8 h of clips, each showing a moment (the worst case), from one measured
    build: the reel copies at most ``DOGMON_HIGHLIGHTS_MAX_SECONDS`` of packets whatever the day holds, so only
    the per-clip header scan (``scan`` s) grows; the time-lapse scales with its hours of frames."""
    clips = 8 * 3600 / day.clip_seconds
    reel = reel_cpu + (clips - len(day.clips)) * scan
    return (f"8 h of clips ({clips:.0f} clips of {day.clip_seconds:g} s, each with a moment): reel ≈ {reel:.2f} "
            f"CPU-s; with the time-lapse ≈ {reel + lapse_cpu * 8 / day.hours:.2f} CPU-s")


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


def pipeline_config(base: Config, video: Path, data_dir: Path) -> Config:
    """The measured device: ``video`` looped as fast as it goes, on loopback, no MQTT, no sound."""
    overrides: dict[str, Any] = {
        "source": str(video), "source_loop": True, "source_realtime": False, "ws_host": "127.0.0.1",
        "ws_port": 0, "data_dir": data_dir, "mqtt_url": "", "telemetry_interval": 3600.0}
    if hasattr(base, "audio_source"):
        overrides["audio_source"] = ""  # the video pipeline alone
    return loopback_config(base, **overrides)
