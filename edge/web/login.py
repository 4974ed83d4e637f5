"""The routes a browser signs in and out with: ``GET /api/session``, ``POST /api/login``, ``POST /api/pair``,
``GET /pair?code=…``, ``POST /api/logout`` (``?all=1``: sign out everywhere).

Owns :class:`SessionRoutes`. ``/api/login`` takes ``{"token": …}`` or ``{"code": …}`` (a token field holding
something shaped like a pairing code is tried as one, so the page's one field takes either);
``/api/pair`` takes ``{"code": …}``; ``GET /pair?code=`` is the link the start line and ``dogmonitor pair``
print (and a QR code may carry): it opens a session and sends the browser to ``/``. Every success opens a
new server-side session (:class:`edge.web.sessions.SessionStore`); every failure spends from the peer's
wrong-credential allowance (:class:`edge.web.auth.Auth`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from edge.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, Auth, authenticated
from edge.web.pairing import Pairing

MAX_LOGIN_BODY = 4096          # bytes of a POST /api/login body (the token is at most 256 characters)

JsonReply = Callable[..., Response]
Refuse = Callable[..., Response]
ReadBody = Callable[[Request, int], Any]


class SessionRoutes:
    def __init__(self, auth: Auth, pairing: Pairing | None, refuse: Refuse, json: JsonReply, error: JsonReply,
                 read_body: ReadBody, peer_of: Callable[[HTTPConnection], str]) -> None:
        self.auth, self.pairing = auth, pairing
        self.refuse, self.json, self.error, self.read_body, self.peer_of = refuse, json, error, read_body, peer_of

    async def session(self, request: Request) -> Response:
        return self.json({"auth_required": self.auth.required, "authenticated": authenticated(request),
                          "pairing": self.pairing is not None})

    async def login(self, request: Request) -> Response:
        return await self._sign_in(request, ("token", "code"))

    async def pair(self, request: Request) -> Response:
        return await self._sign_in(request, ("code",))

    async def pair_link(self, request: Request) -> Response:
        """``GET /pair?code=``: the printed link; a wrong or used code says so in plain text."""
        peer = self.peer_of(request)
        if self.auth.required and self.auth.blocked(peer):
            return PlainTextResponse("too many wrong codes from this address; wait a minute\n", 429,
                                     {"Retry-After": "60", "Cache-Control": "no-store"})
        code = request.query_params.get("code", "")
        if self.auth.required and not self._redeem(code):
            self.auth.failed(peer)
            self.refuse(request, "unauthorized", "wrong or used pairing code")
            return PlainTextResponse("this pairing code is wrong, used or expired: run `dogmonitor pair` on the "
                                     "device for a new one\n", 401, {"Cache-Control": "no-store"})
        response = RedirectResponse("/", 303, {"Cache-Control": "no-store"})
        self._set_cookie(response, self.auth.open_session())
        return response

    async def logout(self, request: Request) -> Response:
        everywhere = request.query_params.get("all") in ("1", "true")
        if everywhere and not authenticated(request):
            return self.refuse(request, "unauthorized", "signing out everywhere needs a session or the token")
        cookie = request.cookies.get(SESSION_COOKIE)
        ended = self.auth.sessions.end_all() if everywhere else int(bool(cookie and self.auth.sessions.end(cookie)))
        response = self.json({"authenticated": False, "auth_required": self.auth.required, "ended": ended})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def _sign_in(self, request: Request, fields: tuple[str, ...]) -> Response:
        peer = self.peer_of(request)
        if not self.auth.required:
            response = self.json({"authenticated": True, "auth_required": False})
            self._set_cookie(response, self.auth.open_session())
            return response
        if self.auth.blocked(peer):
            self.refuse(request, "rate_limited", "too many wrong logins")
            return self.error("rate_limited", "too many wrong logins; wait a minute", headers={"Retry-After": "60"})
        raw = await self.read_body(request, MAX_LOGIN_BODY)  # anyone may post here: a token's worth, never more
        if raw is None:
            return self.error("too_large", "a login body is a token or a pairing code")
        if not self._accept(_fields(raw), fields):
            self.auth.failed(peer)
            self.refuse(request, "unauthorized", "wrong token or pairing code at login")
            return self.error("unauthorized", "wrong token or pairing code")
        response = self.json({"authenticated": True, "auth_required": True})
        self._set_cookie(response, self.auth.open_session())
        return response

    def _accept(self, body: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
        token, code = body.get("token"), body.get("code")
        if "token" in fields and isinstance(token, str):
            if self.auth.token_ok(token):
                return True
            if self.pairing is not None and self.pairing.looks_like_code(token):
                return self._redeem(token)
            return False
        return "code" in fields and isinstance(code, str) and self._redeem(code)

    def _redeem(self, code: str) -> bool:
        return self.pairing is not None and self.pairing.looks_like_code(code) and self.pairing.redeem(code)

    @staticmethod
    def _set_cookie(response: Response, value: str) -> None:
        response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, path="/", httponly=True,
                            samesite="strict")


def _fields(raw: bytes) -> Mapping[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
