"""The device's own commands (edge.core.device_commands) on a real bus and an event store on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from edge.core.bus import Bus
from edge.core.commands import parse_command
from edge.core.device_commands import DeviceCommands
from edge.core.store import EventStore
from edge.protocol import messages
from edge.protocol.messages import MessageType

pytestmark = pytest.mark.unit


def ask(bus: Bus, body: dict) -> messages.Message:
    return bus.loop.run_until_complete(bus.dispatch(parse_command(orjson.dumps(body)), {"transport": "test"}))


@pytest.fixture
def bus(tmp_path: Path):
    loop = asyncio.new_event_loop()
    store = EventStore(tmp_path)
    yield Bus("kitchen", store, loop)
    store.close()
    loop.close()


def test_test_events_are_refused_unless_turned_on(bus: Bus) -> None:
    DeviceCommands(bus, bus.store, test_events=False).register()
    answer = ask(bus, {"type": "emit_test_event", "id": 1, "data": {"note": "hi"}})
    assert answer.type is MessageType.ERROR and answer.data["code"] == "disabled"
    assert bus.store.last_seq == 0


def test_a_test_event_is_stored_and_read_back_with_get_events(bus: Bus) -> None:
    DeviceCommands(bus, bus.store, test_events=True).register()
    sent = ask(bus, {"type": "emit_test_event", "id": 1, "data": {"note": "hi"}})
    assert sent.type is MessageType.REPLY and sent.data["seq"] == 1
    events = orjson.loads(messages.encode(ask(bus, {"type": "get_events", "id": 2}), "kitchen"))["data"]
    assert events["last_seq"] == 1 and events["first_seq"] == 1
    [event] = events["events"]
    assert event["event_type"] == "test" and event["data"] == {"note": "hi", "origin": "test"}


def test_get_state_answers_the_bus_state_and_last_seq(bus: Bus) -> None:
    DeviceCommands(bus, bus.store, test_events=False).register()
    bus.update_state(dog_present=True)
    state = ask(bus, {"type": "get_state", "id": "s"})
    assert state.type is MessageType.REPLY
    assert state.data["state"]["dog_present"] is True and state.data["last_seq"] == 0
