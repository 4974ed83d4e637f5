"""The inbound handler never raises, whatever a client sends (hypothesis), and get_events filters."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.core.bus import Bus
from edge.core.commands import VALIDATORS
from edge.core.device_commands import DeviceCommands
from edge.core.store import EventStore
from edge.protocol import messages
from edge.protocol.messages import MessageType
from edge.transports.ws import WebSocketHub

pytestmark = pytest.mark.unit

# Every command is declared in edge.protocol, so VALIDATORS already holds the features' commands too.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
commands = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(VALIDATORS)) | st.text(max_size=12)},
    optional={"id": json_values, "since": json_values, "limit": json_values, "event_types": json_values,
              "from_ts": json_values, "to_ts": json_values, "data": json_values, "zones": json_values,
              "day": json_values, "label": json_values},
)


def make_hub() -> tuple[WebSocketHub, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    bus = Bus("fuzz", EventStore(None), loop)
    return WebSocketHub(bus, "127.0.0.1", 0), loop


HUB, LOOP = make_hub()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), commands.map(orjson.dumps)))
def test_any_input_gets_a_reply_or_an_error_never_an_exception(raw: bytes | str) -> None:
    answer = LOOP.run_until_complete(HUB.handle_raw(raw, None))
    assert answer.type in (MessageType.REPLY, MessageType.ERROR)
    if answer.type is MessageType.ERROR:
        assert answer.data["code"] and answer.data["message"]
    messages.encode(answer, "fuzz")  # and it can always be sent


def test_get_events_filters_by_type_and_time() -> None:
    hub, loop = make_hub()
    for i, kind in enumerate(["dog_detected", "sit", "dog_left", "sit"]):
        hub.bus.publish(messages.event(kind, {"i": i}, ts=1000.0 + i))
    hub.bus.handle("get_events", _get_events_handler(hub))

    def ask(body: dict) -> dict:
        answer = loop.run_until_complete(hub.handle_raw(orjson.dumps(body), None))
        return orjson.loads(messages.encode(answer, "fuzz"))["data"]

    only_sit = ask({"type": "get_events", "id": "a", "event_types": ["sit"]})
    assert only_sit["id"] == "a" and [e["seq"] for e in only_sit["events"]] == [2, 4]
    window = ask({"type": "get_events", "from_ts": 1001, "to_ts": 1002})
    assert [e["event_type"] for e in window["events"]] == ["sit", "dog_left"]
    paged = ask({"type": "get_events", "since": 1, "limit": 2})
    assert [e["seq"] for e in paged["events"]] == [2, 3]


def _get_events_handler(hub: WebSocketHub):
    # the handler the device registers, bound to this hub's bus and store
    return DeviceCommands(hub.bus, hub.bus.store, test_events=False).get_events
