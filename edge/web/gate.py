"""The checks every request and WebSocket handshake passes before authentication and routing, and the
headers every answer carries.

Owns :class:`Gate`, a pure ASGI middleware, in this order:

1. ``Host`` must name the device (:class:`edge.web.origins.DeviceNames`): a foreign one is DNS rebinding → 421.
2. A peer that used up its wrong-credential allowance (:meth:`edge.web.auth.Auth.blocked`) gets 429 for
   anything carrying a credential, before the credential is looked at.
3. A WebSocket handshake or a state-changing request (not GET/HEAD/OPTIONS) must come from one of the
   device's own origins: a foreign ``Origin`` → 403; no ``Origin`` is a non-browser client, allowed only
   when it does not rely on the session cookie (a browser always sends ``Origin`` on these).
4. A request body is JSON: any other ``Content-Type`` → 415 (a ``text/plain`` no-cors POST from
   another page never reaches a handler).

Every answer gets the security headers (:func:`security_headers`: a CSP with no inline script,
no framing, no referrer, no sniffing, same-origin resources only), and deletes a cookie that named
no live session.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import HTTPConnection, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from edge.web.auth import SESSION_COOKIE, STALE_COOKIE, Auth, offered_credentials
from edge.web.origins import DeviceNames

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER = 60
Refuse = Callable[[HTTPConnection, str, str, int], Response]


def security_headers(host: str) -> dict[str, str]:
    """For every answer; ``host`` (already checked to be the device's) names the WebSocket origin, which
    not every browser counts as ``'self'``."""
    csp = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
           f"media-src 'self' blob:; connect-src 'self' ws://{host} wss://{host}; worker-src 'self'; "
           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {"Content-Security-Policy": csp, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin"}


class Gate:
    def __init__(self, app: ASGIApp, auth: Auth, names: DeviceNames, refuse: Refuse) -> None:
        self.app, self.auth, self.names, self.refuse = app, auth, names, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        refusal = self._refusal(conn)
        host = conn.headers.get("host", "")
        extra = security_headers(host) if refusal is None or refusal.status_code != 421 else {}

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
                if scope.get("state", {}).get(STALE_COOKIE):
                    headers.append("set-cookie", f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=strict")
            await send(message)

        if refusal is None:
            await self.app(scope, receive, send_with_headers)
        elif scope["type"] == "websocket":
            await WebSocket(scope, receive, send_with_headers).send_denial_response(refusal)
        else:
            await refusal(scope, receive, send_with_headers)

    def _refusal(self, conn: HTTPConnection) -> Response | None:
        headers = conn.headers
        if not self.names.host_ok(headers.get("host")):
            return self.refuse(conn, "unauthorized", "unknown host name: use the device's name or address", 421)
        peer = conn.client.host if conn.client else "?"
        offered = offered_credentials(headers, QueryParams(conn.scope.get("query_string", b"")),
                                      cookie_parser(headers.get("cookie", "")))
        if offered and self.auth.required and self.auth.blocked(peer):
            response = self.refuse(conn, "rate_limited", "too many wrong credentials from this address; wait a minute",
                                   429)
            response.headers["Retry-After"] = str(RETRY_AFTER)
            return response
        websocket = conn.scope["type"] == "websocket"
        if websocket or conn.scope.get("method", "GET") not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not self.names.origin_ok(origin):
                return self.refuse(conn, "unauthorized", "origin not allowed: open the page from the device itself",
                                   403)
            if origin is None and offered == {"cookie"}:
                return self.refuse(conn, "unauthorized", "a session cookie needs its page's Origin", 403)
            if not websocket and _has_body(headers) and not _is_json(headers):
                return self.refuse(conn, "invalid_message", "a request body must be Content-Type: application/json",
                                   415)
        return None


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


def _is_json(headers: Headers) -> bool:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower() == "application/json"
