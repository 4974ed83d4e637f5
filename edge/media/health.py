"""Whether media can be saved: the failure state, its one ``error`` event per spell, and ``/healthz`` phrases.

A save that fails (disk full, unwritable folder or index) fails the request that asked for it, reports an
``error`` event and one log line once until a save works again, and on a full disk asks for retention at
once. "No camera frame" fails only the request: nothing is wrong with the disk. A full disk is looked at
again whenever the problems are asked for (``/healthz``, telemetry): once the reserve is free again it is
no longer reported, without waiting for the next save.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from edge.core.commands import CommandError
from edge.media.handover import SnapshotRequest
from edge.media.writer import DiskFull
from edge.protocol import messages
from edge.protocol.messages import EventType, Message
from edge.util.spell import Spell

log = logging.getLogger(__name__)


ROOM_AGAIN = 2**20  # free bytes beyond the reserve that count as "the disk has room again"


class MediaHealth:
    def __init__(self, publish: Callable[[Message], None], make_room: Callable[[], None],
                 folder: Path | None = None, reserve: int = 0) -> None:
        self.publish, self.make_room = publish, make_room
        self.folder, self.reserve = folder, reserve
        self.failing: str | None = None
        self.disk_full = False
        self.spell = Spell()  # a failure spell lasts until a save works again

    def failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None:
        detail = exc.strerror or str(exc)
        full = isinstance(exc, DiskFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if self.failing is None or exc.errno == errno.ENODATA:
            log.error("media: %s not saved: %s", kind, detail)
        else:  # the spell was reported: one line, not one per save
            log.debug("media: %s not saved: %s", kind, detail)
        if request is not None and request.future is not None and not request.future.done():
            code = "no_frame" if exc.errno == errno.ENODATA else "storage_failed"
            request.future.set_exception(CommandError(code, f"{kind} not saved: {detail}"))
        if exc.errno == errno.ENODATA:
            return  # nothing wrong with the disk
        self.disk_full = self.disk_full or full
        if self.spell.occur().first:
            self.failing = detail
            self.publish(messages.event(EventType.ERROR, {
                "component": "media", "detail": detail, "disk_full": full,
                "effect": "snapshots and clips are not saved until there is room; detection and events go on"}))
        if full:
            self.make_room()

    def folder_unusable(self, detail: str) -> None:
        """The media folder cannot be made: said in ``/healthz`` and telemetry (no event: the log says it)."""
        self.failing = detail
        self.spell.occur()  # the log line below is its report
        log.error("%s", detail)

    def recovered(self) -> None:
        if self.spell.active:
            log.info("media: saving works again")
        self.spell.end()
        self.failing, self.disk_full = None, False

    def room_again(self) -> bool:
        """Whether a full disk has room again (the reserve and a little more free)."""
        if self.folder is None:
            return False
        try:
            return shutil.disk_usage(self.folder).free >= self.reserve + ROOM_AGAIN
        except OSError:
            return False

    def problems(self) -> list[str]:
        if self.disk_full and self.room_again():
            self.recovered()
        if self.disk_full:
            return ["media disk full"]
        return [f"media: {self.failing}"] if self.failing else []
