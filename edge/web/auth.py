"""Who may use the device: the token (Bearer header, ``?token=``), the browser session cookie, and the
per-address limit on wrong credentials.

Owns :class:`Auth` and :class:`TokenBackend`, the backend of Starlette's ``AuthenticationMiddleware``:
every request and WebSocket is judged once, before routing, and carries the verdict as
``conn.auth.scopes`` (``"token"`` when it showed the token or a live session, or when auth is off);
routes that need it say so (``requires(TOKEN_SCOPE)``), and :func:`authenticated` reads the verdict.
``<img>`` and ``<video>`` cannot send headers, so ``POST /api/login`` (the token or a pairing code) opens
a server-side session (:class:`edge.web.sessions.SessionStore`) named by an HttpOnly, SameSite=Strict cookie.

Every wrong credential — Bearer, ``?token=``, a cookie naming no live session, a wrong login or pairing
code, on any path, WebSocket handshakes and ``/healthz`` included — spends from one bucket per peer
address; while it is empty, anything that carries a credential is answered 429 without being checked
(:mod:`edge.web.gate`), so the answers stop telling right from wrong.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Mapping

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser, SimpleUser
from starlette.requests import HTTPConnection

from edge.util.ratelimit import RateLimiter
from edge.web.sessions import SESSION_MAX_AGE, SessionStore

__all__ = ["SESSION_COOKIE", "SESSION_MAX_AGE", "TOKEN_SCOPE", "Auth", "TokenBackend", "authenticated"]

SESSION_COOKIE = "dogmon_session"
FAILURE_RATE = 1 / 6         # wrong credentials per second per peer once the burst is used: 10 a minute
FAILURE_BURST = 10.0
MAX_TRACKED_PEERS = 1024     # peers with a bucket; the oldest is forgotten first
TOKEN_SCOPE = "token"        # the credential a request has when it may use the device
STALE_COOKIE = "dogmon_stale_cookie"  # scope["state"] flag: the answer deletes the cookie


def offered_credentials(headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]) -> set[str]:
    """Which credentials a request carries: ``bearer``, ``query``, ``cookie``."""
    found = set()
    if headers.get("authorization", "")[:7].lower() == "bearer ":
        found.add("bearer")
    if "token" in query:
        found.add("query")
    if SESSION_COOKIE in cookies:
        found.add("cookie")
    return found


class Auth:
    def __init__(self, token: str, sessions: SessionStore | None = None) -> None:
        self.token = token.encode()
        self.sessions = sessions if sessions is not None else SessionStore(None, token)
        self._failures: OrderedDict[str, RateLimiter] = OrderedDict()
        self.also: list[bytes] = []  # other tokens taken like the token (the home's, for peer devices)

    @property
    def required(self) -> bool:
        return bool(self.token)

    def accept_also(self, token: str) -> None:
        """Take ``token`` like the token itself (the devices of the home show one derived from its secret)."""
        if token:
            self.also.append(token.encode())

    def token_ok(self, offered: str) -> bool:
        raw = offered.encode()
        return not self.token or hmac.compare_digest(raw, self.token) or any(
            hmac.compare_digest(raw, other) for other in self.also)

    def judge(self, conn: HTTPConnection) -> tuple[bool, bool]:
        """(authorised, showed a wrong credential): any one right credential authorises; a wrong one that
        came with no right one is counted against the peer."""
        if not self.token:
            return True, False
        wrong = False
        header = conn.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            if self.token_ok(header[7:].strip()):
                return True, False
            wrong = True
        query = conn.query_params.get("token")
        if query is not None:
            if self.token_ok(query):
                return True, False
            wrong = True
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie is not None:
            if self.sessions.valid(cookie):
                return True, False
            conn.scope.setdefault("state", {})[STALE_COOKIE] = True
            wrong = True
        return False, wrong

    def open_session(self) -> str:
        return self.sessions.open()

    # --- wrong credentials per peer address ---
    def blocked(self, peer: str) -> bool:
        """True while ``peer`` has used up its allowance of wrong credentials (checked before any is)."""
        bucket = self._failures.get(peer)
        return bucket is not None and not bucket.available()

    def failed(self, peer: str) -> None:
        bucket = self._failures.get(peer)
        if bucket is None:
            bucket = self._failures[peer] = RateLimiter(FAILURE_RATE, FAILURE_BURST)
            while len(self._failures) > MAX_TRACKED_PEERS:
                self._failures.popitem(last=False)
        self._failures.move_to_end(peer)
        bucket.allow()


class TokenBackend(AuthenticationBackend):
    """The verdict of :meth:`Auth.judge` for ``AuthenticationMiddleware``: the token scope, or nothing."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        ok, wrong = self.auth.judge(conn)
        if ok:
            return AuthCredentials([TOKEN_SCOPE]), SimpleUser("owner")
        if wrong:
            self.auth.failed(conn.client.host if conn.client else "?")
        return None


def authenticated(conn: HTTPConnection) -> bool:
    """Whether the middleware found the token (or a live session) on this request."""
    return TOKEN_SCOPE in conn.auth.scopes
