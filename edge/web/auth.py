"""Who may use the device: the token (Bearer header, ``?token=``) and the browser session cookie.

Owns :class:`Auth` and :class:`TokenBackend`, the backend of Starlette's ``AuthenticationMiddleware``:
every request and WebSocket is judged once, before routing, and carries the verdict as
``conn.auth.scopes`` (``"token"`` when it showed the token or the cookie, or when no token is set);
routes that need it say so (``requires(TOKEN_SCOPE)``), and :func:`authenticated` reads the verdict.
``<img>`` and ``<video>`` cannot send headers, so ``POST /api/login`` trades the
token for an HttpOnly, SameSite=Strict cookie. The cookie's value is derived from the token
(HMAC-SHA256 of a fixed label), so sessions survive a device restart and all end when the token is
changed; nothing about sessions is stored. Wrong tokens at login are rate limited per peer address.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser, SimpleUser
from starlette.requests import HTTPConnection

from edge.util.ratelimit import RateLimiter

SESSION_COOKIE = "dogmon_session"
SESSION_MAX_AGE = 30 * 86400
LOGIN_RATE = 1 / 12          # wrong logins per second per peer once the burst is used: 5 a minute
LOGIN_BURST = 5.0
MAX_TRACKED_PEERS = 256      # peers with a login bucket; the oldest is forgotten first
TOKEN_SCOPE = "token"        # the credential a request has when it may use the device


class Auth:
    def __init__(self, token: str) -> None:
        self.token = token.encode()
        self.session = hmac.new(self.token, b"dogmon_session v1", hashlib.sha256).hexdigest() if token else ""
        self._login_buckets: OrderedDict[str, RateLimiter] = OrderedDict()
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

    def authorised(self, conn: HTTPConnection) -> bool:
        """The token as ``Authorization: Bearer``, as ``?token=`` or the session cookie (any one)."""
        if not self.token:
            return True
        header = conn.headers.get("authorization", "")
        if header[:7].lower() == "bearer " and self.token_ok(header[7:].strip()):
            return True
        query = conn.query_params.get("token")
        if query is not None and self.token_ok(query):
            return True
        cookie = conn.cookies.get(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode())

    def login_allowed(self, peer: str) -> bool:
        """False while ``peer`` has used up its wrong-login allowance (checked before the token is)."""
        bucket = self._login_buckets.get(peer)
        return bucket is None or bucket.available()

    def login_failed(self, peer: str) -> None:
        bucket = self._login_buckets.get(peer)
        if bucket is None:
            bucket = self._login_buckets[peer] = RateLimiter(LOGIN_RATE, LOGIN_BURST)
            while len(self._login_buckets) > MAX_TRACKED_PEERS:
                self._login_buckets.popitem(last=False)
        self._login_buckets.move_to_end(peer)
        bucket.allow()


class TokenBackend(AuthenticationBackend):
    """The verdict of :meth:`Auth.authorised` for ``AuthenticationMiddleware``: the token scope, or nothing."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if self.auth.authorised(conn):
            return AuthCredentials([TOKEN_SCOPE]), SimpleUser("owner")
        return None


def authenticated(conn: HTTPConnection) -> bool:
    """Whether the middleware found the token (or its cookie) on this request."""
    return TOKEN_SCOPE in conn.auth.scopes
