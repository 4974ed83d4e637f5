"""The event store on a real SQLite file: schema migrations, retention, seq that never repeats, lost files."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest

from edge.core.store import FLOOR_FILE, SCHEMA_VERSION, EventStore
from edge.util.ratelimit import Cooldown, RateLimiter
from edge.util.retry import Backoff

pytestmark = pytest.mark.unit

# The schema as every release before schema versions wrote it (user_version 0).
UNVERSIONED_SCHEMA = """
CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, event_type TEXT NOT NULL, payload BLOB NOT NULL,
                     mqtt_delivered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX events_undelivered ON events(seq) WHERE mqtt_delivered = 0;
CREATE INDEX events_ts ON events(ts);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def add(store: EventStore, n: int, ts: float = 1000.0, kind: str = "test") -> list[int]:
    return [store.append(ts, kind, lambda seq: orjson.dumps({"seq": seq}))[0] for _ in range(n)]


def test_an_unversioned_database_is_migrated_and_keeps_its_events(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "dogmonitor.db")
    db.executescript(UNVERSIONED_SCHEMA)
    db.executemany("INSERT INTO events(seq, ts, event_type, payload) VALUES(?, ?, ?, ?)",
                   [(s, 100.0 + s, "dog_detected", b'{"old":1}') for s in range(1, 8)])
    db.execute("INSERT INTO meta VALUES('last_seq', '9')")
    db.commit()
    db.close()
    store = EventStore(tmp_path)
    assert store.degraded is None and store.schema_version == SCHEMA_VERSION
    assert [s for s, _ in store.events(0)] == list(range(1, 8))
    assert store.last_seq == 9 and add(store, 1) == [10]
    indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "events_type" in indexes and isinstance(store.db_id, str)
    store.close()
    again = EventStore(tmp_path)  # opening a current database changes nothing
    assert again.schema_version == SCHEMA_VERSION and again.last_seq == 10
    again.close()


def test_a_database_from_a_newer_release_is_left_alone_and_reported(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "dogmonitor.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = EventStore(tmp_path)
    assert store.degraded is not None and "newer" in store.degraded
    assert add(store, 1) == [1]  # still streams, in memory
    store.close()
    assert sqlite3.connect(tmp_path / "dogmonitor.db").execute("PRAGMA user_version").fetchone()[0] \
        == SCHEMA_VERSION + 1


def test_mark_delivered_writes_a_burst_in_one_transaction(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    seqs = add(store, 64)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = tmp_path / "dogmonitor.db-wal"
    store.mark_delivered(seqs[:32])
    # One commit appends the changed pages once; a commit per row would append them 32 times.
    page = store.db.execute("PRAGMA page_size").fetchone()[0]
    assert wal.stat().st_size <= 8 * (page + 24), wal.stat().st_size
    assert store.undelivered_count() == 32 and [s for s, _ in store.undelivered(0, 100)] == seqs[32:]
    store.close()


def test_retention_by_age_and_rows_in_batches_and_seq_goes_on(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    add(store, 50, ts=1_000.0)             # old
    recent = add(store, 250, ts=1_000_000.0)
    removed = store.prune(max_age_days=1, max_rows=200, now=1_000_000.0 + 3600, batch=7)
    assert removed == 100 and store.first_seq() == recent[50]
    assert [s for s, _ in store.events(0, 1000)] == recent[50:]
    assert store.prune(max_age_days=0.0001, max_rows=200, now=2_000_000.0, batch=64) == 200  # everything is old
    assert store.first_seq() is None and add(store, 1) == [301]
    store.close()
    assert EventStore(tmp_path).last_seq == 301  # also after a restart with an empty log


def test_pruning_50000_rows_off_the_loop_leaves_the_loop_writing(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.db.execute("BEGIN")
    store.db.executemany("INSERT INTO events(seq, ts, event_type, payload) VALUES(?, 1000.0, 'test', x'7b7d')",
                         [(s,) for s in range(1, 50_001)])
    store.db.execute("COMMIT")
    store.last_seq = 50_000

    async def run() -> tuple[int, list[int]]:
        pruning = asyncio.ensure_future(store.prune_async(max_age_days=1, max_rows=1000, now=10_000_000.0))
        written = []
        while not pruning.done():  # the loop keeps committing events while the pruner works
            written += add(store, 1, ts=10_000_000.0)
            await asyncio.sleep(0.001)
        return await pruning, written

    removed, written = asyncio.run(run())
    assert removed == 50_000 and written and written == list(range(50_001, 50_001 + len(written)))
    assert [s for s, _ in store.events(0, 100_000)] == written
    store.close()


def test_seq_continues_when_the_database_file_is_lost_between_runs(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    given = add(store, 5)
    store.close()
    for name in ("dogmonitor.db", "dogmonitor.db-wal", "dogmonitor.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert (tmp_path / FLOOR_FILE).is_file()
    again = EventStore(tmp_path)
    assert again.first_seq() is None and add(again, 1)[0] > max(given)
    again.close()


def test_a_data_dir_deleted_under_a_running_store_is_noticed_recreated_and_numbered_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = EventStore(data)
    heard: list[str] = []
    store.on_recreated.append(heard.append)
    before = add(store, 3)
    assert store.check() and not heard
    shutil.rmtree(data)
    after = add(store, 2)  # noticed on the next commit
    assert after == [before[-1] + 1, before[-1] + 2]
    assert heard and "deleted" in heard[0] and store.recreated == 1 and store.problems()
    assert (data / "dogmonitor.db").is_file() and [s for s, _ in store.events(0)] == after
    store.close()
    assert EventStore(data).last_seq == after[-1]


def test_store_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = EventStore(tmp_path / "data")
        add(store, 1)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "data").iterdir()}
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert {"dogmonitor.db", "dogmonitor.db-wal", "dogmonitor.db-shm", FLOOR_FILE} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
    store.close()


def test_rate_limiter_cooldown_and_backoff() -> None:
    now = [0.0]
    bucket = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert bucket.allow() and not bucket.allow()
    cooldown = Cooldown(1.0, clock=lambda: now[0])
    assert cooldown.wait() == 0
    now[0] = 1.2
    assert cooldown.wait() == pytest.approx(0.3)
    now[0] = 1.5
    assert cooldown.wait() == 0
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.delay == 0.5


def test_a_database_that_cannot_be_opened_falls_back_to_memory_numbering_on_from_the_floor(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    given = add(store, 4)
    store.close()
    for name in ("dogmonitor.db", "dogmonitor.db-wal", "dogmonitor.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "dogmonitor.db").mkdir()  # whatever is in the way, the database cannot be opened
    degraded = EventStore(tmp_path)
    assert degraded.degraded is not None and degraded.path is None
    assert add(degraded, 1)[0] > max(given)
    degraded.close()
