"""``python -m edge.tools.reelbench``: CPU-seconds to make a day's highlight reel and time-lapse, and for 8 h.

Generates a day's material in a temporary folder (not timed): ``--clips`` clips of ``--clip-seconds`` s at
640×480 written by the device's clip encoder from the demo video, one arrival moment in each, and the
time-lapse frames of ``--hours`` h at one 480 px JPEG every ``--interval`` s. Then builds both exactly as the
device's ``media-daily`` thread does (:func:`edge.media.daily.build_reel`, :func:`~edge.media.daily.build_timelapse`,
on this thread at nice 10) and prints the thread's CPU-seconds.

Extrapolation to 8 h of clips: the reel copies at most ``DOGMON_HIGHLIGHTS_MAX_SECONDS`` of packets whatever
the day holds, so only reading the packet headers of each clip that shows a moment grows with the day; the
8 h figure is the measured build plus (8 h of clips / clips measured − 1) × the measured per-clip header scan.
The time-lapse is measured at its real size (``--hours`` of frames; past ``DOGMON_TIMELAPSE_MAX_SECONDS`` × 24
frames a longer day costs no more to encode, only its JPEGs' listing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge.config import load_config
from edge.device import ensure_models
from edge.media import render
from edge.media.daily import NICE, build_reel, build_timelapse
from edge.media.encoder import choose_encoders, open_clip
from edge.media.reel import ClipSpan, Moment, day_of
from edge.media.reelmaker import keyframe_times
from edge.media.timelapse import HEAT_FILE, QUALITY, WIDTH, day_folder
from edge.media.worker import RECORD_FPS
from edge.tools.common import looped_frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.reelbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16, help="clips in the generated day")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--hours", type=float, default=8.0, help="hours of time-lapse frames")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between time-lapse frames")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="DOGMON_HIGHLIGHTS_MAX_SECONDS")
    args = parser.parse_args(argv)
    config = load_config()
    ensure_models(config)
    encoders, _ = choose_encoders("auto")
    encoder = encoders[0]
    per_clip = int(args.clip_seconds * RECORD_FPS)
    frames = looped_frames(config.model_dir / "dog_walking_vidtome.mp4", per_clip, (640, 480))
    day_start = time.time() - args.hours * 3600
    day = day_of(time.time())
    with tempfile.TemporaryDirectory(prefix="reelbench-") as tmp:
        folder = Path(tmp)
        clips, moments = [], []
        for i in range(args.clips):  # the day's clips (not timed)
            path = folder / f"clip-{i}.mp4"
            writer = open_clip(path, encoder, (640, 480), RECORD_FPS, None)
            for image in frames:
                writer.add_video(image)
            writer.close()
            start = day_start + i * args.hours * 3600 / args.clips
            clips.append(ClipSpan(f"clip-{i}", str(path), start, per_clip / RECORD_FPS))
            moments.append(Moment(start + args.clip_seconds / 2, "arrival", i, 4))
        lapse = day_folder(folder, day)
        lapse.mkdir(parents=True)
        count = int(args.hours * 3600 / args.interval)
        for i in range(count):  # the day's time-lapse frames (not timed)
            jpeg = render.encode_jpeg(render.fit_width(frames[i % len(frames)], WIDTH), QUALITY)
            (lapse / f"{day_start + i * args.interval:.3f}.jpg").write_bytes(jpeg)
        np.save(lapse / HEAT_FILE, np.random.default_rng(1).random((18, 32), np.float32))
        clip_mb = sum(Path(c.file).stat().st_size for c in clips) / 2**20

        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        scan0 = time.thread_time()
        for clip in clips:
            keyframe_times(Path(clip.file))
        scan = (time.thread_time() - scan0) / len(clips)
        reel = build_reel(moments, clips, folder, encoder, args.max_seconds, RECORD_FPS, 0)
        timelapse = build_timelapse(day, folder, encoder, 60.0, True, 0)
        assert reel is not None and timelapse is not None
    reel_cpu, lapse_cpu = reel.result["cpu_seconds"], timelapse.result["cpu_seconds"]
    clips_8h = 8 * 3600 / args.clip_seconds
    print(f"encoder {encoder.name}; day: {args.clips} clips × {args.clip_seconds:g} s at 640×480 "
          f"({clip_mb:.1f} MB), {count} time-lapse frames ({args.hours:g} h every {args.interval:g} s)")
    print(f"highlight reel: {reel.result['duration']:.1f} s ({reel.result['copied']} cuts copied, "
          f"{reel.result['reencoded']} re-encoded): {reel_cpu:.3f} CPU-s; header scan {1000 * scan:.2f} ms/clip")
    print(f"time-lapse: {timelapse.result['frames']} frames, {timelapse.result['duration']:.1f} s: "
          f"{lapse_cpu:.3f} CPU-s ({1000 * lapse_cpu / max(1, timelapse.result['frames']):.2f} ms/frame)")
    print(f"8 h of clips ({clips_8h:.0f} clips of {args.clip_seconds:g} s, each with a moment): reel ≈ "
          f"{reel_cpu + (clips_8h - args.clips) * scan:.2f} CPU-s; with the time-lapse ≈ "
          f"{reel_cpu + (clips_8h - args.clips) * scan + lapse_cpu * 8 / args.hours:.2f} CPU-s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
