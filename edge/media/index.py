"""The media index: one SQLite table (``media``) beside the event log, and media ids.

Owns the SQL for media rows and the id format. Ids are generated here and checked against a strict
pattern before any lookup; a file name is only ever taken from the index (``<id>.<ext>`` in the media
folder), never from a client. All calls come from the event-loop thread (the same connection as the
event log, which is used from that thread only).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from edge.util import clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grp TEXT NOT NULL,
    created REAL NOT NULL,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    start REAL,
    duration REAL,
    event_seq INTEGER,
    label TEXT,
    info BLOB
);
CREATE INDEX IF NOT EXISTS media_created ON media(created);
"""

KINDS = {"snapshot": "snap", "snapshot_overlay": "snapo", "snapshot_thumb": "snapt", "clip": "clip",
         "clip_poster": "clipp", "highlights": "reel", "timelapse": "tlapse"}
DAY_KINDS = ("highlights", "timelapse")  # one video per day; its row's label is the day (YYYY-MM-DD)
# Children share their parent's group (retention removes them together) and its id after the prefix.
CHILDREN = {"snapshot": {"snapshot_overlay": "overlay_media_id", "snapshot_thumb": "thumb_media_id"},
            "clip": {"clip_poster": "poster_media_id"}}
ID_PATTERN = re.compile(r"(snap|snapo|snapt|clip|clipp|reel|tlapse)-\d{8}T\d{6}-[0-9a-f]{8}")
FILE_PATTERN = re.compile(r"((?:snap|snapo|snapt|clip|clipp|reel|tlapse)-\d{8}T\d{6}-[0-9a-f]{8})\.(jpg|mp4)")
PARENT_PREFIX = {"snapo": "snap", "snapt": "snap", "clipp": "clip"}
CONTENT_TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4"}


def new_id(kind: str, wall: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock.now() if wall is None else wall))
    return f"{KINDS[kind]}-{stamp}-{secrets.token_hex(4)}"


def child_id(parent_id: str, kind: str) -> str:
    """The id of a parent's derived file (overlay, thumbnail, poster): same stamp and token."""
    return KINDS[kind] + "-" + parent_id.split("-", 1)[1]


def group_of(media_id: str) -> str:
    """The parent id a file belongs to (itself for a parent)."""
    prefix, rest = media_id.split("-", 1)
    return PARENT_PREFIX.get(prefix, prefix) + "-" + rest


def valid_id(text: str) -> bool:
    return ID_PATTERN.fullmatch(text) is not None


def kind_of(media_id: str) -> str:
    prefix = media_id.split("-", 1)[0]
    return {v: k for k, v in KINDS.items()}[prefix]


@dataclasses.dataclass(frozen=True, slots=True)
class MediaRecord:
    id: str
    kind: str
    group: str
    created: float
    file: str
    bytes: int
    content_type: str
    width: int | None = None
    height: int | None = None
    start: float | None = None
    duration: float | None = None
    event_seq: int | None = None
    label: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"media_id": self.id, "kind": self.kind, "created": round(self.created, 3),
                               "bytes": self.bytes, "content_type": self.content_type,
                               "url": f"/media/{self.id}"}
        for name in ("width", "height", "start", "duration", "event_seq", "label"):
            value = getattr(self, name)
            if value is not None:
                out[name] = round(value, 3) if isinstance(value, float) else value
        return out


COLUMNS = "id, kind, grp, created, file, bytes, content_type, width, height, start, duration, event_seq, label"


class MediaIndex:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def add(self, records: list[MediaRecord]) -> None:
        """All rows of one save in one transaction (a snapshot's two files appear together)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(f"INSERT OR REPLACE INTO media({COLUMNS}) VALUES({','.join('?' * 13)})",
                                [dataclasses.astuple(r) for r in records])
            self.db.execute("COMMIT")
        except sqlite3.Error:
            self.db.execute("ROLLBACK")
            raise

    def get(self, media_id: str) -> MediaRecord | None:
        if not valid_id(media_id):
            return None
        row = self.db.execute(f"SELECT {COLUMNS} FROM media WHERE id = ?", (media_id,)).fetchone()
        return MediaRecord(*row) if row else None

    def newest(self, kind: str) -> MediaRecord | None:
        row = self.db.execute(f"SELECT {COLUMNS} FROM media WHERE kind = ? ORDER BY created DESC LIMIT 1",
                              (kind,)).fetchone()
        return MediaRecord(*row) if row else None

    def listing(self, kind: str | None, limit: int, before: float | None = None) -> list[MediaRecord]:
        sql, args = f"SELECT {COLUMNS} FROM media WHERE 1", list[str | float]()
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if before is not None:
            sql += " AND created < ?"
            args.append(before)
        sql += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        return [MediaRecord(*row) for row in self.db.execute(sql, args)]

    def clips_between(self, start: float, end: float) -> list[MediaRecord]:
        """Clips whose first frame is in [start, end), oldest first."""
        return [MediaRecord(*row) for row in self.db.execute(
            f"SELECT {COLUMNS} FROM media WHERE kind = 'clip' AND start >= ? AND start < ? ORDER BY start",
            (start, end))]

    def day_media(self, day: str) -> dict[str, dict[str, str] | None]:
        """The day's highlight reel and time-lapse (the newest of each), as the diary shows them:
        ``{"highlights": {"media_id", "url"} | None, "timelapse": {"media_id", "url"} | None}``."""
        out: dict[str, dict[str, str] | None] = {}
        for kind in DAY_KINDS:
            row = self.db.execute("SELECT id FROM media WHERE kind = ? AND label = ? ORDER BY created DESC LIMIT 1",
                                  (kind, day)).fetchone()
            out[kind] = {"media_id": row[0], "url": f"/media/{row[0]}"} if row else None
        return out

    def all(self) -> list[MediaRecord]:
        return [MediaRecord(*row) for row in self.db.execute(f"SELECT {COLUMNS} FROM media ORDER BY created")]

    def total_bytes(self) -> int:
        return self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM media").fetchone()[0]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM media").fetchone()[0]

    def children(self, groups: list[str]) -> dict[str, dict[str, str]]:
        """For each group id: {kind: media id} of the files in it."""
        out: dict[str, dict[str, str]] = {}
        for start in range(0, len(groups), 500):
            part = groups[start:start + 500]
            rows = self.db.execute(f"SELECT grp, kind, id FROM media WHERE grp IN ({','.join('?' * len(part))})", part)
            for grp, kind, media_id in rows:
                out.setdefault(grp, {})[kind] = media_id
        return out

    def delete(self, ids: list[str]) -> None:
        self.db.executemany("DELETE FROM media WHERE id = ?", [(i,) for i in ids])


def file_of(record: MediaRecord, folder: Path) -> Path:
    """The file of an indexed record; refuses anything that is not ``<id>.<ext>`` directly in ``folder``."""
    match = FILE_PATTERN.fullmatch(record.file)
    if match is None or match.group(1) != record.id:
        raise ValueError(f"index row {record.id!r} names an unexpected file {record.file!r}")
    return folder / record.file
