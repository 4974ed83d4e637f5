"""Inbound commands: parsing and validation every transport (WebSocket, MQTT) shares, as pure logic.

:func:`parse_command` turns raw bytes into a :class:`Command` or raises :class:`CommandError` with a
code and a message that names what was wrong. What each command accepts is declared once in
:mod:`edge.protocol.command_specs`; :data:`VALIDATORS` is derived from it. Handlers live with the
parts they act on and are registered on the bus by name; nothing acts on a command that failed
validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from edge.protocol.command_specs import COMMAND_ID_MAX_LENGTH, COMMANDS
from edge.protocol.errors import Command, CommandError

__all__ = ["MAX_ID_LENGTH", "VALIDATORS", "Command", "CommandError", "decode_object", "parse_command",
           "validate_command"]

MAX_ID_LENGTH = COMMAND_ID_MAX_LENGTH

# name -> validator of the command's fields (returns the cleaned arguments), from the protocol definition
VALIDATORS: dict[str, Callable[[dict], dict]] = {name: spec.validate for name, spec in COMMANDS.items()}


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
