"""The device's one web server: HTTP and WebSocket on ``DOGMON_WS_PORT`` (uvicorn + Starlette).

``server`` owns the listening socket, routing, admission (token, origin, client limit) and the
narrow host interface features use (:class:`edge.web.server.WebHost`); ``auth`` owns the token and
the browser session cookie; ``wsconn`` the small WebSocket adapter handlers see; ``static`` the
tablet app's files; ``files`` streamed media responses.
"""
