"""``python -m edge.tools.livebench``: does the live view slow detection? Detection fps with and without viewers.

Runs the whole device in-process on a video with the file source unthrottled (inference as fast as
the CPU allows, so anything else that takes CPU shows up as lost detection fps), alternating runs with
no viewer and with ``--viewers`` clients reading ``/ws/video``. Prints detection fps, live frames
encoded and sent, and process CPU per run. Media (ring buffer, snapshots) is on in every run; the
only difference between runs is the viewers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect

from edge.config import Config, load_config
from edge.device import ensure_models
from edge.tools.common import drain, loopback_config, start_in_process
from edge.vision.runtime import default_threads


async def run_once(config: Config, frames: int, viewers: int) -> dict:
    device, task = await start_in_process(config)
    sockets = [await connect(f"ws://127.0.0.1:{device.hub.port}/ws/video", max_size=None) for _ in range(viewers)]
    readers = [asyncio.create_task(drain(ws)) for ws in sockets]
    while device.inference.frames < 10:  # warm-up
        await asyncio.sleep(0.01)
    media: Any = next(f for f in device.features if f.name == "media")  # the media feature's own counters
    process = psutil.Process(os.getpid())
    cpu0, encoded0 = process.cpu_times(), media.worker.live_encoded
    start_frames, started = device.inference.frames, time.perf_counter()
    while device.inference.frames - start_frames < frames:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    cpu1 = process.cpu_times()
    result = {"viewers": viewers, "fps": (device.inference.frames - start_frames) / elapsed,
              "live_encoded": media.worker.live_encoded - encoded0, "seconds": elapsed,
              "cpu_percent": 100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / elapsed,
              "live_sent": media.live.telemetry()["frames_sent"]}
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    device.stopping.set()
    await task
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.livebench", description=__doc__)
    parser.add_argument("--video", help="video file (default: the demo clip)")
    parser.add_argument("--frames", type=int, default=300, help="frames per run")
    parser.add_argument("--viewers", type=int, default=2, help="live viewers in the 'with' runs")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (without, with)")
    args = parser.parse_args(argv)
    base = load_config()
    ensure_models(base)
    video = Path(args.video) if args.video else base.model_dir / "dog_walking_vidtome.mp4"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        config = loopback_config(base, source=str(video), source_loop=True, source_realtime=False,
                                     ws_host="127.0.0.1", ws_port=0, data_dir=Path(tmp), mqtt_url="",
                                     telemetry_interval=3600.0, audio_source="")
        for _ in range(args.rounds):
            for viewers in (0, args.viewers):
                results.append(asyncio.run(run_once(config, args.frames, viewers)))
    print(f"video: {video.name}, live {config.live_fps:g} fps at width {config.live_width}, "
          f"threads={config.inference_threads or default_threads()}, cores={os.cpu_count()}")
    for r in results:
        print(f"viewers {r['viewers']}: detection {r['fps']:6.2f} fps, live frames encoded {r['live_encoded']:4d} "
              f"({r['live_encoded'] / r['seconds']:.1f}/s), process CPU {r['cpu_percent']:.0f}%")
    without = [r["fps"] for r in results if r["viewers"] == 0]
    with_viewers = [r["fps"] for r in results if r["viewers"] > 0]
    mean_without, mean_with = sum(without) / len(without), sum(with_viewers) / len(with_viewers)
    print(f"mean: {mean_without:.2f} fps without, {mean_with:.2f} fps with {args.viewers} viewer(s) "
          f"({100 * (mean_with / mean_without - 1):+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
