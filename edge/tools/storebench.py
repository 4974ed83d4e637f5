"""``python -m edge.tools.bench --store``: what the event log's write patterns cost, measured in one run.

Prints, on a real database file in a temporary folder (put it on the SD card with ``--dir`` for the
device's figures): marking a burst of 32 acknowledged events delivered one commit per row against one
transaction (:meth:`EventStore.mark_delivered`), and how long the event loop is held up while retention
deletes 50 000 rows: one ``DELETE`` on the loop (as before batching) against
:meth:`EventStore.prune_async` (batches on a worker thread). The loop's hold-up is the longest gap seen by
a task that wakes every millisecond (its gap on an idle loop is printed too: the machine's noise).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from edge.core.store import EventStore


def fill(store: EventStore, rows: int, ts: float) -> None:
    start = store.last_seq + 1
    store.db.execute("BEGIN")
    store.db.executemany("INSERT INTO events(seq, ts, event_type, payload) VALUES(?, ?, 'test', ?)",
                         [(s, ts, orjson.dumps({"seq": s, "data": {"n": s}})) for s in range(start, start + rows)])
    store.db.execute("COMMIT")
    store.last_seq = start + rows - 1


def mark_costs(store: EventStore, burst: int, rounds: int) -> tuple[float, float]:
    per_row, one_tx = [], []
    for _ in range(rounds):
        seqs = [s for s, _ in store.undelivered(0, 2 * burst)]
        started = time.perf_counter()
        store.db.executemany("UPDATE events SET mqtt_delivered = 1 WHERE seq = ?", [(s,) for s in seqs[:burst]])
        per_row.append(time.perf_counter() - started)
        started = time.perf_counter()
        store.mark_delivered(seqs[burst:])
        one_tx.append(time.perf_counter() - started)
    return statistics.median(per_row) * 1000, statistics.median(one_tx) * 1000


async def loop_stall(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Run ``work`` (a coroutine function) while a 1 ms ticker measures the longest loop gap; (stall ms, total s)."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await work()
    total = time.perf_counter() - started
    done = True
    await task
    return worst * 1000, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tools.bench --store", description=__doc__)
    parser.add_argument("--dir", help="folder for the test database (default: a temporary one)")
    parser.add_argument("--rows", type=int, default=50_000, help="rows retention deletes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = EventStore(Path(tmp))
        fill(store, 64 * 5, ts=time.time())
        per_row, one_tx = mark_costs(store, 32, 5)
        print(f"mark 32 delivered    : {per_row:7.2f} ms one commit per row, {one_tx:7.2f} ms in one transaction "
              f"(ratio {per_row / one_tx:.1f})")

        async def on_loop() -> None:  # what retention did before: one statement on the loop thread
            store.db.execute("DELETE FROM events WHERE ts < ?", (1e9,))

        async def batched() -> None:
            await store.prune_async(max_age_days=1, max_rows=10**8, now=2e9)

        idle, _ = asyncio.run(loop_stall(lambda: asyncio.sleep(0.5)))
        fill(store, args.rows, ts=1000.0)
        stall_once, total_once = asyncio.run(loop_stall(on_loop))
        fill(store, args.rows, ts=1000.0)
        stall_batched, total_batched = asyncio.run(loop_stall(batched))
        print(f"prune {args.rows} rows     : loop held up {stall_once:7.1f} ms by one DELETE on the loop "
              f"({total_once:.2f} s); {stall_batched:7.1f} ms with batches off the loop ({total_batched:.2f} s); "
              f"ratio {stall_once / max(stall_batched, 1e-3):.1f}; idle loop's own longest gap {idle:.1f} ms")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
