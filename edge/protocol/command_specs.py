"""Every inbound command: its arguments (schema and validator in one) and its reply, :data:`COMMANDS`.

Owns the command contract for all transports. :meth:`CommandSpec.validate` is what
:func:`edge.core.commands.validate_command` runs (so nothing acts on a request that fails it), and
:meth:`CommandSpec.args_schema` / :meth:`CommandSpec.result_schema` are the JSON Schemas the AsyncAPI
and OpenAPI documents publish. Handlers stay with the parts they act on and are registered on the bus
by name; a handler without a declaration here is unreachable (``unknown_type``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from edge.protocol.errors import CommandError
from edge.protocol.schema import (
    Arg,
    Schema,
    array,
    choice_arg,
    const,
    custom_arg,
    int_arg,
    integer,
    names_arg,
    nullable,
    obj,
    object_arg,
    ref,
    string,
    text_arg,
    time_arg,
)
from edge.protocol.shapes import MEDIA_KINDS, SHAPES
from edge.protocol.zones import MAX_ZONES, ZoneError, parse_zones

MAX_SEQ = 2**62
COMMAND_ID_MAX_LENGTH = 64  # a request id: a string of at most this many characters, or an integer
MAX_LABEL = 100
TRANSPORTS = frozenset({"ws", "mqtt"})


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    args: tuple[Arg, ...] = ()
    result: dict[str, Schema] = dataclasses.field(default_factory=dict)  # reply fields besides id and type
    errors: tuple[str, ...] = ()        # codes beyond the ones every command may get
    transports: frozenset[str] = TRANSPORTS
    result_optional: tuple[str, ...] = ()

    def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The cleaned arguments of an inbound message; CommandError naming the first bad field."""
        return {arg.name: arg.clean(body) for arg in self.args}

    def args_schema(self) -> Schema:
        """The JSON Schema of the command's fields (the WebSocket message adds ``type`` and ``id``)."""
        return {"type": "object", "properties": {a.name: a.published() for a in self.args},
                "required": [a.name for a in self.args if a.required]}

    def result_schema(self) -> Schema:
        """The JSON Schema of the result (the WebSocket reply's ``data`` adds ``id`` and ``type``)."""
        return obj(self.result, optional=self.result_optional)


def _zones(value: Any) -> Any:
    try:
        return parse_zones(value)
    except ZoneError as exc:
        where = None if exc.index is None else {"zone": {"index": exc.index, "field": exc.field}}
        raise CommandError("invalid_zones", str(exc), extra=where) from None


def _day(value: Any) -> str:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise CommandError("invalid_field", "'day' must be a date as YYYY-MM-DD (device local time)") from None


