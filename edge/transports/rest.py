"""The REST API under ``/api/``: the same commands as WebSocket and MQTT, plus the seed's test broadcasts.

Owns :data:`ROUTES` (method, path, command, where the arguments come from: the single list the
server registers and the OpenAPI document describes) and the translation of a request into a command
body (query strings typed by the command's own argument schema). A request is validated by
:func:`edge.core.commands.validate_command` and run by :meth:`edge.core.bus.Bus.dispatch`, exactly as a
WebSocket message is: one handler, three transports, the same results and error codes. A REST
result is the WebSocket reply's ``data`` without ``id`` and ``type``; a refusal is a raised
:class:`~edge.core.commands.CommandError`, which the web server answers with
``{"error": {"code", "message"}}`` and the code's status (:data:`edge.protocol.errors.ERRORS`).

Test broadcasts (``POST /api/events/broadcast[/overlay|/telemetry]``, only with
``DOGMON_TEST_EVENTS=1``) go to every WebSocket client as they are, marked ``"test": true`` and
without ``seq``: they are not stored, not replayed, not published on MQTT (so Home Assistant never
sees them) and never reach the bus's listeners (analytics, state, media triggers).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from edge.core.bus import Bus
from edge.core.commands import CommandError, decode_object, validate_command
from edge.protocol.asyncapi import asyncapi_document
from edge.protocol.command_specs import COMMANDS
from edge.protocol.events import catalogue
from edge.protocol.messages import PROTOCOL_VERSION, Message, MessageType
from edge.protocol.openapi import Route, openapi_document
from edge.util import clock
from edge.util.ratelimit import RateLimiter
from edge.web.server import OrjsonResponse, WebServer, error_response, json_response, peer_of, read_body

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/state", "get_state", "none"),
    Route("GET", "/api/events", "get_events", "query"),
    Route("GET", "/api/zones", "get_zones", "none"),
    Route("PUT", "/api/zones", "set_zones", "body"),
    Route("GET", "/api/analytics", "get_analytics", "query"),
    Route("GET", "/api/heatmap", "get_heatmap", "none"),
    Route("GET", "/api/diary", "get_diary", "query"),
    Route("GET", "/api/media", "list_media", "query"),
    Route("POST", "/api/snapshot", "snapshot", "none"),
    Route("POST", "/api/bookmark", "bookmark", "body"),
    Route("GET", "/api/peers", "get_peers", "none"),
)
BROADCAST_PATHS = {"event": "/api/events/broadcast", "overlay": "/api/events/broadcast/overlay",
                   "telemetry": "/api/events/broadcast/telemetry"}
MAX_PEERS = 64                 # peers with a REST rate bucket; the oldest is forgotten first
TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _typed(schema: dict[str, Any], raw: list[str]) -> Any:
    """A query value as the argument's schema types it; left as text when it does not parse, so the
    command's own validator refuses it with the message WebSocket clients get."""
    kinds = schema.get("type") or ()
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if "array" in kinds:
        return [part for item in raw for part in item.split(",") if part]
    text = raw[-1]
    for kind, parse in (("integer", int), ("number", float)):
        if kind in kinds:
            try:
                return parse(text)
            except ValueError:
                return text
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return text


