"""The protocol, defined once: every message, event, overlay, command and MQTT topic the device speaks.

The definition lives in :mod:`.events` (event types and their data), :mod:`.command_specs` (commands:
arguments and replies), :mod:`.envelopes` (message types and overlays), :mod:`.topics` (MQTT topics)
and :mod:`.shapes` (shared schemas). Everything else is derived from it: inbound validation
(:mod:`edge.core.commands`), Home Assistant's event lists, ``docs/protocol.md`` (:mod:`.docs`), the
AsyncAPI 3 document (:mod:`.asyncapi`, ``python -m edge.protocol``) and OpenAPI (:mod:`.openapi`).
"""

from typing import Any

__all__ = ["asyncapi_document", "openapi_document"]


def __getattr__(name: str) -> Any:
    """``edge.protocol.asyncapi_document`` / ``openapi_document``, imported only when asked for (the device's
    start-up needs the declarations, not the document builders)."""
    if name == "asyncapi_document":
        from edge.protocol.asyncapi import asyncapi_document

        return asyncapi_document
    if name == "openapi_document":
        from edge.protocol.openapi import openapi_document

        return openapi_document
    raise AttributeError(name)
