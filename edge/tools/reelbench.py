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

from edge.config import load_config
from edge.device import ensure_models
from edge.media.daily import NICE, build_reel, build_timelapse
from edge.media.encoder import choose_encoders
from edge.media.reelmaker import keyframe_times
from edge.media.worker import RECORD_FPS
from edge.tools.common import add_day_arguments, eight_hours, make_day_from


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.reelbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_day_arguments(parser)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="DOGMON_HIGHLIGHTS_MAX_SECONDS")
    args = parser.parse_args(argv)
    config = load_config()
    ensure_models(config)
    encoders, _ = choose_encoders("auto")
    encoder = encoders[0]
    with tempfile.TemporaryDirectory(prefix="reelbench-") as tmp:
        folder = Path(tmp)
        day = make_day_from(args, folder, config.model_dir, encoder)  # not timed
        clips, moments = day.clips, day.moments
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        scan0 = time.thread_time()
        for clip in clips:
            keyframe_times(Path(clip.file))
        scan = (time.thread_time() - scan0) / len(clips)
        reel = build_reel(moments, clips, folder, encoder, args.max_seconds, RECORD_FPS, 0)
        timelapse = build_timelapse(day.day, folder, encoder, 60.0, True, 0)
        assert reel is not None and timelapse is not None
    reel_cpu, lapse_cpu = reel.result["cpu_seconds"], timelapse.result["cpu_seconds"]
    print(f"encoder {encoder.name}; day: {day.describe()}")
    print(f"highlight reel: {reel.result['duration']:.1f} s ({reel.result['copied']} cuts copied, "
          f"{reel.result['reencoded']} re-encoded): {reel_cpu:.3f} CPU-s; header scan {1000 * scan:.2f} ms/clip")
    print(f"time-lapse: {timelapse.result['frames']} frames, {timelapse.result['duration']:.1f} s: "
          f"{lapse_cpu:.3f} CPU-s ({1000 * lapse_cpu / max(1, timelapse.result['frames']):.2f} ms/frame)")
    print(eight_hours(day, reel_cpu, lapse_cpu, scan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
