"""Start-up check that the WebSocket/HTTP port can be bound, before models load or the data dir opens.

Owns :func:`ensure_port_free`. A second ``dogmonitor run`` on the same port would otherwise load the
model and open the event log of the first one's data dir before failing with ``Errno 98``; this test
bind fails in milliseconds and says what is probably going on and which key to change. The real bind
happens later in the server; the socket here is closed at once (``SO_REUSEADDR`` as the server sets it,
so a port in TIME_WAIT after a restart does not count as taken).
"""

from __future__ import annotations

import errno
import socket


class PortInUseError(RuntimeError):
    """The configured port is taken; ``str()`` is the message for the user."""


def ensure_port_free(host: str, port: int, key: str = "DOGMON_WS_PORT") -> None:
    """Raise PortInUseError when ``host:port`` cannot be bound because something listens there."""
    if port == 0:  # any free port: nothing to check
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # the server reports an unusable DOGMON_WS_HOST itself
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return  # e.g. an address not on this machine: the server's own error says so
                raise PortInUseError(
                    f"port {port} on {host} is already in use: another dogmonitor is probably running "
                    f"(`dogmonitor diag`, `systemctl status dogmonitor`); to run a second one, set {key} "
                    f"to a free port (and its own DOGMON_DATA_DIR)") from None
