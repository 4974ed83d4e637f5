"""The media commands: ``snapshot`` (waits for its file), ``bookmark`` (an event that starts or extends a clip)
and ``list_media`` (the index, each snapshot with its overlay and thumbnail, each clip with its poster).

``snapshot`` and ``bookmark`` write to disk, so each has a cooldown whatever transport asks; a flood must not
fill the media folder. Requests reach the media thread through its bounded control queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edge.core.bus import stored_seq
from edge.core.commands import Command, CommandError
from edge.media.handover import SnapshotRequest
from edge.media.index import CHILDREN, MediaIndex
from edge.media.planner import Trigger
from edge.media.worker import MediaWorker
from edge.protocol import messages
from edge.protocol.command_specs import COMMANDS
from edge.protocol.messages import EventType, Message
from edge.util import clock
from edge.util.ratelimit import Cooldown

SNAPSHOT_TIMEOUT = 10.0      # a snapshot command waits at most this long for its file
SNAPSHOT_COOLDOWN = 1.0      # seconds between requested snapshots, whatever transport asks (each is two files)
BOOKMARK_COOLDOWN = 2.0      # seconds between bookmarks (each is an event and extends or starts a clip)

# The validation the bus runs before these handlers (declared in edge.protocol.command_specs), by name.
validate_snapshot = COMMANDS["snapshot"].validate
validate_bookmark = COMMANDS["bookmark"].validate
validate_list_media = COMMANDS["list_media"].validate


class MediaCommands:
    def __init__(self, worker: MediaWorker, index: Callable[[], MediaIndex | None],
                 publish: Callable[[Message], None], loop: asyncio.AbstractEventLoop) -> None:
        self.worker, self._index, self.publish, self.loop = worker, index, publish, loop
        self.snapshot_cooldown = Cooldown(SNAPSHOT_COOLDOWN)
        self.bookmark_cooldown = Cooldown(BOOKMARK_COOLDOWN)

    async def snapshot(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        _cooling("snapshot", self.snapshot_cooldown)
        future = self.loop.create_future()
        request = SnapshotRequest(None, "request", clock.monotonic(), None, future)
        if not self.worker.send("snapshot", request):
            raise CommandError("busy", "too many media requests waiting; try again")
        try:
            return await asyncio.wait_for(future, SNAPSHOT_TIMEOUT)
        except TimeoutError:
            raise CommandError("timeout", f"no snapshot within {SNAPSHOT_TIMEOUT:g} s") from None

    async def bookmark(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        label = command.args["label"]
        _cooling("bookmark", self.bookmark_cooldown)
        now = clock.monotonic()
        event = messages.event(EventType.BOOKMARK_CREATED, {
            "label": label, "origin": context.get("transport"),
            "clip": "a clip_saved event with this seq in 'events' follows"})
        self.publish(event)
        seq = stored_seq(event, "the bookmark")  # no clip for a bookmark nobody can find again
        self.worker.send("clip", Trigger(seq, now, "bookmark", label or "bookmark"))
        return {"seq": seq, "label": label}

    async def list_media(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        index = self._index()
        assert index is not None
        args = command.args
        rows = index.listing(args["kind"], args["limit"], args["before"])
        families = index.children(sorted({r.group for r in rows if r.kind in CHILDREN}))
        listed = []
        for row in rows:
            described = row.describe()
            for child_kind, field in CHILDREN.get(row.kind, {}).items():
                child = families.get(row.group, {}).get(child_kind)
                if child is not None:
                    described[field] = child
            listed.append(described)
        return {"media": listed}


def _cooling(action: str, cooldown: Cooldown) -> None:
    """Refuse an action that writes to disk when asked again too soon (a flood must not fill the media)."""
    wait = cooldown.wait()
    if wait > 0:
        raise CommandError("cooldown", f"at most one {action} per {cooldown.seconds:g} s; try again in {wait:.1f} s")
