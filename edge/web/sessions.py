"""Browser sessions: random ids kept server-side, so each one can end (logout) and all can (sign out everywhere).

Owns :class:`SessionStore`. A session id is 256 random bits; only its SHA-256 is kept, with its expiry,
in ``DATA_DIR/sessions.json`` (0600, replaced atomically), so sessions survive a restart and a copy of the
file logs nobody in. Sessions belong to the token they were opened under (a fingerprint is stored with
them): changing ``DOGMON_WS_TOKEN`` ends them all. Without a data dir (a server built alone in a test)
they live in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

SESSION_MAX_AGE = 30 * 86400
MAX_SESSIONS = 64            # the oldest is ended first: a login loop cannot grow the file without bound
FILE_NAME = "sessions.json"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    def __init__(self, path: Path | None, token: str, max_age: float = SESSION_MAX_AGE,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_age = max_age
        self.clock = clock
        self.fingerprint = hmac.new(token.encode(), b"dogmon sessions v2", hashlib.sha256).hexdigest()
        self.sessions: dict[str, float] = {}  # sha256(id) -> expiry (epoch seconds)
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("sessions file %s unreadable (%s): every browser signs in again", self.path, exc)
            return
        if not isinstance(data, dict) or data.get("token") != self.fingerprint:
            return  # another token's sessions: they ended when it changed
        sessions = data.get("sessions")
        if isinstance(sessions, dict):
            now = self.clock()
            self.sessions = {k: float(v) for k, v in sessions.items()
                             if isinstance(k, str) and isinstance(v, (int, float)) and v > now}

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps({"token": self.fingerprint, "sessions": self.sessions}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot save sessions to %s (%s): they end when the device restarts", self.path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def open(self) -> str:
        """A new session; its id (the cookie value) is returned once and never stored."""
        session = secrets.token_urlsafe(32)
        now = self.clock()
        self.sessions = {k: v for k, v in self.sessions.items() if v > now}
        while len(self.sessions) >= MAX_SESSIONS:
            self.sessions.pop(min(self.sessions, key=self.sessions.__getitem__))
        self.sessions[_digest(session)] = now + self.max_age
        self._save()
        return session

    def valid(self, session: str) -> bool:
        expiry = self.sessions.get(_digest(session))
        return expiry is not None and expiry > self.clock()

    def end(self, session: str) -> bool:
        if self.sessions.pop(_digest(session), None) is None:
            return False
        self._save()
        return True

    def end_all(self) -> int:
        count = len(self.sessions)
        self.sessions = {}
        self._save()
        return count
