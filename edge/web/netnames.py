"""The names and addresses the device is reached by: its host name, ``NAME.local`` (mDNS), localhost, and the
current addresses of its interfaces (read with ``ifaddr``, the library python-zeroconf enumerates with).

Owns that list for the server certificate, the mDNS announcement and the URLs the start line prints, and
:func:`interface_addresses`, the one place the device enumerates its interface addresses: ``DeviceNames``
(``edge/web/origins.py``: Host and Origin checks) asks it too, so the addresses the device announces, puts in
its certificate and accepts requests for are one reading of one library (psutil, kept for telemetry, lists none).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ifaddr

if TYPE_CHECKING:  # only a type here: the server's Host checks import this module without loading cryptography
    from edge.web.certs import IpAddress

LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ANY_HOST = ("", "0.0.0.0", "::")


def host_label(name: str | None = None) -> str:
    """The host name as one DNS label (``pi`` of ``pi.lan``), lower case; ``dogmonitor`` if it is not one."""
    label = (name if name is not None else socket.gethostname()).split(".")[0].lower()
    return label if LABEL.fullmatch(label) else "dogmonitor"


def interface_addresses(include_loopback: bool = True, include_link_local: bool = False) -> list[IpAddress]:
    """Every address of every interface now, each once, in interface order; never with an IPv6 zone (``%eth0``).
    IPv6 link-local ones are left out unless asked for (a URL would need their zone; a ``Host`` header may
    still name one)."""
    found: list[IpAddress] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(raw.split("%", 1)[0])
            except ValueError:
                continue
            if (address.version == 6 and address.is_link_local and not include_link_local) \
                    or (address.is_loopback and not include_loopback):
                continue
            if address not in found:
                found.append(address)
    return found


@dataclass(frozen=True)
class Reach:
    """How the device is reached: names (first: ``NAME.local``) and addresses."""

    label: str
    names: tuple[str, ...]
    addresses: tuple[IpAddress, ...]

    @property
    def mdns_name(self) -> str:
        return f"{self.label}.local"

    def lan_addresses(self) -> list[IpAddress]:
        return [a for a in self.addresses if not a.is_loopback]

    def urls(self, scheme: str, port: int, path: str = "/",
             usable: Callable[[IpAddress], bool] | None = None) -> list[str]:
        """The URLs to open: ``NAME.local`` first, then the LAN addresses (those ``usable``), or localhost."""
        lan = self.lan_addresses()
        shown = [_host(a) for a in lan if usable is None or usable(a)]
        hosts = [self.mdns_name, *shown] if lan else ["localhost"]
        return [f"{scheme}://{h}:{port}{path}" for h in hosts]


def _host(address: IpAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


def reach(bind_host: str, device_id: str = "", hostname: str | None = None) -> Reach:
    """The names and addresses for a server bound to ``bind_host`` (all interfaces for 0.0.0.0 or ``::``)."""
    label = host_label(hostname)
    names = [f"{label}.local", label, "localhost"]
    device = device_id.lower()
    if device and device != label and LABEL.fullmatch(device):
        names.append(f"{device}.local")
    if bind_host in ANY_HOST:
        addresses = interface_addresses()
    else:
        try:
            addresses = [ipaddress.ip_address(bind_host)]
        except ValueError:  # a name: whatever it resolves to
            addresses = sorted({ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(bind_host, None)},
                               key=str)
        if all(a.is_loopback for a in addresses):
            names = ["localhost"]
    return Reach(label, tuple(names), tuple(addresses))