class RestApi:
    def __init__(self, bus: Bus, web: WebServer, test_events: bool = False, rate: float = 20.0,
                 burst: float = 40.0, max_body: int = 64 * 1024) -> None:
        self.bus, self.web, self.test_events = bus, web, test_events
        self.rate, self.burst, self.max_body = rate, burst, max_body
        self._buckets: OrderedDict[str, RateLimiter] = OrderedDict()
        self.broadcasts = 0
        for route in ROUTES:
            web.add_route(route.path, self._command_endpoint(route), methods=[route.method])
        for kind, path in BROADCAST_PATHS.items():
            web.add_route(path, self._broadcast_endpoint(kind), methods=["POST"])
        asyncapi = asyncapi_document()
        openapi = openapi_document(ROUTES, extra_paths=web_paths())
        web.add_route("/api/asyncapi.json", lambda request: _document(asyncapi), needs_token=False)
        web.add_route("/api/openapi.json", lambda request: _document(openapi), needs_token=False)
        events = catalogue()
        web.add_route("/api/protocol/events", lambda request: _document(events), needs_token=False)

    # --- commands ---
    def _command_endpoint(self, route: Route) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self._limit(request)
            command = validate_command({**await self._arguments(route, request), "type": route.command})
            reply = await self.bus.dispatch(command, {"transport": "rest"})
            data = reply.data
            if reply.type is MessageType.ERROR:
                return error_response(data["code"], data["message"])
            return json_response({k: v for k, v in data.items() if k not in ("id", "type")})

        return endpoint

    def _limit(self, request: Request) -> None:
        peer = peer_of(request)
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = self._buckets[peer] = RateLimiter(self.rate, self.burst)
            while len(self._buckets) > MAX_PEERS:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(peer)
        if not bucket.allow():
            raise CommandError("rate_limited", f"more than {self.rate:g} requests per second; slow down")

    async def _arguments(self, route: Route, request: Request) -> dict[str, Any]:
        if route.source == "query":
            args = {a.name: a for a in COMMANDS[route.command].args}
            return {name: _typed(args[name].published(), request.query_params.getlist(name))
                    for name in request.query_params if name in args}
        if route.source == "body":
            return await self._json_body(request)
        return {}

    async def _json_body(self, request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise CommandError("too_large", f"the request body is larger than {self.max_body} bytes")
        raw = await read_body(request, self.max_body)
        if raw is None:
            raise CommandError("too_large", f"the request body is larger than {self.max_body} bytes")
        if not raw.strip():
            return {}
        body = decode_object(raw, "request body", "a JSON object")
        body.pop("id", None)  # REST has no request ids: the answer is the response
        return body

    # --- test broadcasts ---
    def _broadcast_endpoint(self, kind: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not self.test_events:
                raise CommandError("disabled", "test broadcasts are off; set DOGMON_TEST_EVENTS=1 to allow them")
            self._limit(request)
            message, payload = self._test_message(kind, await self._json_body(request))
            hubs = self.bus_clients()
            clients = sum(len(hub.clients) for hub in hubs)
            for hub in hubs:
                hub.deliver(message, payload)
            self.broadcasts += 1
            return json_response({"sent": True, "test": True, "clients": clients})

        return endpoint

    def bus_clients(self) -> list[Any]:
        """The WebSocket hubs among the bus's transports (MQTT never gets test broadcasts)."""
        from edge.transports.ws import WebSocketHub

        return [t for t in self.bus.transports if isinstance(t, WebSocketHub)]

    def _test_message(self, kind: str, body: dict[str, Any]) -> tuple[Message, bytes]:
        data = body.get("data", {})
        if not isinstance(data, dict):
            raise CommandError("invalid_field", "'data' must be an object")
        envelope: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": kind}
        message = Message(MessageType(kind), data)
        if kind in ("event", "overlay"):
            field = f"{kind}_type"
            name = body.get(field)
            if not isinstance(name, str) or TYPE_NAME.fullmatch(name) is None:
                raise CommandError("invalid_field", f"'{field}' must be a lower-case name of at most 40 characters")
            envelope[field] = name
            if kind == "event":
                message.event_type = name
            else:
                message.overlay_type = name  # type: ignore[assignment]  # only the per-client "newest" key
        envelope |= {"device_id": self.bus.device_id, "ts": round(clock.now(), 3), "test": True, "data": data}
        return message, orjson.dumps(envelope)


def _document(document: dict[str, Any]) -> Response:
    return OrjsonResponse(document, 200, {"Cache-Control": "no-cache"})


def web_paths() -> dict[str, dict[str, Any]]:
    """The routes that are not commands, for the OpenAPI document."""
    from edge.protocol.openapi import plain_operation as op

    return {
        "/healthz": {"get": op("health: status only without the token; problems and details with it", False)},
        "/api/session": {"get": op("whether a token is needed and whether this client has one (no token needed)",
                                   False, {"auth_required": "boolean", "authenticated": "boolean",
                                           "pairing": "boolean"})},
        "/api/login": {"post": op("trade the token or a pairing code for a session (the HttpOnly cookie "
                                  "`dogmon_session`); wrong ones are rate limited (429)", False,
                                  {"authenticated": "boolean"}, body={"token": "string", "code": "string"})},
        "/api/pair": {"post": op("trade a one-time pairing code (printed by the device and `dogmonitor pair`) "
                                 "for a session", False, {"authenticated": "boolean"}, body={"code": "string"})},
        "/pair": {"get": op("the printed pairing link `/pair?code=`: a session, then 303 to /", False,
                            content="text/plain")},
        "/api/logout": {"post": op("end this session and clear its cookie; ?all=1 ends every session (sign out "
                                   "everywhere)", False, {"authenticated": "boolean", "ended": "integer"})},
        "/media/{media_id}": {"get": op("a stored snapshot, thumbnail or clip: streamed, single byte range "
                                        "(206), HEAD, ETag; immutable", True, content="application/octet-stream")},
        "/snapshot.jpg": {"get": op("the newest camera frame as JPEG (503 when there is none)", True,
                                    content="image/jpeg")},
        "/api/asyncapi.json": {"get": op("the AsyncAPI 3 document (WebSocket and MQTT)", False)},
        "/api/openapi.json": {"get": op("this document", False)},
        "/api/protocol/events": {"get": op("event groups and labels for people, from edge.protocol.events "
                                           "(the tablet's timeline)", False)},
        BROADCAST_PATHS["event"]: {"post": op(
            "test broadcast (DOGMON_TEST_EVENTS=1): an event of any type and data to every WebSocket client, "
            "marked test, not stored", True, {"sent": "boolean", "test": "boolean", "clients": "integer"},
            body={"event_type": "string", "data": "object"})},
        BROADCAST_PATHS["overlay"]: {"post": op(
            "test broadcast (DOGMON_TEST_EVENTS=1): an overlay to every WebSocket client, marked test", True,
            {"sent": "boolean", "test": "boolean", "clients": "integer"},
            body={"overlay_type": "string", "data": "object"})},
        BROADCAST_PATHS["telemetry"]: {"post": op(
            "test broadcast (DOGMON_TEST_EVENTS=1): a telemetry message to every WebSocket client, marked test",
            True, {"sent": "boolean", "test": "boolean", "clients": "integer"}, body={"data": "object"})},
    }
