"""The MQTT transport's pure core without a broker: the event outbox over a real event store (in flight,
reconnect, duplicate and out-of-order acks, ack batching, restart) and the connection's state machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.core.store import EventStore
from edge.protocol.command_specs import COMMANDS
from edge.transports.mqtt import ha
from edge.transports.mqtt.connection import TRANSITIONS, Connection, ConnectionState, IllegalTransition
from edge.transports.mqtt.outbox import Ack, Outbox, Send

pytestmark = pytest.mark.unit

S = ConnectionState


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    store = EventStore(tmp_path)
    for n in range(1, 7):
        store.append(1000.0 + n, "test", lambda seq: b'{"type":"event","seq":%d}' % seq)
    return store


def publish(outbox: Outbox, first_mid: int) -> list[int]:
    """What the bridge does: hand out what is due, each under the next message id; returns the seqs."""
    sends = outbox.due()
    for mid, send in enumerate(sends, first_mid):
        outbox.sent(send, mid)
    return [s.seq for s in sends]


def undelivered(store: EventStore) -> list[int]:
    return [seq for seq, _ in store.undelivered(0, 100)]


def test_events_go_out_in_order_and_at_most_max_inflight_at_a_time(store: EventStore) -> None:
    outbox = Outbox(store, max_inflight=3)
    assert publish(outbox, 1) == [1, 2, 3]
    assert outbox.due() == []                       # the window is full
    assert outbox.acked(1) is Ack.NEW_BATCH
    assert publish(outbox, 4) == [4]                # one freed slot, the next event in order
    assert outbox.due() == []
    outbox.acked(3)
    assert outbox.due() == [Send(5, b'{"type":"event","seq":5}')]


def test_after_a_reconnect_the_events_in_flight_go_again_in_order_and_nothing_twice(store: EventStore) -> None:
    outbox = Outbox(store, max_inflight=3)
    publish(outbox, 11)
    outbox.acked(11)
    # The link drops and comes back: the session sends what is still in flight again, in order, same ids.
    assert [(s.seq, s.payload) for s in outbox.in_flight] == [(2, b'{"type":"event","seq":2}'),
                                                              (3, b'{"type":"event","seq":3}')]
    assert publish(outbox, 14) == [4]               # only never-sent events are handed out, after them
    assert [s.seq for s in outbox.in_flight] == [2, 3, 4]
    for mid in (12, 13, 14):                        # the acks of the copies sent again
        outbox.acked(mid)
    outbox.flush()
    assert outbox.drained and undelivered(store) == [5, 6]


def test_a_duplicate_ack_or_the_ack_of_another_publish_changes_nothing(store: EventStore) -> None:
    outbox = Outbox(store)
    publish(outbox, 1)
    assert outbox.acked(2) is Ack.NEW_BATCH
    assert outbox.acked(2) is Ack.UNKNOWN           # the broker acked the original and the DUP copy
    assert outbox.acked(500) is Ack.UNKNOWN         # e.g. the ack of a retained state publish
    assert outbox.flush() == [2]
    assert undelivered(store) == [1, 3, 4, 5, 6]
    assert [s.seq for s in outbox.in_flight] == [1, 3, 4, 5, 6]


def test_an_out_of_order_ack_marks_only_its_own_event(store: EventStore) -> None:
    outbox = Outbox(store)
    publish(outbox, 1)
    outbox.acked(3)
    outbox.acked(1)
    outbox.flush()
    assert undelivered(store) == [2, 4, 5, 6]       # event 2 still waits for its own ack
    outbox.acked(2)
    outbox.flush()
    assert undelivered(store) == [4, 5, 6]


def test_acks_are_marked_delivered_in_batches(store: EventStore) -> None:
    outbox = Outbox(store)
    publish(outbox, 1)
    assert [outbox.acked(m) for m in (1, 2, 3)] == [Ack.NEW_BATCH, Ack.BATCHED, Ack.BATCHED]
    assert undelivered(store) == [1, 2, 3, 4, 5, 6]  # nothing written before the flush
    assert outbox.flush() == [1, 2, 3] and undelivered(store) == [4, 5, 6]
    assert outbox.flush() == []
    assert outbox.acked(4) is Ack.NEW_BATCH          # the next ack starts the next batch


def test_after_a_restart_exactly_the_unacknowledged_events_go_out_again(store: EventStore, tmp_path: Path) -> None:
    outbox = Outbox(store)
    publish(outbox, 1)
    for mid in (1, 2, 4, 6):
        outbox.acked(mid)
    outbox.flush()
    outbox.acked(5)        # acknowledged, but the process dies before the flush: sent again, same seq
    store.close()

    reopened = EventStore(tmp_path)
    again = Outbox(reopened)
    assert again.due() == [Send(3, b'{"type":"event","seq":3}'), Send(5, b'{"type":"event","seq":5}')]


def test_once_closed_nothing_new_goes_out_but_acks_are_still_taken(store: EventStore) -> None:
    outbox = Outbox(store, max_inflight=2)
    publish(outbox, 1)
    outbox.close()
    assert outbox.acked(1) is Ack.NEW_BATCH and outbox.due() == []
    assert not outbox.drained
    outbox.acked(2)
    assert outbox.drained and outbox.flush() == [1, 2] and outbox.pending() == 4


def test_events_must_be_handed_out_in_the_order_they_are_due(store: EventStore) -> None:
    outbox = Outbox(store)
    first, second = outbox.due()[:2]
    outbox.sent(second, 1)
    with pytest.raises(ValueError):
        outbox.sent(first, 2)


# --- the connection ---

def test_an_outage_is_reported_once_and_its_end_once() -> None:
    link = Connection("dogmonitor-kitchen")
    assert link.state is S.CONNECTING and not link.connected
    assert link.unreachable() is True and link.state is S.UNREACHABLE
    assert link.unreachable() is False               # the same outage
    assert link.accepted(now=10.0) is True and link.connected and link.connects == 1
    loss = link.lost(now=100.0, reason="Unspecified error")
    assert loss is not None and loss.report_offline and loss.warning is None
    assert link.state is S.DISCONNECTED and link.disconnects == 1
    assert link.lost(now=101.0, reason="again") is None  # not up: paho also says so after a failed attempt
    refusal = link.refused("Server unavailable")
    assert refusal is not None and not refusal.auth and not refusal.report_offline and link.state is S.REFUSED
    assert link.accepted(now=110.0) is True and link.state.value == "connected"


def test_bad_credentials_wait_for_one_retry_and_say_so() -> None:
    link = Connection("dogmonitor-kitchen")
    first = link.refused("Not authorized")
    assert first is not None and first.auth and first.retry_later and first.report_offline
    assert link.state is S.AUTH_FAILED and link.auth_failed and link.state.value == "auth_failed"
    second = link.refused("Not authorized")          # arrived before paho's retries stopped
    assert second is not None and not second.retry_later
    assert link.unreachable() is False and link.state is S.AUTH_FAILED  # the verdict stands
    assert link.retry_due() and link.state is S.CONNECTING
    assert link.refused("Bad user name or password").retry_later  # still wrong: wait again


def test_being_kicked_off_again_and_again_is_reported_as_a_duplicate_client_id() -> None:
    link = Connection("dogmonitor-kitchen")
    warnings = []
    for n in range(3):
        link.accepted(now=100.0 + 10 * n)
        loss = link.lost(now=101.0 + 10 * n, reason="Unspecified error")
        assert loss is not None
        warnings.append(loss.warning)
    assert warnings[:2] == [None, None] and warnings[2] is not None and "DOGMON_DEVICE_ID" in warnings[2]
    assert link.state is S.KICKED and link.state.value == "kicked_repeatedly" and link.kick_loop.suspected


def test_shutdown_ignores_the_network_and_ends_closed() -> None:
    link = Connection("dogmonitor-kitchen")
    link.accepted(now=1.0)
    assert link.close() is True and link.state is S.CLOSING and not link.connected
    assert link.lost(now=2.0, reason="gone") is None and link.accepted(now=3.0) is None
    assert link.refused("Not authorized") is None and link.unreachable() is None and not link.retry_due()
    link.closed()
    assert link.state is S.CLOSED and link.disconnects == 0


def test_a_move_the_connection_cannot_make_raises() -> None:
    link = Connection("dogmonitor-kitchen")
    with pytest.raises(IllegalTransition):
        link.move(S.KICKED)                          # nothing to be kicked off from
    link.move(S.AUTH_FAILED)
    with pytest.raises(IllegalTransition):
        link.move(S.UNREACHABLE)
    link.closed()
    for state in S:
        if state is not S.CLOSED:
            with pytest.raises(IllegalTransition):
                link.move(state)
    assert TRANSITIONS[S.CLOSED] == frozenset() and set(TRANSITIONS) == set(S)


def test_home_assistant_buttons_press_only_commands_the_device_has_over_mqtt() -> None:
    over_mqtt = {name for name, spec in COMMANDS.items() if "mqtt" in spec.transports}
    buttons = ha.BUTTON_COMMANDS  # the media feature's; there is no command that saves a clip on demand
    assert buttons == {"snapshot", "bookmark"} and buttons <= over_mqtt
    info = ha.DeviceInfo(device_id="kitchen", mqtt_prefix="dogmonitor", ha_prefix="homeassistant", sw_version="1")
    offered = ha.button_entities(info, {"snapshot", "bookmark", "take_snapshot", "save_clip", "clip", "ping"})
    assert sorted(t.split("/")[3] for t in offered if t.split("/")[1] == "button") == ["bookmark", "snapshot"]
