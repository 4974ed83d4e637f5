"""Building blocks of the protocol definition: JSON Schema fragments and command arguments.

Owns two small vocabularies. The schema helpers (:func:`integer`, :func:`obj`, :func:`ref` …) return
plain JSON Schema dicts (the draft-07 subset AsyncAPI 3 and OpenAPI 3.1 both read), each with its
``description``, so one dict is at once the machine-readable schema and the text of the docs tables.
:class:`Arg` is one command argument: its schema *and* the check that validates an inbound value,
built from the same numbers, so the published schema and the validator cannot drift apart. A failed
check raises :class:`~edge.protocol.errors.CommandError` with the code and message clients rely on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from edge.protocol.errors import CommandError

Schema = dict[str, Any]


# --- schema fragments ---

def _doc(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def integer(description: str = "", minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return _doc(out, description)


def number(description: str = "") -> Schema:
    return _doc({"type": "number"}, description)


def string(description: str = "", enum: Sequence[str] | None = None, max_length: int | None = None,
           pattern: str | None = None) -> Schema:
    out: Schema = {"type": "string"}
    if enum is not None:
        out["enum"] = list(enum)
    if max_length is not None:
        out["maxLength"] = max_length
    if pattern is not None:
        out["pattern"] = pattern
    return _doc(out, description)


def boolean(description: str = "") -> Schema:
    return _doc({"type": "boolean"}, description)


def const(value: Any, description: str = "") -> Schema:
    return _doc({"const": value}, description)


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON null (the description stays on the outside, where the docs read it)."""
    description = schema.get("description", "")
    inner = {k: v for k, v in schema.items() if k != "description"}
    if "type" in inner:
        kinds = inner["type"] if isinstance(inner["type"], list) else [inner["type"]]
        out = {**inner, "type": [*kinds, "null"]}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return _doc(out, description)
    return _doc({"anyOf": [inner, {"type": "null"}]}, description)


def array(items: Schema, description: str = "", min_items: int | None = None,
          max_items: int | None = None) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if min_items is not None:
        out["minItems"] = min_items
    if max_items is not None:
        out["maxItems"] = max_items
    return _doc(out, description)


def obj(properties: dict[str, Schema], description: str = "", optional: Sequence[str] = (),
        closed: bool = True) -> Schema:
    """An object whose listed properties are all required except ``optional``; ``closed``: no others."""
    out: Schema = {"type": "object", "properties": properties,
                   "required": [k for k in properties if k not in optional]}
    if closed:
        out["additionalProperties"] = False
    return _doc(out, description)


def mapping(values: Schema, description: str = "") -> Schema:
    """An object used as a dictionary: any keys, every value matching ``values``."""
    return _doc({"type": "object", "additionalProperties": values}, description)


def ref(name: str, description: str = "") -> Schema:
    """A named shared schema (``#/components/schemas/<name>``)."""
    return _doc({"$ref": f"#/components/schemas/{name}"}, description)


def any_value(description: str = "") -> Schema:
    return _doc({}, description)


# --- command arguments: schema and check in one ---

@dataclasses.dataclass(frozen=True)
class Arg:
    """One command argument. An absent or null value takes ``default``; a present one must pass ``check``."""

    name: str
    schema: Schema                       # the JSON Schema of a present value (with its description)
    check: Callable[[Any], Any]          # validates a present, non-null value and returns the cleaned value
    default: Any = None
    required: bool = False               # required: ``check`` gets the raw value, null and absence included

    def clean(self, body: dict[str, Any]) -> Any:
        value = body.get(self.name)
        if self.required:
            return self.check(value)
        return self.default if value is None else self.check(value)

    def published(self) -> Schema:
        if self.required:
            return dict(self.schema)
        out = nullable(self.schema)
        if self.default is not None:
            out["default"] = self.default
        return out


def invalid(name: str, requirement: str) -> CommandError:
    return CommandError("invalid_field", f"'{name}' must be {requirement}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_arg(name: str, lo: int, hi: int, default: int | None, description: str) -> Arg:
    def check(value: Any) -> int:
        if not _is_int(value) or not lo <= value <= hi:
            raise invalid(name, f"an integer from {lo} to {hi}")
        return value
    return Arg(name, integer(description, lo, hi), check, default)


def time_arg(name: str, description: str) -> Arg:
    def check(value: Any) -> float:
        if not _is_number(value):
            raise invalid(name, "a number (unix seconds)")
        return float(value)
    return Arg(name, number(description), check)


def choice_arg(name: str, values: Sequence[str], description: str) -> Arg:
    words = ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]

    def check(value: Any) -> str:
        if value not in values:
            raise invalid(name, words)
        return value
    return Arg(name, string(description, enum=values), check)


def names_arg(name: str, max_items: int, max_length: int, what: str, description: str) -> Arg:
    def check(value: Any) -> list[str]:
        if not isinstance(value, list) or len(value) > max_items or not all(
                isinstance(v, str) and 0 < len(v) <= max_length for v in value):
            raise invalid(name, f"a list of up to {max_items} {what}")
        return value
    schema = array({"type": "string", "minLength": 1, "maxLength": max_length}, description, max_items=max_items)
    return Arg(name, schema, check)


def object_arg(name: str, description: str) -> Arg:
    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(name, "an object")
        return value
    return Arg(name, _doc({"type": "object"}, description), check, default={})


def text_arg(name: str, max_length: int, description: str) -> Arg:
    """Free text; control characters are dropped and the ends stripped."""
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length:
            raise invalid(name, f"a string of at most {max_length} characters")
        return "".join(c for c in value if c.isprintable()).strip()
    return Arg(name, string(description, max_length=max_length), check, default="")


def custom_arg(name: str, schema: Schema, check: Callable[[Any], Any], required: bool = False) -> Arg:
    """An argument whose check is richer than its schema (e.g. polygon geometry)."""
    return Arg(name, schema, check, required=required)
