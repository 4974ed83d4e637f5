"""What the measuring tools share: a whole device run inside the tool's own event loop, and a client that
reads a WebSocket as a tablet would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

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
