"""The device's own commands: ``get_state``, ``get_events`` and ``emit_test_event``.

Answered on every transport through the bus; the arguments are validated before a handler runs (declared in
edge.protocol.command_specs). Features add their own commands through ``Host.handle``.
"""

from __future__ import annotations

from typing import Any

import orjson

from edge.core.bus import Bus, stored_seq
from edge.core.commands import Command, CommandError
from edge.core.store import EventStore
from edge.protocol import messages
from edge.protocol.messages import EventType


class DeviceCommands:
    def __init__(self, bus: Bus, store: EventStore, *, test_events: bool) -> None:
        self.bus, self.store, self.test_events = bus, store, test_events

    def register(self) -> None:
        """Answer the three commands on the bus (and so on every transport)."""
        self.bus.handle("emit_test_event", self.emit_test_event)
        self.bus.handle("get_events", self.get_events)
        self.bus.handle("get_state", self.get_state)

    async def emit_test_event(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        """A ``test`` event through exactly the path real events take (only with DOGMON_TEST_EVENTS=1)."""
        if not self.test_events:
            raise CommandError("disabled", "test events are off; set DOGMON_TEST_EVENTS=1 to allow them")
        message = messages.event(EventType.TEST, {**command.args["data"], "origin": context.get("transport")})
        self.bus.publish(message)
        return {"seq": stored_seq(message, "the test event")}

    async def get_events(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        """Stored events, oldest first, filtered by seq, type and time; each is sent as it was stored."""
        args = command.args
        rows = self.store.events(args["since"], args["limit"], args["event_types"], args["from_ts"], args["to_ts"])
        return {"events": [orjson.Fragment(payload) for _, payload in rows],
                "last_seq": self.store.last_seq, "first_seq": self.store.first_seq()}

    async def get_state(self, command: Command, context: dict[str, Any]) -> dict[str, Any]:
        return {"state": self.bus.state.snapshot(), "last_seq": self.store.last_seq}
