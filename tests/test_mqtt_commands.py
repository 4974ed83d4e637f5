"""Commands over MQTT as pure logic: validation with the topic's name, the result message, and the
duplicate-client-id kick-loop detector."""

from __future__ import annotations

import orjson
import pytest

from edge.core.commands import CommandError
from edge.protocol import messages
from edge.transports.mqtt.commands import parse_mqtt_command, result_payload
from edge.transports.mqtt.kickloop import KickLoopDetector

pytestmark = pytest.mark.unit

SUPPORTED = {"ping", "get_state", "get_events", "emit_test_event"}


def refused(name: str, payload: bytes, retained: bool = False) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse_mqtt_command(name, payload, retained, SUPPORTED)
    return info.value


def test_topic_names_the_command_and_fields_are_validated_like_websocket_commands() -> None:
    command = parse_mqtt_command("get_events", b'{"id": "q1", "since": 5, "limit": 10}', False, SUPPORTED)
    assert (command.type, command.id, command.args["since"], command.args["limit"]) == ("get_events", "q1", 5, 10)
    assert parse_mqtt_command("ping", b"", False, SUPPORTED).type == "ping"  # empty payload: no fields
    assert refused("get_events", b'{"id": "q2", "limit": 0}').code == "invalid_field"
    assert refused("get_events", b'{"id": "q2", "limit": 0}').request_id == "q2"


def test_malformed_unknown_mismatched_and_retained_commands_are_refused() -> None:
    assert refused("ping", b"{nope").code == "invalid_json"
    assert refused("ping", b"[1, 2]").code == "invalid_message"
    assert refused("reboot", b'{"id": 1}').code == "unknown_type"
    assert refused("resume", b'{"id": 1}').code == "unknown_type"  # not in the supported set
    mismatch = refused("ping", b'{"id": "m", "type": "emit_test_event"}')
    assert mismatch.code == "invalid_field" and mismatch.request_id == "m"
    stale = refused("emit_test_event", b'{"id": "old", "data": {}}', retained=True)
    assert stale.code == "retained" and stale.request_id == "old"
    assert refused("ping", b" " * 70000 + b"{}").code == "too_large"


def test_result_carries_the_request_id_and_ok_or_error() -> None:
    ok = orjson.loads(result_payload("get_state", messages.reply("r1", {"type": "get_state", "state": {}}), "dev"))
    assert ok["id"] == "r1" and ok["ok"] is True and ok["result"] == {"state": {}} and ok["command"] == "get_state"
    bad = orjson.loads(result_payload("ping", messages.error("invalid_json", "not JSON", None), "dev"))
    assert bad == {**bad, "id": None, "ok": False, "error": {"code": "invalid_json", "message": "not JSON"}}


def test_repeated_drops_right_after_connecting_are_reported_once_as_a_duplicate_client_id() -> None:
    detector = KickLoopDetector("dogmonitor-kitchen")
    now = 1000.0
    warnings = []
    for _ in range(5):
        detector.connected(now)
        now += 1.5
        warnings.append(detector.disconnected(now, "Unspecified error"))
        now += 1.0
    reported = [w for w in warnings if w]
    assert len(reported) == 1 and "dogmonitor-kitchen" in reported[0] and "DOGMON_DEVICE_ID" in reported[0]
    assert warnings[:2] == [None, None] and detector.suspected


def test_ordinary_network_drops_are_not_mistaken_for_a_kick_loop() -> None:
    detector = KickLoopDetector("dogmonitor-kitchen")
    now = 0.0
    for _ in range(5):  # long sessions that end now and then
        detector.connected(now)
        now += 600
        assert detector.disconnected(now, "Connection lost") is None
        now += 5
    assert not detector.suspected


def test_mqtt5_session_taken_over_is_reported_at_once() -> None:
    detector = KickLoopDetector("dogmonitor-kitchen")
    detector.connected(0.0)
    warning = detector.disconnected(400.0, "Session taken over")
    assert warning and "taken over" in warning
