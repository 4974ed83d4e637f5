"""SQLite persistence: the event log (which is also the MQTT outbox) and small keyed state.

Owns one database file in ``DOGMON_DATA_DIR`` (WAL mode, ``synchronous=FULL``: an event that
:meth:`EventStore.append` returned is on disk and survives SIGKILL and power loss), its schema
version (``PRAGMA user_version``, upgraded by :data:`MIGRATIONS` at open) and the seq floor file
beside it. The data dir is 0700 and every file in it 0600, whatever the umask.

``seq`` is allocated here and never reused: the highest seq ever given is kept in ``meta`` (so it
survives retention deleting every row) and, in blocks of :data:`FLOOR_BLOCK`, in ``seq-floor.json``
outside the database (so it survives the database being deleted or replaced). The database file is
watched (one ``stat`` per commit and per :meth:`EventStore.check`): when it was deleted or replaced
under the running device — the data dir removed by hand — the store says so (:attr:`problem`,
``on_recreated`` listeners), creates a new one and goes on numbering after the last seq it gave.
When the data dir cannot be written the store falls back to an in-memory database and says so
(``degraded``); live streaming never stops for a disk problem.

Calls come from the event-loop thread, except :meth:`prune_async`, which deletes in small batches
on a worker thread over its own connection; each loop-thread call is a few statements in at most one
transaction (one fsync), and the loop waits for the pruner at most one batch (``busy_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from edge.util import clock
from edge.util.fsutil import PRIVATE_FILE, atomic_write, private_dir, private_file

log = logging.getLogger(__name__)

# Version N is reached by running MIGRATIONS[N-1]; a database without a version (0) is one made before
# versions existed: its tables are those of version 1, so every step must be safe on existing tables.
MIGRATIONS: tuple[str, ...] = (
    # 1: the event log, the MQTT outbox flag on it, and keyed state
    """
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        mqtt_delivered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS events_undelivered ON events(seq) WHERE mqtt_delivered = 0;
    CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    """,
    # 2: get_events filtered by type reads an index; each database gets an id the seq floor file names
    """
    CREATE INDEX IF NOT EXISTS events_type ON events(event_type, seq);
    INSERT OR IGNORE INTO meta(key, value) VALUES('db_id', '"' || lower(hex(randomblob(8))) || '"');
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
FLOOR_FILE = "seq-floor.json"
FLOOR_BLOCK = 1000        # seq numbers reserved per floor-file write (one fsync per this many events)
PRUNE_BATCH = 1000        # rows per retention transaction: a few milliseconds each
PRUNE_PAUSE = 0.01        # seconds between batches, so the loop's writer gets the lock in between
BUSY_TIMEOUT_MS = 5000
FLOOR_RETRY_SECONDS = 1.0  # after the floor file could not be written (a full disk), the next try
PROBLEM_SECONDS = 3600.0  # how long /healthz keeps saying the database was lost and recreated


class SchemaTooNew(sqlite3.DatabaseError):
    """The database was written by a newer dogmonitor; this one does not touch it."""


