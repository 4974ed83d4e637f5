"""Whether media can be saved: the failure state, its one ``error`` event per spell, and ``/healthz`` phrases.

A save that fails (disk full, unwritable folder or index) fails the request that asked for it, reports an
``error`` event once until a save works again, and on a full disk asks for retention at once. "No camera
frame" fails only the request: nothing is wrong with the disk.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from edge.core.commands import CommandError
from edge.media.handover import SnapshotRequest
from edge.media.writer import DiskFull
from edge.protocol import messages
from edge.protocol.messages import EventType, Message
from edge.util.spell import Spell

log = logging.getLogger(__name__)


class MediaHealth:
    def __init__(self, publish: Callable[[Message], None], make_room: Callable[[], None]) -> None:
        self.publish, self.make_room = publish, make_room
        self.failing: str | None = None
        self.disk_full = False
        self.spell = Spell()  # a failure spell lasts until a save works again

    def failed(self, kind: str, exc: OSError, request: SnapshotRequest | None) -> None:
        detail = exc.strerror or str(exc)
        full = isinstance(exc, DiskFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT)
        log.error("media: %s not saved: %s", kind, detail)
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

    def problems(self) -> list[str]:
        if self.disk_full:
            return ["media disk full"]
        return [f"media: {self.failing}"] if self.failing else []
