"""SQLite persistence: the event log (which is also the MQTT outbox) and small keyed state.

Owns one database file in ``DOGMON_DATA_DIR`` (WAL mode, ``synchronous=FULL``: an event that
:meth:`EventStore.append` returned is on disk and survives SIGKILL and power loss). ``seq`` is
allocated here and never reused, even after retention deleted every row, because the highest
seq ever given is kept in ``meta``. When the data dir cannot be written the store falls back to an
in-memory database and says so (``degraded``); live streaming never stops for a disk problem.
All calls come from the event-loop thread; each is a few small statements.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

SCHEMA = """
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
"""


class EventStore:
    def __init__(self, data_dir: Path | None, filename: str = "dogmonitor.db") -> None:
        self.degraded: str | None = None
        self.write_errors = 0
        self.path: Path | None = None
        self.db = self._open(data_dir, filename)
        self.last_seq = int(self.get_meta("last_seq", 0))
        row = self.db.execute("SELECT MAX(seq) FROM events").fetchone()
        self.last_seq = max(self.last_seq, row[0] or 0)

    def _open(self, data_dir: Path | None, filename: str) -> sqlite3.Connection:
        if data_dir is not None:
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
                path = data_dir / filename
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
                self.path = path
                return db
            except (OSError, sqlite3.Error) as exc:
                self.degraded = f"data dir {data_dir} not writable ({exc}); events kept in memory only"
                log.error("%s", self.degraded)
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        db.executescript(SCHEMA)
        return db

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

        A failed write (disk full, read-only) still returns the payload so live delivery goes on;
        the failure is counted in ``write_errors`` and reported by the caller.
        """
        seq = self.last_seq + 1
        payload = encode_with_seq(seq)
        self.last_seq = seq
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO events(seq, ts, event_type, payload) VALUES(?, ?, ?, ?)",
                            (seq, ts, event_type, payload))
            self.db.execute("INSERT INTO meta(key, value) VALUES('last_seq', ?) "
                            "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (orjson.dumps(seq),))
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.write_errors += 1
            self._rollback()
            raise StoreWriteError(seq, payload, exc) from exc
        return seq, payload

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
        try:
            self.db.executemany("UPDATE events SET mqtt_delivered = 1 WHERE seq = ?", [(s,) for s in seqs])
        except sqlite3.Error as exc:
            self.write_errors += 1
            log.warning("could not mark events delivered: %s", exc)

    def prune(self, max_age_days: float, max_rows: int, now: float | None = None) -> int:
        """Delete events older than ``max_age_days`` and beyond the newest ``max_rows``."""
        now = time.time() if now is None else now
        try:
            cur = self.db.execute("DELETE FROM events WHERE ts < ?", (now - max_age_days * 86400,))
            removed = cur.rowcount
            cur = self.db.execute("DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC "
                                  "LIMIT 1 OFFSET ?)", (max_rows,))
            return removed + cur.rowcount
        except sqlite3.Error as exc:
            self.write_errors += 1
            log.warning("event retention failed: %s", exc)
            return 0

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


class StoreWriteError(Exception):
    """The event could not be committed; it carries the seq and payload so it can still be sent live."""

    def __init__(self, seq: int, payload: bytes, cause: Exception) -> None:
        super().__init__(f"event {seq} not stored: {cause}")
        self.seq, self.payload, self.cause = seq, payload, cause
