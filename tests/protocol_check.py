"""Checks every message a device sends in the tests against the published AsyncAPI document.

The WebSocket test clients (``helpers.ws_connect``, ``helpers.StalledClient``) and the MQTT subscriber
(``helpers.MqttCollector``) hand each received message to :func:`check_ws` / :func:`check_mqtt`. A
message that does not match its schema is recorded in :data:`VIOLATIONS` (the autouse fixture in
``conftest.py`` fails the test with them) and, on the WebSocket, also raised at once. The schemas are
the ones ``python -m edge.protocol`` prints, validated with jsonschema (draft 7, AsyncAPI's dialect).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from typing import Any

import orjson
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from edge.protocol.asyncapi import asyncapi_document
from edge.protocol.envelopes import message_name
from edge.protocol.topics import topic_of

BASE = "urn:dogmonitor:asyncapi"
VIOLATIONS: list[str] = []
CHECKED: Counter[str] = Counter()   # schema name -> messages checked against it (printed after the run)
_lock = threading.Lock()


@functools.cache
def registry() -> Registry:
    return Registry().with_resource(BASE, Resource.from_contents(asyncapi_document(), default_specification=DRAFT7))


@functools.cache
def validator(pointer: str) -> Draft7Validator:
    """A validator for the schema at ``pointer`` inside the document (e.g. ``/components/schemas/Event``)."""
    return Draft7Validator({"$ref": f"{BASE}#{pointer}"}, registry=registry())


def problem(schema_name: str, pointer: str, instance: Any) -> str | None:
    """None when ``instance`` matches; otherwise a readable account of the first mismatch."""
    with _lock:
        CHECKED[schema_name] += 1
    error = best_match(validator(pointer).iter_errors(instance))
    if error is None:
        return None
    return _describe(schema_name, error, instance)


def _describe(schema_name: str, error: ValidationError, instance: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(the message)"
    excerpt = orjson.dumps(instance).decode()
    excerpt = excerpt if len(excerpt) <= 600 else excerpt[:600] + " …"
    return (f"sent message does not match the published schema {schema_name}\n"
            f"  at {where}: {error.message[:400]}\n"
            f"  schema there: {orjson.dumps(error.schema).decode()[:300]}\n"
            f"  message: {excerpt}")


def _record(text: str) -> None:
    with _lock:
        VIOLATIONS.append(text)


def check_ws(raw: str | bytes) -> None:
    """One text message received on /ws/ui; records and raises AssertionError when it does not match."""
    message = orjson.loads(raw)
    name = message_name(message) if isinstance(message, dict) else None
    if name is None:
        text = f"sent message has no declared type: {orjson.dumps(message).decode()[:300]}"
    else:
        text = problem(name, f"/components/schemas/{name}", message)
    if text is not None:
        _record(text)
        raise AssertionError(text)


def check_live(raw: str) -> None:
    """One text message received on /ws/video?meta=1 (a LiveFrame before each JPEG)."""
    text = problem("LiveFrame", "/components/schemas/LiveFrame", orjson.loads(raw))
    if text is not None:
        _record(text)
        raise AssertionError(text)


def check_mqtt(topic: str, payload: bytes) -> None:
    """One message received from the broker; records a violation when a device topic's payload does not match.

    Topics outside ``{prefix}/{device_id}/<declared leaf>`` (Home Assistant discovery, the tests' own
    topics) and commands published *to* the device are not the device's output and are not checked; an
    empty payload is a retained message being cleared.
    """
    parts = topic.split("/", 2)
    spec = topic_of(parts[2]) if len(parts) == 3 else None
    if spec is None or spec.inbound or not payload:
        return
    if spec.content_type == "image/jpeg":
        with _lock:
            CHECKED[f"MQTT {spec.leaf}"] += 1
        text = None if payload.startswith(b"\xff\xd8") else f"{topic}: payload is not a JPEG"
    elif spec.content_type == "text/plain":
        text = problem(spec.leaf, f"/components/messages/{_message_id(spec.leaf)}/payload", payload.decode())
    else:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            text = f"{topic}: payload is not JSON ({exc})"
        else:
            text = problem(f"MQTT {spec.leaf}", f"/components/messages/{_message_id(spec.leaf)}/payload", body)
    if text is not None:
        _record(f"MQTT {topic}: {text}")


def _message_id(leaf: str) -> str:
    return "mqtt_" + leaf.replace("/", "_")


def take_violations() -> list[str]:
    with _lock:
        found = list(VIOLATIONS)
        VIOLATIONS.clear()
    return found
