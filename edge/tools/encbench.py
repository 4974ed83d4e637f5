"""``python -m edge.tools.encbench``: what a clip encoder costs per frame, and what a second of clip weighs.

Encodes the shared demo clip's frames (scaled to each size) with every encoder that passes its test
encode here, on this thread (one core, as on the device's clips thread), and prints milliseconds of
wall time and of CPU per frame and kilobytes per second of clip at the device's clip rate. The
frames are decoded beforehand, so only the encoder (plus the MP4 muxer) is timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import load_config
from edge.device import ensure_models
from edge.media.encoder import choose_encoders, open_clip
from edge.tools.common import looped_frames

SIZES = ((640, 480), (1280, 720))
FPS = 10.0


def bench(name: str, frames: list[np.ndarray], size: tuple[int, int]) -> dict[str, float]:
    working, _ = choose_encoders(name)
    encoder = working[0]
    scaled = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        clip = open_clip(path, encoder, size, FPS, None)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for image in scaled:
            clip.add_video(image)
        clip.close()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        size_bytes = path.stat().st_size
    seconds = len(scaled) / FPS
    return {"wall_ms": 1000 * wall / len(scaled), "cpu_ms": 1000 * cpu / len(scaled),
            "kb_per_s": size_bytes / 1024 / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.encbench", description=__doc__)
    parser.add_argument("--video", help="video file (default: the demo clip)")
    parser.add_argument("--frames", type=int, default=200, help="frames per encoder and size")
    args = parser.parse_args(argv)
    config = load_config()
    if not args.video:
        ensure_models(config)
    video = Path(args.video) if args.video else config.model_dir / "dog_walking_vidtome.mp4"
    frames = looped_frames(video, args.frames)
    working, refused = choose_encoders("auto")
    for name, reason in refused.items():
        print(f"{name}: not usable here ({reason})")
    print(f"video: {video.name}, {len(frames)} frames per run, clip rate {FPS:g} fps")
    for encoder in working:
        for size in SIZES:
            r = bench(encoder.name, frames, size)
            print(f"{encoder.name:13s} {size[0]}x{size[1]}: {r['wall_ms']:6.2f} ms/frame wall, "
                  f"{r['cpu_ms']:6.2f} ms/frame CPU, {r['kb_per_s']:6.0f} KB per second of clip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
