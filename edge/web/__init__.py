"""The device's one web server: HTTP and WebSocket on ``DOGMON_WS_PORT`` (uvicorn + Starlette).

``server`` owns the listening socket, routing, admission (token, origin, client limit), the exception
handlers that answer refusals, and the narrow host interface features use
(:class:`edge.web.server.WebHost`); ``auth`` owns the token, the browser session cookie and the
authentication backend; ``protocols`` uvicorn's HTTP protocol with a header deadline and the
connection under each request; ``wsconn`` the small WebSocket adapter handlers see; ``static`` the
tablet app's files; ``files`` streamed media responses (Starlette's ``FileResponse``).
"""
