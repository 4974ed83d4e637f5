"""The MQTT event outbox as pure logic: what goes out next, what is in flight, what is marked delivered.

Events are never published from memory only: the outbox *is* the event log, reached through the narrow
:class:`EventLog` (the event store has these two methods; no SQLite here, no paho). At most
``max_inflight`` events are out at a time, in seq order; the publisher reports the message id the session
gave each one (:meth:`Outbox.sent`) and the broker's acknowledgements by that id (:meth:`Outbox.acked`).
An id that is not in flight (a second ack of the same message, or the ack of a publish that was no event)
changes nothing. Acks are collected and marked delivered in one batch (:meth:`Outbox.flush`: one
transaction, one fsync), each event by its own ack: an ack never marks an earlier event that is still
waiting for its own, so acks arriving out of order lose nothing.

After a reconnect the session sends the events in flight again, in order and under the same ids (paho
keeps them and sets DUP); the outbox keeps waiting for their acks and hands out nothing twice. After a
restart a new outbox starts at the beginning of the log, which holds exactly the events never
acknowledged: they go out again, so a subscriber may see an event twice, always with the same ``seq``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Protocol


class EventLog(Protocol):
    """The part of the event store the outbox reads and writes."""

    def undelivered(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]: ...

    def mark_delivered(self, seqs: Sequence[int]) -> None: ...

    def undelivered_count(self) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """One stored event to publish: its number and its encoded bytes (published unchanged)."""

    seq: int
    payload: bytes


class Ack(enum.Enum):
    """What an acknowledgement meant to the outbox."""

    UNKNOWN = "unknown"       # no event in flight has this id: a second ack, or the ack of another publish
    NEW_BATCH = "new_batch"   # the first since the last flush: flush after a short wait, to mark several at once
    BATCHED = "batched"       # joins the batch waiting for its flush


class Outbox:
    """The events between the log and the broker (loop thread only)."""

    def __init__(self, log: EventLog, max_inflight: int = 32) -> None:
        self.log = log
        self.max_inflight = max_inflight
        self.cursor = 0                         # highest seq handed to the session
        self._inflight: dict[int, Send] = {}    # message id -> event, in the order they were handed out
        self._acked: list[int] = []             # acknowledged, not yet marked delivered
        self.closed = False                     # shutdown began: nothing new goes out

    def due(self) -> list[Send]:
        """The next undelivered events, in seq order, as many as fit beside those in flight (none once closed).

        Publish them in this order and report each with :meth:`sent`; stop at the first the session
        refuses: it is handed out again by the next call.
        """
        room = self.max_inflight - len(self._inflight)
        if room <= 0 or self.closed:
            return []
        return [Send(seq, payload) for seq, payload in self.log.undelivered(self.cursor, room)]

    def sent(self, send: Send, mid: int) -> None:
        """The session took ``send`` under message id ``mid``."""
        if send.seq <= self.cursor:
            raise ValueError(f"event {send.seq} handed out after {self.cursor}: publish in the order of due()")
        self._inflight[mid] = send
        self.cursor = send.seq

    def acked(self, mid: int) -> Ack:
        """The broker acknowledged message ``mid``."""
        send = self._inflight.pop(mid, None)
        if send is None:
            return Ack.UNKNOWN
        self._acked.append(send.seq)
        return Ack.NEW_BATCH if len(self._acked) == 1 else Ack.BATCHED

    def flush(self) -> list[int]:
        """Mark the acknowledged events delivered in the log, in one call; returns their seqs."""
        acked, self._acked = self._acked, []
        if acked:
            self.log.mark_delivered(acked)
        return acked

    def close(self) -> None:
        """Shutdown began: hand out nothing new; acks of the events in flight are still taken."""
        self.closed = True

    @property
    def in_flight(self) -> list[Send]:
        """The events waiting for their ack, in the order they went out (what a reconnect sends again)."""
        return list(self._inflight.values())

    def pending(self) -> int:
        """Events in the log not yet acknowledged, those in flight included."""
        return self.log.undelivered_count()

    @property
    def drained(self) -> bool:
        """No event is waiting for its ack."""
        return not self._inflight
