"""Inbound command failures: the exception every validator and handler raises, and every error code.

Owns :class:`CommandError` (re-exported by :mod:`edge.core.commands`) and :data:`ERRORS`, the closed
list of ``code`` values an ``error`` message or a failed MQTT ``cmd/result`` may carry, each with the
HTTP status of a REST answer carrying it (:data:`ERROR_STATUS`, used by the web server, REST and the
OpenAPI document alike). The published schema allows exactly these codes, so a new code is declared
here or fails the schema tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple


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


class ErrorCode(NamedTuple):
    status: int      # the HTTP status of a REST answer that carries the code
    meaning: str     # when it is sent


# Every code with its HTTP status: the one map REST, the web server and the OpenAPI document use.
ERRORS: dict[str, ErrorCode] = {
    "invalid_json": ErrorCode(400, "the message (or MQTT payload) is not valid JSON"),
    "invalid_message": ErrorCode(400, "the message is not a JSON object with a string 'type'"),
    "invalid_field": ErrorCode(400, "a field has the wrong type or is out of range; the message names it"),
    "unknown_type": ErrorCode(404,
                              "no such command (or not available on this transport); "
                              "the message lists the known ones"),
    "unsupported": ErrorCode(501, "the command exists but this device or transport cannot run it"),
    "disabled": ErrorCode(403, "the command is switched off by configuration (e.g. DOGMON_TEST_EVENTS=0)"),
    "invalid_zones": ErrorCode(400, "set_zones refused the zone list; the message names the zone and the problem"),
    "storage_failed": ErrorCode(507, "the result could not be written to disk; nothing was changed"),
    "no_frame": ErrorCode(503, "no recent camera frame to take a snapshot from"),
    "busy": ErrorCode(503, "too many requests waiting; try again"),
    "timeout": ErrorCode(504, "the result did not arrive in time"),
    "rate_limited": ErrorCode(429, "more inbound messages per second than DOGMON_WS_RATE allows"),
    "too_large": ErrorCode(413, "the MQTT command payload is larger than 64 KiB"),
    "cooldown": ErrorCode(429,
                          "snapshot or bookmark asked again before its cooldown ended; "
                          "the message says when to retry"),
    "shutting_down": ErrorCode(503,
                               "the device stopped before the command finished; "
                               "nothing more is published after offline"),
    "retained": ErrorCode(400, "a retained MQTT command is refused (it would run again on every reconnect)"),
    "unauthorized": ErrorCode(401,
                              "REST only: missing or wrong token (HTTP 401); "
                              "WebSocket handshakes are refused with 401"),
    "storage_full": ErrorCode(507, "the event could not be stored (the data disk is full); "
                                   "it was sent live only, with no seq"),
    "unknown_device": ErrorCode(404, "`device` names no verified peer of this home (DOGMON_HOME_SECRET), or the "
                                     "peer is offline"),
    "internal": ErrorCode(500, "the handler failed unexpectedly; the device logged it"),
}
ERROR_CODES: dict[str, str] = {code: error.meaning for code, error in ERRORS.items()}
ERROR_STATUS: dict[str, int] = {code: error.status for code, error in ERRORS.items()}