class EventStore:
    def __init__(self, data_dir: Path | None, filename: str = "dogmonitor.db") -> None:
        self.data_dir, self.filename = data_dir, filename
        self.degraded: str | None = None
        self.write_errors = 0
        self.path: Path | None = None
        self.recreated = 0
        self.problem: str | None = None      # the newest loss of the database file, for a while
        self._problem_at = 0.0
        self.on_recreated: list[Callable[[str], None]] = []  # loop thread, after a new database is open
        self._identity: tuple[int, int] | None = None
        self._floor = 0
        self._floor_retry = 0.0  # monotonic time of the next try after the floor file could not be written
        self.closed = False
        self.last_seq = 0
        self.db = self._open()
        self.last_seq = self._recover_last_seq()

    # --- opening ---
    def _open(self) -> sqlite3.Connection:
        if self.data_dir is not None:
            try:
                return self._open_file(self.data_dir / self.filename)
            except (OSError, sqlite3.Error) as exc:
                self.path = None
                self.degraded = f"data dir {self.data_dir} not writable ({exc}); events kept in memory only"
                log.error("%s", self.degraded)
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        migrate(db)
        return db

    def _open_file(self, path: Path) -> sqlite3.Connection:
        private_dir(path.parent)
        # sqlite creates the file (and gives its -wal/-shm the same mode) following the umask: create it 0600 first
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            private_file(path.with_name(name))
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            migrate(db)
        except BaseException:
            db.close()
            raise
        stat = os.stat(path)
        self.path, self._identity = path, (stat.st_dev, stat.st_ino)
        return db

    def _recover_last_seq(self) -> int:
        """The highest seq ever given: the database's own record, or the floor file when the database is not
        the one the floor file was written for (deleted, replaced, restored from an old copy)."""
        last = max(int(self.get_meta("last_seq", 0)), self.db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0)
        floor = self._read_floor()
        if floor is not None:
            self._floor = floor["floor"]
            if floor.get("db_id") != self.db_id and floor["floor"] > last:
                log.warning("event database %s is not the one seq %d was reached with (new, replaced or restored); "
                            "seq continues after %d so no number is given twice", self.path, floor["floor"],
                            floor["floor"])
                last = floor["floor"]
                self._floor = 0  # re-reserve for this database
        with contextlib.suppress(sqlite3.Error):
            self.set_meta("last_seq", last)
        self._reserve(last + 1)
        return last

    @property
    def db_id(self) -> str | None:
        return self.get_meta("db_id")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # --- seq floor outside the database ---
    def _floor_path(self) -> Path | None:
        # Beside the database, and read even when the database could not be opened (a read-only data dir):
        # the in-memory fallback then numbers on from the floor instead of starting again at 1.
        return None if self.data_dir is None else self.data_dir / FLOOR_FILE

    def _read_floor(self) -> dict[str, Any] | None:
        path = self._floor_path()
        if path is None:
            return None
        try:
            data = orjson.loads(path.read_bytes())
            if isinstance(data, dict) and isinstance(data.get("floor"), int):
                return data
            log.warning("seq floor file %s holds no floor; ignored", path)
        except FileNotFoundError:
            pass
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("seq floor file %s unreadable (%s); ignored", path, exc)
        return None

    def _reserve(self, seq: int) -> None:
        """Before ``seq`` is given, make sure the floor file says at least that much (one write per block)."""
        path = self._floor_path()
        if path is None or seq <= self._floor or time.monotonic() < self._floor_retry:
            return
        floor = seq + FLOOR_BLOCK - 1
        try:
            atomic_write(path, orjson.dumps({"floor": floor, "db_id": self.db_id}))
            self._floor = floor
            self._floor_retry = 0.0
        except OSError as exc:  # the database write that follows fails the same way and is reported there
            if not self._floor_retry:  # once per spell, and not one try per event while the disk is full
                log.warning("seq floor file %s not written: %s", path, exc)
            self._floor_retry = time.monotonic() + FLOOR_RETRY_SECONDS

    # --- watching the file ---
    def check(self) -> bool:
        """True when the open database is still the file at its path; else report, recreate and reopen it.

        One ``stat``: cheap enough for every commit and a periodic timer.
        """
        if self.path is None or self.closed:
            return True
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) == self._identity:
                return True
            why = "replaced"
        except FileNotFoundError:
            why = "deleted"
        except OSError as exc:
            log.warning("cannot check event database %s: %s", self.path, exc)
            return True
        self._recreate(why)
        return False

    def _recreate(self, why: str) -> None:
        path = self.path
        assert path is not None
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            self.db = self._open_file(path)
            self.set_meta("last_seq", self.last_seq)
            self._floor = 0
            self._reserve(self.last_seq + 1)
            effect = "a new event database was created"
        except (OSError, sqlite3.Error) as exc:
            self.path = None
            self.degraded = (f"event database {path} was {why} and cannot be recreated ({exc}); "
                             "events kept in memory only")
            self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            migrate(self.db)
            self.set_meta("last_seq", self.last_seq)
            effect = "events are kept in memory only"
        self.recreated += 1
        self.problem = (f"event database {path} was {why} while running (noticed {since}); {effect}: events and "
                        f"media stored before are gone; seq continues at {self.last_seq + 1}")
        self._problem_at = time.monotonic()
        log.error("%s", self.problem)
        for listener in self.on_recreated:
            try:
                listener(self.problem)
            except Exception:
                log.exception("store recreate listener failed")

    def problems(self) -> list[str]:
        """For ``/healthz``: a lost database is reported for :data:`PROBLEM_SECONDS` after it was noticed."""
        if self.problem is not None and time.monotonic() - self._problem_at < PROBLEM_SECONDS:
            return ["event log was deleted or replaced while running and recreated (older events lost)"]
        return []

    # --- meta / keyed state ---
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, orjson.dumps(value)))

    # --- event log ---
    def append(self, ts: float, event_type: str, encode_with_seq: Callable[[int], bytes]) -> tuple[int, bytes]:
        """Allocate the next seq, encode with it, commit; return (seq, payload).

        A seq is only ever given to an event that is in the log: a failed write (disk full, read-only)
        takes its seq back (the next event gets it) and raises :class:`StoreWriteError`, counted in
        ``write_errors``; the caller decides what goes out live.
        """
        self.check()
        seq = self.last_seq + 1
        self._reserve(seq)
        payload = encode_with_seq(seq)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO events(seq, ts, event_type, payload) VALUES(?, ?, ?, ?)",
                            (seq, ts, event_type, payload))
            self.db.execute("INSERT INTO meta(key, value) VALUES('last_seq', ?) "
                            "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (orjson.dumps(seq),))
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if not self._has(seq):  # a COMMIT that reported an error may still have reached the disk
                self.write_errors += 1
                raise StoreWriteError(seq, payload, exc) from exc
        self.last_seq = seq
        return seq, payload

    def _has(self, seq: int) -> bool:
        try:
            return self.db.execute("SELECT 1 FROM events WHERE seq = ?", (seq,)).fetchone() is not None
        except sqlite3.Error:
            return False

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")

    def first_seq(self) -> int | None:
        return self.db.execute("SELECT MIN(seq) FROM events").fetchone()[0]

    def events(self, after_seq: int = 0, limit: int = 1000, types: Sequence[str] | None = None,
               since_ts: float | None = None, until_ts: float | None = None) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, payload FROM events WHERE seq > ?"
        args: list[Any] = [after_seq]
        if types:
            sql += f" AND event_type IN ({','.join('?' * len(types))})"
            args += list(types)
        if since_ts is not None:
            sql += " AND ts >= ?"
            args.append(since_ts)
        if until_ts is not None:
            sql += " AND ts <= ?"
            args.append(until_ts)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [(s, bytes(p)) for s, p in self.db.execute(sql, args)]

    # --- MQTT outbox (the same rows) ---
    def undelivered(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self.db.execute("SELECT seq, payload FROM events WHERE mqtt_delivered = 0 AND seq > ? "
                               "ORDER BY seq LIMIT ?", (after_seq, limit))
        return [(s, bytes(p)) for s, p in rows]

    def undelivered_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events WHERE mqtt_delivered = 0").fetchone()[0]

    def mark_delivered(self, seqs: Sequence[int]) -> None:
        """Mark a burst of acknowledged events in one transaction (one fsync, not one per row)."""
        if not seqs:
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("UPDATE events SET mqtt_delivered = 1 WHERE seq = ?", [(s,) for s in seqs])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.write_errors += 1
            self._rollback()
            log.warning("could not mark events delivered: %s", exc)

    # --- retention ---
    def prune(self, max_age_days: float, max_rows: int, now: float | None = None, batch: int = PRUNE_BATCH) -> int:
        """Delete events older than ``max_age_days`` and beyond the newest ``max_rows``, on this thread, in
        batches of ``batch`` rows (one transaction each). Used directly for the in-memory fallback and tests."""
        removed = 0
        try:
            for step in prune_steps(self.db, max_age_days, max_rows, clock.now() if now is None else now, batch):
                removed += step
        except sqlite3.Error as exc:
            self.write_errors += 1
            self._rollback()
            log.warning("event retention failed: %s", exc)
        return removed

    async def prune_async(self, max_age_days: float, max_rows: int, now: float | None = None,
                          batch: int = PRUNE_BATCH) -> int:
        """:meth:`prune` without holding up the event loop: batches on a worker thread over a second
        connection (WAL lets the loop keep reading; its writes wait at most one batch). In memory, the
        batches run on the loop with a yield between them."""
        now = clock.now() if now is None else now
        if self.path is None:
            removed = 0
            try:
                for step in prune_steps(self.db, max_age_days, max_rows, now, batch):
                    removed += step
                    await asyncio.sleep(0)
            except sqlite3.Error as exc:
                self.write_errors += 1
                self._rollback()
                log.warning("event retention failed: %s", exc)
            return removed
        try:
            return await asyncio.to_thread(_prune_file, self.path, max_age_days, max_rows, now, batch)
        except sqlite3.Error as exc:
            self.write_errors += 1
            log.warning("event retention failed: %s", exc)
            return 0

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` to :data:`SCHEMA_VERSION`, each step in its own transaction; return the version found."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(f"the event database has schema version {found}, newer than this dogmonitor's "
                           f"{SCHEMA_VERSION}: it was written by a newer release (install that, or move the file away)")
    existing = found > 0 or db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone() is not None
    for version in range(found + 1, SCHEMA_VERSION + 1):
        try:
            db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[version - 1]}; PRAGMA user_version = {version}; COMMIT;")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        if existing:
            log.info("event database migrated from schema version %d to %d", version - 1, version)
    return found


def prune_steps(db: sqlite3.Connection, max_age_days: float, max_rows: int, now: float,
                batch: int) -> Iterator[int]:
    """Delete in batches of ``batch`` rows, one transaction each; yield the rows removed per batch."""
    cutoff_ts = now - max_age_days * 86400
    row = db.execute("SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?", (max_rows,)).fetchone()
    cutoff_seq = row[0] if row else None
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? OR seq <= ? "
                             "ORDER BY seq LIMIT ?)", (cutoff_ts, -1 if cutoff_seq is None else cutoff_seq, batch))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        yield cur.rowcount
        if cur.rowcount < batch:
            return


def _prune_file(path: Path, max_age_days: float, max_rows: int, now: float, batch: int) -> int:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA synchronous=FULL")
        removed = 0
        for step in prune_steps(db, max_age_days, max_rows, now, batch):
            removed += step
            time.sleep(PRUNE_PAUSE)
        return removed
    finally:
        db.close()


class StoreWriteError(Exception):
    """The event could not be committed; ``seq`` is the number it would have had (not given: the next
    event gets it) and ``payload`` its encoding with that seq."""

    def __init__(self, seq: int, payload: bytes, cause: Exception) -> None:
        super().__init__(f"event {seq} not stored: {cause}")
        self.seq, self.payload, self.cause = seq, payload, cause
