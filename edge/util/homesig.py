"""The home secret's signatures: how the devices of one home recognise each other (pure).

Owns the canonical form a signature covers (JSON with sorted keys, orjson), the HMAC-SHA256 of a
device's ``info``, of a command relayed to a peer (``home_sig``: its name, fields and time, so a copy
cannot be replayed later or onto another command) and the HTTP token a device shows a peer (derived
from the secret, so no device needs to know another's own token).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

SIG_FIELD = "sig"            # the signature inside a device's info
COMMAND_SIG_FIELD = "home_sig"  # the signature inside a relayed command
COMMAND_TS_FIELD = "home_ts"    # when it was signed (unix s)
COMMAND_MAX_AGE = 120.0      # seconds a relayed command's signature stays good (clocks of one home roughly agree)
_TOKEN_LABEL = b"dogmonitor peer token v1"


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: keys sorted, no spaces (the same on every version and device)."""
    return orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)


def sign(secret: str, fields: Mapping[str, Any]) -> str:
    return hmac.new(secret.encode(), canonical(fields), hashlib.sha256).hexdigest()


def signed(secret: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with their ``sig`` added."""
    body = {k: v for k, v in fields.items() if k != SIG_FIELD}
    return {**body, SIG_FIELD: sign(secret, body)}


def verify(secret: str, body: Mapping[str, Any]) -> bool:
    """Whether ``body['sig']`` signs every other field of ``body`` (fields this version does not know included)."""
    sig = body.get(SIG_FIELD)
    if not secret or not isinstance(sig, str):
        return False
    rest = {k: v for k, v in body.items() if k != SIG_FIELD}
    return hmac.compare_digest(sig.encode(), sign(secret, rest).encode())


def peer_token(secret: str) -> str:
    """The token a device of the home presents to another's HTTP and WebSocket paths."""
    return hmac.new(secret.encode(), _TOKEN_LABEL, hashlib.sha256).hexdigest()


def sign_command(secret: str, name: str, fields: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """A relayed command's fields with ``home_ts`` and ``home_sig`` (over the name and every field)."""
    body = {k: v for k, v in fields.items() if k not in (COMMAND_SIG_FIELD, COMMAND_TS_FIELD)}
    body[COMMAND_TS_FIELD] = round(time.time() if now is None else now, 3)
    body[COMMAND_SIG_FIELD] = sign(secret, {"command": name, **body})
    return body


def command_verified(secret: str, name: str, body: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether a command carries a good, fresh ``home_sig`` of this home."""
    sig, ts = body.get(COMMAND_SIG_FIELD), body.get(COMMAND_TS_FIELD)
    if not secret or not isinstance(sig, str) or not isinstance(ts, int | float) or isinstance(ts, bool):
        return False
    if abs((time.time() if now is None else now) - ts) > COMMAND_MAX_AGE:
        return False
    rest = {k: v for k, v in body.items() if k != COMMAND_SIG_FIELD}
    return hmac.compare_digest(sig.encode(), sign(secret, {"command": name, **rest}).encode())
