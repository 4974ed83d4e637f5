"""An OpenAPI 3.1 document for REST routes that run protocol commands: :func:`openapi_document`.

Owns nothing but the mapping: the REST server decides its routes (method, path, command, where the
arguments come from) and hands them here; each operation's parameters or request body and its
response are the command's published argument and result schemas (:mod:`.command_specs`), and every
``$ref`` points into the same ``components.schemas`` as the AsyncAPI document. A refused command is
answered with ``{"error": {"code", "message"}}`` and its code's status (:data:`edge.protocol.errors.ERRORS`).
Routes that are not commands (login, health, media) are passed in as ready operations (:func:`plain_operation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from edge import __version__
from edge.protocol.command_specs import COMMANDS
from edge.protocol.envelopes import schemas
from edge.protocol.errors import ERROR_CODES, ERROR_STATUS
from edge.protocol.schema import Schema, obj, ref, string

OPENAPI_VERSION = "3.1.0"
SOURCES = ("query", "body", "none")
REST_ERROR = obj({"error": obj({"code": string("error code", enum=tuple(ERROR_CODES)),
                                "message": string("for people")})}, "a refused or failed request")
_SIMPLE = {"boolean": {"type": "boolean"}, "integer": {"type": "integer"}, "string": {"type": "string"},
           "object": {"type": "object"}}


@dataclasses.dataclass(frozen=True)
class Route:
    method: str      # GET, PUT, POST …
    path: str        # e.g. /api/events
    command: str     # a name in COMMANDS
    source: str      # where the arguments come from: query, body or none

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"route {self.method} {self.path}: no command {self.command!r}")
        if self.source not in SOURCES:
            raise ValueError(f"route {self.method} {self.path}: source must be one of {', '.join(SOURCES)}")


def _parameters(command: str) -> list[dict[str, Any]]:
    out = []
    for arg in COMMANDS[command].args:
        schema = {k: v for k, v in arg.published().items() if k != "description"}
        parameter: dict[str, Any] = {"name": arg.name, "in": "query", "required": arg.required,
                                     "description": arg.schema.get("description", ""), "schema": schema}
        if "array" in (schema.get("type") or ()):
            parameter |= {"style": "form", "explode": False}  # event_types=sit,lie
        out.append(parameter)
    return out


def _operation(route: Route) -> dict[str, Any]:
    spec = COMMANDS[route.command]
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{route.command}",
        "summary": spec.summary,
        "description": f"Runs the `{route.command}` command, exactly as over WebSocket and MQTT.",
        "responses": {"200": {"description": f"the result of {route.command}",
                              "content": {"application/json": {"schema": spec.result_schema()}}}},
    }
    if route.source == "query" and spec.args:
        operation["parameters"] = _parameters(route.command)
    elif route.source == "body" and spec.args:
        operation["requestBody"] = {"required": any(a.required for a in spec.args),
                                    "content": {"application/json": {"schema": spec.args_schema()}}}
    codes = ("invalid_json", "invalid_field", *spec.errors, "rate_limited", "internal") if spec.args \
        else (*spec.errors, "rate_limited", "internal")
    if route.source == "body":
        codes = (*codes, "too_large")
    for status in sorted({ERROR_STATUS[code] for code in codes}):
        named = sorted(c for c in codes if ERROR_STATUS[c] == status)
        operation["responses"][str(status)] = {
            "description": "refused: " + ", ".join(named),
            "content": {"application/json": {"schema": ref("RestError")}}}
    return operation


def plain_operation(summary: str, needs_token: bool, result: dict[str, str] | None = None,
                    body: dict[str, str] | None = None, content: str = "application/json") -> dict[str, Any]:
    """An operation that is not a command: ``result``/``body`` map field names to simple JSON types."""
    schema: Schema = ({"type": "object", "properties": {k: _SIMPLE[v] for k, v in result.items()}}
                      if result is not None else {"type": "object"} if content == "application/json" else
                      {"type": "string", "format": "binary"})
    operation: dict[str, Any] = {"summary": summary,
                                 "responses": {"200": {"description": "ok", "content": {content: {"schema": schema}}}}}
    if body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": {
            "type": "object", "properties": {k: _SIMPLE[v] for k, v in body.items()}}}}}
    if needs_token:
        operation["responses"]["401"] = {"description": "missing or wrong token"}
    else:
        operation["security"] = []
    return operation


def openapi_document(routes: Iterable[Route | Sequence[str]], version: str = __version__,
                     extra_paths: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The OpenAPI document of ``routes``: ``Route`` objects or ``(method, path, command, source)`` tuples,
    plus ``extra_paths`` (path -> method -> operation) for routes that are not commands."""
    paths: dict[str, dict[str, Any]] = {path: dict(ops) for path, ops in (extra_paths or {}).items()}
    for item in routes:
        route = item if isinstance(item, Route) else Route(*item)
        method = route.method.lower()
        if method in paths.get(route.path, {}):
            raise ValueError(f"route {route.method} {route.path} given twice")
        paths.setdefault(route.path, {})[method] = _operation(route)
    components: dict[str, Schema] = {**schemas(), "RestError": REST_ERROR}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "dogmonitor device REST API", "version": version,
                 "description": "REST routes over the same commands as the WebSocket and MQTT "
                                "(see the AsyncAPI document for messages)."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer DOGMON_WS_TOKEN"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "dogmon_session",
                            "description": "set by POST /api/login"},
            },
        },
        "security": [{"bearer": []}, {"queryToken": []}, {"session": []}],
    }
