"""Writes ``edge/web/static/keepawake.webm``: the silent looping video the tablet app plays to keep the
screen on where the Screen Wake Lock API is missing (plain HTTP on a LAN address).

A playing, visible ``<video>`` makes Chrome on Android hold the screen on; it needs no audio track (an
audio track would take the tablet's audio focus). VP8 in WebM: every Chromium plays it, and its
encoder ships with PyAV. Run ``python -m edge.tools.keepawake`` after changing the parameters below
and commit the file (about 1 KB).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "web" / "static" / "keepawake.webm"
SIZE = (64, 36)       # 16:9, tiny; shown as a small strip beside its explanation
FPS = 2
SECONDS = 4           # looped by the page; a short loop costs nothing to decode


def write(path: Path = OUT) -> Path:
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"crf": "40", "b:v": "20k", "deadline": "good"}
        for i in range(FPS * SECONDS):
            # a dark frame that changes slightly, so a decoder cannot treat the loop as one still picture
            shade = 16 + (i % FPS)
            frame = av.VideoFrame.from_ndarray(np.full((SIZE[1], SIZE[0], 3), shade, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


if __name__ == "__main__":
    written = write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"{written}: {written.stat().st_size} bytes")
