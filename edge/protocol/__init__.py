"""The protocol, defined once: every message, event, overlay, command and MQTT topic the device speaks.

The definition lives in :mod:`.events` (event types and their data), :mod:`.command_specs` (commands:
arguments and replies), :mod:`.envelopes` (message types and overlays), :mod:`.topics` (MQTT topics)
and :mod:`.shapes` (shared schemas). Everything else is derived from it: inbound validation
(:mod:`edge.commands`), Home Assistant's event lists, ``docs/protocol.md`` (:mod:`.docs`), the
AsyncAPI 3 document (:mod:`.asyncapi`, ``python -m edge.protocol``) and OpenAPI (:mod:`.openapi`).
"""
