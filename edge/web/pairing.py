"""The device's token when none is configured, and the short one-time pairing codes a browser trades for a session.

Owns :func:`device_token` and :class:`Pairing`. With ``DOGMON_WS_TOKEN`` empty the device makes a token at
first start (192 random bits, ``DATA_DIR/token``, 0600) and keeps it; ``open`` (loopback binds only,
enforced by the configuration) turns auth off. Nobody types that token: the device prints a pairing code
(8 characters from an alphabet without look-alikes, valid ``CODE_TTL`` seconds, good for one session).

The code lives in ``DATA_DIR/pairing.json`` (0600), written by whoever issues it — the device at start,
``dogmonitor pair`` at any time (it needs no connection to the device: whoever may write the data dir
owns the device) — and read by the device when a code is offered. A redeemed code is deleted;
``MAX_WRONG`` wrong codes in a row void it too, whatever addresses they came from.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import segno

OPEN = "open"                    # DOGMON_WS_TOKEN value: no auth (loopback binds only)
TOKEN_FILE = "token"
CODE_FILE = "pairing.json"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen, typed on a tablet
CODE_LENGTH = 8                  # 32^8 = 2^40 codes; MAX_WRONG guesses void one
CODE_TTL = 600.0
MAX_WRONG = 20


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as 0600, atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def device_token(configured: str, data_dir: Path) -> str:
    """The token in force: the configured one, none for ``open``, else the data dir's (made on first use)."""
    if configured == OPEN:
        return ""
    if configured:
        return configured
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(OSError):
        stored = path.read_text().strip()
        if len(stored) >= 16:
            return stored
    token = secrets.token_urlsafe(24)
    _write_private(path, (token + "\n").encode())
    return token


def local_token(configured: str, data_dir: Path) -> str:
    """The token a client on the device itself presents (``watch``, ``diag``): the configured one, or the one
    the device made; empty with auth off or before the first start."""
    if configured == OPEN:
        return ""
    if configured:
        return configured
    try:
        return (data_dir / TOKEN_FILE).read_text().strip()
    except OSError:
        return ""


def normalise(code: str) -> str:
    """What a person typed, as the code is stored: upper case, spaces and dashes dropped."""
    return "".join(code.split()).replace("-", "").upper()


def pretty(code: str) -> str:
    """``ABCD-EFGH``: easier to read aloud and type."""
    return f"{code[:4]}-{code[4:]}"


@dataclass(frozen=True)
class Code:
    code: str
    expires: float          # epoch seconds

    def minutes_left(self, now: float | None = None) -> int:
        return max(0, round((self.expires - (time.time() if now is None else now)) / 60))


class Pairing:
    """Issue and redeem pairing codes through ``DATA_DIR/pairing.json``."""

    def __init__(self, data_dir: Path, ttl: float = CODE_TTL, clock: Callable[[], float] = time.time) -> None:
        self.path = data_dir / CODE_FILE
        self.ttl = ttl
        self.clock = clock

    def issue(self) -> Code:
        """A new code, replacing any earlier one."""
        code = Code("".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)), self.clock() + self.ttl)
        _write_private(self.path, orjson.dumps({"code": code.code, "expires": code.expires, "wrong": 0}))
        return code

    def current(self) -> Code | None:
        data = self._read()
        if data is None:
            return None
        return Code(data["code"], data["expires"])

    def _read(self) -> dict | None:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if (not isinstance(data, dict) or not isinstance(data.get("code"), str)
                or not isinstance(data.get("expires"), (int, float)) or data["expires"] <= self.clock()):
            return None
        return data

    def looks_like_code(self, offered: str) -> bool:
        text = normalise(offered)
        return len(text) == CODE_LENGTH and all(c in ALPHABET for c in text)

    def redeem(self, offered: str) -> bool:
        """True once for the current, unexpired code; the code is gone afterwards. A wrong code counts
        toward voiding it."""
        data = self._read()
        if data is None:
            return False
        if hmac.compare_digest(normalise(offered).encode(), data["code"].encode()):
            self._remove()
            return True
        wrong = int(data.get("wrong", 0)) + 1
        if wrong >= MAX_WRONG:
            self._remove()
        else:
            with contextlib.suppress(OSError):
                _write_private(self.path, orjson.dumps({**data, "wrong": wrong}))
        return False

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def qr_lines(text: str) -> list[str]:
    """``text`` as a small QR code for a terminal: two modules a character (half blocks), light drawn, so it
    reads on the usual dark background; a phone's camera opens the link."""
    buffer = io.StringIO()
    segno.make(text, error="l", micro=False).terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue().rstrip("\n").split("\n")


def pairing_lines(urls: list[str], pairing: Pairing | None, auth_required: bool, new_code: bool = True,
                  qr: bool = False) -> list[str]:
    """What the start line and ``dogmonitor pair`` print: where to open the app and the code to enter there
    (a new code unless ``new_code`` is False and one is still valid); with ``qr``, the pairing link as a QR
    code after the first line."""
    if not urls:
        return []
    if not auth_required:
        return [f"AUTH OFF (DOGMON_WS_TOKEN=open): anyone who can reach {urls[0]} controls the device; "
                "this is allowed on a loopback address only"]
    if pairing is None:
        return [f"open {urls[0]} and sign in with the token"]
    code = (None if new_code else pairing.current()) or pairing.issue()
    others = f" (or {', '.join(urls[1:3])})" if len(urls) > 1 else ""
    link = urls[0].rstrip("/") + f"/pair?code={code.code}"
    return [f"open {urls[0]}{others} and enter the pairing code {pretty(code.code)} "
            f"(one-time, valid {code.minutes_left()} min), or open {link}",
            *(qr_lines(link) if qr else []),
            "a new pairing code at any time: dogmonitor pair"]
