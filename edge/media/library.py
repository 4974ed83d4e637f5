"""The media folder and its index kept in agreement, on the loop: adding a save, reconciling, retention.

A save's rows go in one transaction (a file without a row would escape retention, so its files are removed
when the index refuses it); at start and after the database was recreated, rows without a file go and files
without a row are adopted; retention (``plan_retention``: size and age) runs every ``RETENTION_INTERVAL``,
after each save, and when the disk is full, never twice at once. File removal runs off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

from edge.media.index import CONTENT_TYPES, FILE_PATTERN, MediaIndex, MediaRecord, group_of, kind_of
from edge.media.retention import Item, plan_retention
from edge.util import clock

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 600.0


class MediaLibrary:
    def __init__(self, folder: Path, max_bytes: int, max_age: float) -> None:
        self.folder, self.max_bytes, self.max_age = folder, max_bytes, max_age
        self.index: MediaIndex | None = None
        self.removed = 0
        self._task: asyncio.Task | None = None
        self._again = False

    def add(self, records: list[MediaRecord]) -> None:
        """Index one save's rows together; on a database error its files are removed and the error raised."""
        assert self.index is not None
        try:
            self.index.add(records)
        except sqlite3.Error:
            for record in records:  # an unindexed file would escape retention
                with contextlib.suppress(OSError):
                    (self.folder / record.file).unlink()
            raise

    async def reconcile(self) -> None:
        """Make the index and the folder agree: rows without a file go, files without a row are adopted."""
        assert self.index is not None
        try:
            names = await asyncio.to_thread(lambda: {p.name: p.stat() for p in self.folder.iterdir() if p.is_file()})
        except OSError as exc:
            log.error("media folder %s unreadable: %s", self.folder, exc)
            return
        rows = {r.file: r for r in self.index.all()}
        gone = [r.id for f, r in rows.items() if f not in names]
        adopted = []
        for name, stat in names.items():
            match = FILE_PATTERN.fullmatch(name)
            if match is None or name in rows:
                continue
            media_id, ext = match.groups()
            kind, group = kind_of(media_id), group_of(media_id)
            adopted.append(MediaRecord(media_id, kind, group, stat.st_mtime, name, stat.st_size, CONTENT_TYPES[ext]))
        try:
            if gone:
                self.index.delete(gone)
            if adopted:
                self.index.add(adopted)
        except sqlite3.Error as exc:
            log.error("media index reconcile failed: %s", exc)
        if gone or adopted:
            log.info("media: %d index row(s) without a file removed, %d file(s) without a row adopted",
                     len(gone), len(adopted))
        await self._retention()

    def schedule_retention(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._retention())

    async def retention_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            self.schedule_retention()

    async def _retention(self) -> None:
        assert self.index is not None
        while True:
            self._again = False
            try:
                records = self.index.all()
                items = [Item(r.id, r.group, r.created, r.bytes) for r in records]
                doomed = set(plan_retention(items, self.max_bytes, self.max_age, clock.now()))
                if doomed:
                    files = [self.folder / r.file for r in records if r.id in doomed]
                    await asyncio.to_thread(_unlink_all, files)
                    self.index.delete(sorted(doomed))
                    self.removed += len(doomed)
                    log.info("media retention removed %d file(s)", len(doomed))
            except (OSError, sqlite3.Error) as exc:
                log.error("media retention failed: %s", exc)
            if not self._again:
                return


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
