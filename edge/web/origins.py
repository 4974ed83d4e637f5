"""The device's own names, addresses and origins: what a ``Host`` header and a browser's ``Origin`` may be.

Owns :class:`DeviceNames`. A request whose ``Host`` is none of the device's names or addresses is a
DNS-rebinding attempt (a foreign name that resolves to the device) and is refused; a state-changing
request or WebSocket handshake whose ``Origin`` is not one of the device's own origins comes from some
other page (another port on the same host included, which the SameSite cookie does not tell apart).
The names are the loopback ones, the host name (``NAME``, ``NAME.local``), the bind address
or, on a wildcard bind, every interface address (:func:`edge.web.netnames.interface_addresses`, the one lister,
IPv6 link-local ones included); ``DOGMON_WS_ORIGINS`` adds origins (and their hosts)
such as a reverse proxy's. Addresses change (DHCP), so they are re-read when a miss is seen, at most
every ``REFRESH_SECONDS``. :meth:`DeviceNames.urls` lists the URLs to open, for the start line and ``pair``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from edge.util.net import is_loopback
from edge.web.netnames import interface_addresses

__all__ = ["DeviceNames", "host_names", "is_loopback", "split_host"]

REFRESH_SECONDS = 5.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD = ("", "0.0.0.0", "::")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def host_names() -> list[str]:
    """This machine's host name as ``NAME`` and ``NAME.local`` (mDNS). Not the FQDN: finding it is a DNS
    lookup, which may block for seconds; a proxy's or DNS name goes in ``DOGMON_WS_ORIGINS``."""
    name = socket.gethostname().lower()
    return list(dict.fromkeys([name, f"{name.split('.', 1)[0]}.local"]))


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) as (lower-case host without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    return host, int(port) if port.isdigit() else None


class DeviceNames:
    """The names and origins of a server bound to ``bind_host`` on ``port()``; ``schemes`` are the ones it
    speaks (a TLS listener adds ``https``)."""

    def __init__(self, bind_host: str, port: Callable[[], int], extra_origins: Iterable[str] = (),
                 schemes: tuple[str, ...] = ("http",), clock: Callable[[], float] = time.monotonic) -> None:
        self.bind_host = bind_host
        self.port = port
        self.schemes = schemes
        self.extra_origins = frozenset(o.strip().rstrip("/").lower() for o in extra_origins if o.strip())
        self.clock = clock
        self._hosts: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def _read(self) -> frozenset[str]:
        hosts = set(LOOPBACK_NAMES)
        if self.bind_host in WILDCARD:
            hosts.update(host_names())
            hosts.update(str(address) for address in interface_addresses(include_link_local=True))
        elif not is_loopback(self.bind_host):
            hosts.add(self.bind_host.lower())
            hosts.update(host_names())  # the name the bind address is found by
        hosts.update(split_host(urlsplit(origin).netloc)[0] for origin in self.extra_origins)
        return frozenset(h for h in hosts if h)

    def hosts(self, refresh: bool = False) -> frozenset[str]:
        """Names and addresses a request may be addressed to (re-read when asked and older than the refresh)."""
        now = self.clock()
        if not self._hosts or (refresh and now - self._read_at >= REFRESH_SECONDS):
            self._hosts, self._read_at = self._read(), now
        return self._hosts

    def host_ok(self, host_header: str | None) -> bool:
        """A ``Host`` header naming this device (any port: a proxy may forward another)."""
        if not host_header:
            return False
        host, _ = split_host(host_header)
        return host in self.hosts() or host in self.hosts(refresh=True)

    def origin_ok(self, origin: str) -> bool:
        """An ``Origin`` that is one of the device's own: its scheme, one of its hosts and its port, or an extra."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.extra_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in self.schemes or parts.path or parts.query:
            return False
        host, port = split_host(parts.netloc)
        if (port if port is not None else DEFAULT_PORTS.get(parts.scheme)) != self.port():
            return False
        return host in self.hosts() or host in self.hosts(refresh=True)

    def origins(self) -> list[str]:
        """Every origin the device answers as (for docs, diagnostics and the CSP)."""
        port = self.port()
        out = [f"{scheme}://{_bracket(host)}:{port}" for scheme in self.schemes for host in sorted(self.hosts())]
        return out + sorted(self.extra_origins)

    def urls(self, path: str = "/") -> list[str]:
        """The URLs to open in a browser, most useful first: by name, then by address, then loopback."""
        port, scheme = self.port(), self.schemes[-1]
        if is_loopback(self.bind_host):
            hosts = [self.bind_host if self.bind_host != "localhost" else "127.0.0.1"]
        else:
            names = [h for h in host_names() if h.endswith(".local")]
            addresses = [self.bind_host] if self.bind_host not in WILDCARD else [
                str(a) for a in interface_addresses(include_loopback=False)]
            hosts = names + addresses
        return [f"{scheme}://{_bracket(h)}:{port}{path}" for h in dict.fromkeys(hosts)]


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
