"""Found by name: the device announces its web page by mDNS/DNS-SD (python-zeroconf), so a tablet that
resolves ``.local`` opens ``https://NAME.local:PORT/`` and a browser of services lists it.

Owns the two records: ``_https._tcp`` (``_http._tcp`` with TLS off; TXT ``path=/``), which generic
service browsers show, and ``_dogmonitor._tcp`` with TXT ``id`` (the device id), ``version``, ``scheme``
and ``path``, which clients of this project look for; both point at the host ``NAME.local`` and its
LAN addresses. Nothing is announced for a server bound to loopback only (no one else could reach it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from zeroconf import InterfaceChoice, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from edge.web.netnames import ANY_HOST, Reach

log = logging.getLogger(__name__)

DOGMONITOR_TYPE = "_dogmonitor._tcp.local."


def service_infos(reach: Reach, device_id: str, version: str, scheme: str, port: int) -> list[ServiceInfo]:
    """The web record and the dogmonitor record for the device as ``reach`` describes it."""
    server = f"{reach.mdns_name}."
    addresses = [str(a) for a in reach.lan_addresses()]
    instance = f"dogmonitor {device_id}"[:63]
    web_type = f"_{scheme}._tcp.local."
    return [
        ServiceInfo(web_type, f"{instance}.{web_type}", port, properties={"path": "/"}, server=server,
                    parsed_addresses=addresses),
        ServiceInfo(DOGMONITOR_TYPE, f"{instance}.{DOGMONITOR_TYPE}", port, server=server,
                    properties={"id": device_id, "version": version, "scheme": scheme, "path": "/"},
                    parsed_addresses=addresses),
    ]


class Announcer:
    """Registers the records on start, updates them when the addresses change, withdraws them on stop."""

    def __init__(self, bind_host: str, device_id: str, version: str, scheme: str) -> None:
        self.bind_host = bind_host
        self.device_id, self.version, self.scheme = device_id, version, scheme
        self.zeroconf: AsyncZeroconf | None = None
        self.infos: list[ServiceInfo] = []
        self.port = 0
        self._registering: asyncio.Task | None = None

    async def start(self, reach: Reach, port: int) -> bool:
        """Announce (probing and first announcements go on in the background); False when there is nothing to
        announce on."""
        if not reach.lan_addresses():
            log.info("mDNS: nothing announced (the server is reachable on loopback only)")
            return False
        interfaces = InterfaceChoice.All if self.bind_host in ANY_HOST else [self.bind_host]
        self.zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        self.port = port
        self.infos = service_infos(reach, self.device_id, self.version, self.scheme, port)
        self._registering = asyncio.create_task(self._register(list(self.infos)))
        return True

    async def _register(self, infos: list[ServiceInfo]) -> None:
        assert self.zeroconf is not None
        for info in infos:
            try:
                await (await self.zeroconf.async_register_service(info, allow_name_change=True))
            except NonUniqueNameException:
                log.warning("mDNS: the name %s is taken on this network", info.name)
        log.info("mDNS: announced %s", ", ".join(i.name for i in infos))

    async def update(self, reach: Reach) -> None:
        """The addresses changed: announce the new ones under the same names."""
        if self.zeroconf is None or (self._registering is not None and not self._registering.done()):
            return
        for old, new in zip(self.infos, service_infos(reach, self.device_id, self.version, self.scheme, self.port),
                            strict=True):
            old.addresses = new.addresses
            await (await self.zeroconf.async_update_service(old))

    async def stop(self) -> None:
        if self.zeroconf is None:
            return
        if self._registering is not None and not self._registering.done():
            self._registering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registering
        with contextlib.suppress(Exception):  # a goodbye that cannot be sent must not block shutdown
            await asyncio.wait_for(self.zeroconf.async_unregister_all_services(), 2.0)
        await self.zeroconf.async_close()
        self.zeroconf = None
