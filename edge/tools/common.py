"""What the measuring tools share: a whole device run inside the tool's own event loop, a client that
reads a WebSocket as a tablet would, and frames of a video looped to a count."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.config import Config
from edge.device import Device


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