DEVICE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Commands a page may send to another device of the home through this one (``device``: the peer's id).
RELAYED = frozenset({"get_state", "get_events", "snapshot", "bookmark", "get_zones", "set_zones", "get_analytics",
                     "get_diary", "list_media"})


def _device(value: Any) -> str:
    if not isinstance(value, str) or re.fullmatch(DEVICE_PATTERN, value) is None:
        raise CommandError("invalid_field", "'device' must be a device id (1-64 of a-z, 0-9, '_', '-')")
    return value


DEVICE_ARG = custom_arg("device", string("another device of the home (its device_id): the command is relayed to it "
                                         "and its reply returned; absent or this device's id: run here",
                                         pattern=DEVICE_PATTERN), _device)
_last_seq = integer("newest event seq")
_seq = integer("seq of the event it created")

_CATALOGUE: tuple[CommandSpec, ...] = (
    CommandSpec("ping", "liveness check", result={"pong": const(True), "last_seq": _last_seq}),
    CommandSpec("get_state", "the current state", result={"state": ref("State"), "last_seq": _last_seq}),
    CommandSpec("resume", "replay stored events after `since`, then continue live (WebSocket only)",
                (dataclasses.replace(int_arg("since", 0, MAX_SEQ, None, "the last seq the client processed"),
                                     required=True),),
                {"since": integer("as asked"), "until": integer("replay runs up to this seq")},
                ("invalid_field", "unsupported"), frozenset({"ws"})),
    CommandSpec("get_events", "stored events, oldest first", (
        names_arg("event_types", 32, 40, "event type names", "only these event types"),
        int_arg("since", 0, MAX_SEQ, 0, "events with seq above this"),
        int_arg("limit", 1, 1000, 100, "at most this many"),
        time_arg("from_ts", "events at or after this time (unix s)"),
        time_arg("to_ts", "events at or before this time (unix s)"),
    ), {"events": array(ref("Event"), "event envelopes as sent live"),
        "first_seq": nullable(integer("oldest stored seq")), "last_seq": _last_seq}, ("invalid_field",)),
    CommandSpec("emit_test_event", "send a `test` event through the real event path (DOGMON_TEST_EVENTS=1)",
                (object_arg("data", "fields of the test event"),), {"seq": _seq},
                ("invalid_field", "disabled", "storage_full")),
    CommandSpec("set_zones", "replace every zone (`[]` deletes all); nothing changes on error",
                (custom_arg("zones", array(ref("ZoneInput"), "the complete list", max_items=MAX_ZONES), _zones,
                            required=True),),
                {"zones": array(ref("Zone"), "the zones now stored"), "count": integer("how many")},
                ("invalid_zones", "storage_failed")),
    CommandSpec("get_zones", "the zones with their occupancy", result={"zones": array(ref("ZoneView"))}),
    CommandSpec("get_heatmap", "the heat map (also broadcast as a heatmap overlay)",
                result={"heatmap": ref("Heatmap")}),
    CommandSpec("get_analytics", "one day's analytics", (
        custom_arg("day", string("YYYY-MM-DD, device local time (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"),
                   _day),), {"analytics": ref("AnalyticsDay")}, ("invalid_field",)),
    CommandSpec("get_diary", "one day's diary: episodes, totals, snapshots (today so far, or a finished day)", (
        custom_arg("day", string("YYYY-MM-DD, device local time (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"),
                   _day),), {"diary": ref("Diary")}, ("invalid_field",)),
    CommandSpec("snapshot", "save a snapshot now; the reply comes once it is on disk",
                result={**SHAPES["SnapshotSaved"]["properties"], "seq": _seq},
                errors=("no_frame", "storage_failed", "storage_full", "busy", "timeout", "cooldown")),
    CommandSpec("bookmark", "mark this moment: a bookmark_created event, then a clip with the label",
                (text_arg("label", MAX_LABEL, "what happened (optional)"),),
                {"seq": _seq, "label": string("the label as stored")}, ("invalid_field", "cooldown", "storage_full")),
    CommandSpec("make_highlights", "make a day's highlight reel and time-lapse now (default: today so far); the "
                "reply comes once both are saved (also announced as highlights_saved / timelapse_saved)", (
        custom_arg("day", string("YYYY-MM-DD, device local time (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"),
                   _day),), {
        "day": string("the day made"),
        "highlights": nullable(obj({"media_id": string(), "url": string()}, "null: no moment with a clip that day")),
        "timelapse": nullable(obj({"media_id": string(), "url": string()}, "null: no time-lapse frame that day"))},
        ("invalid_field", "busy", "storage_failed")),
    CommandSpec("list_media", "stored snapshots, clips, highlight reels and time-lapses, newest first", (
        choice_arg("kind", MEDIA_KINDS, "only this kind"),
        int_arg("limit", 1, 500, 50, "at most this many"),
        time_arg("before", "created before this time (unix s)"),
    ), {"media": array(ref("MediaItem"))}, ("invalid_field",)),
)

_CATALOGUE += (
    CommandSpec("get_peers", "the other devices of the home this device knows from the broker (also pushed as "
                "`peers` on every change)", result={"peers": array(ref("Peer"), "this device not included")}),
)
_CATALOGUE = tuple(dataclasses.replace(spec, args=(*spec.args, DEVICE_ARG), errors=(*spec.errors, "unknown_device"))
                   if spec.name in RELAYED else spec for spec in _CATALOGUE)

COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in _CATALOGUE}
