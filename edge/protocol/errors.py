"""Inbound command failures: the exception every validator and handler raises, and every error code.

Owns :class:`CommandError` (re-exported by :mod:`edge.core.commands`) and :data:`ERROR_CODES`, the closed
list of ``code`` values an ``error`` message or a failed MQTT ``cmd/result`` may carry. The published
schema allows exactly these codes, so a new code is declared here or fails the schema tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class CommandError(Exception):
    """``extra``: more fields of the ``error`` message's data, each declared in its schema (e.g. ``zone``)."""

    def __init__(self, code: str, message: str, request_id: Any = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id, self.extra = code, message, request_id, extra or {}


@dataclasses.dataclass(frozen=True)
class Command:
    type: str
    id: Any
    args: dict[str, Any]


# code -> when it is sent
ERROR_CODES: dict[str, str] = {
    "invalid_json": "the message (or MQTT payload) is not valid JSON",
    "invalid_message": "the message is not a JSON object with a string 'type'",
    "invalid_field": "a field has the wrong type or is out of range; the message names it",
    "unknown_type": "no such command (or not available on this transport); the message lists the known ones",
    "unsupported": "the command exists but this device or transport cannot run it",
    "disabled": "the command is switched off by configuration (e.g. DOGMON_TEST_EVENTS=0)",
    "invalid_zones": "set_zones refused the zone list; the message names the zone and the problem",
    "storage_failed": "the result could not be written to disk; nothing was changed",
    "storage_full": "the event could not be stored (the data disk is full); it was sent live only, with no seq",
    "no_frame": "no recent camera frame to take a snapshot from",
    "busy": "too many requests waiting; try again",
    "timeout": "the result did not arrive in time",
    "rate_limited": "more inbound messages per second than DOGMON_WS_RATE allows",
    "too_large": "the MQTT command payload is larger than 64 KiB",
    "cooldown": "snapshot or bookmark asked again before its cooldown ended; the message says when to retry",
    "shutting_down": "the device stopped before the command finished; nothing more is published after offline",
    "retained": "a retained MQTT command is refused (it would run again on every reconnect)",
    "unauthorized": "REST only: missing or wrong token (HTTP 401); WebSocket handshakes are refused with 401",
    "internal": "the handler failed unexpectedly; the device logged it",
}
