"""Inbound commands: the schema every transport (WebSocket, MQTT) validates against, as pure logic.

:func:`parse_command` turns raw bytes into a :class:`Command` or raises :class:`CommandError` with a
code and a message that names what was wrong. Handlers live with the parts they act on and are
registered on the bus by name; nothing acts on a command that failed validation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson

MAX_ID_LENGTH = 64


class CommandError(Exception):
    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id


@dataclasses.dataclass(frozen=True)
class Command:
    type: str
    id: Any
    args: dict[str, Any]


def _int(args: dict, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CommandError("invalid_field", f"'{name}' must be an integer from {lo} to {hi}")
    return value


def _number(args: dict, name: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError("invalid_field", f"'{name}' must be a number (unix seconds)")
    return float(value)


def _no_args(args: dict) -> dict:
    return {}


def _resume(args: dict) -> dict:
    return {"since": _int(args, "since", 0, 2**62)}


def _get_events(args: dict) -> dict:
    types = args.get("event_types")
    if types is not None and (not isinstance(types, list) or len(types) > 32
                              or not all(isinstance(t, str) and 0 < len(t) <= 40 for t in types)):
        raise CommandError("invalid_field", "'event_types' must be a list of up to 32 event type names")
    return {
        "since": _int(args, "since", 0, 2**62, 0),
        "limit": _int(args, "limit", 1, 1000, 100),
        "event_types": types,
        "from_ts": _number(args, "from_ts"),
        "to_ts": _number(args, "to_ts"),
    }


def _emit_test_event(args: dict) -> dict:
    data = args.get("data", {})
    if not isinstance(data, dict):
        raise CommandError("invalid_field", "'data' must be an object")
    return {"data": data}


# name -> validator of the command's fields (returns the cleaned arguments)
VALIDATORS: dict[str, Callable[[dict], dict]] = {
    "ping": _no_args,
    "get_state": _no_args,
    "resume": _resume,
    "get_events": _get_events,
    "emit_test_event": _emit_test_event,
}


def register_validator(name: str, validator: Callable[[dict], dict]) -> None:
    VALIDATORS[name] = validator


def decode_object(raw: bytes | str, what: str = "message", shape: str = "a JSON object with a 'type'") -> dict:
    """Parse JSON that must be an object; raise CommandError (invalid_json / invalid_message) otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CommandError("invalid_json", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CommandError("invalid_message", f"{what} must be {shape}")
    return body


def parse_command(raw: bytes | str, allowed: set[str] | None = None) -> Command:
    """Validate one inbound message; raise CommandError naming the problem."""
    return validate_command(decode_object(raw), allowed)


def validate_command(body: dict[str, Any], allowed: set[str] | None = None) -> Command:
    """Validate an already decoded command object (transports that decode themselves call this)."""
    request_id = body.get("id")
    if request_id is not None and not (
        (isinstance(request_id, str) and len(request_id) <= MAX_ID_LENGTH)
        or (isinstance(request_id, int) and not isinstance(request_id, bool))
    ):
        raise CommandError("invalid_field", f"'id' must be a string of at most {MAX_ID_LENGTH} characters "
                                            "or an integer")
    kind = body.get("type")
    if not isinstance(kind, str):
        raise CommandError("invalid_message", "message needs a string 'type'", request_id)
    validator = VALIDATORS.get(kind)
    if validator is None or (allowed is not None and kind not in allowed):
        known = sorted(VALIDATORS if allowed is None else allowed & VALIDATORS.keys())
        raise CommandError("unknown_type", f"unknown type {kind[:40]!r}; known: {', '.join(known)}", request_id)
    try:
        args = validator(body)
    except CommandError as exc:
        exc.request_id = request_id
        raise
    return Command(kind, request_id, args)
