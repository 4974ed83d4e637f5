"""How the owner reaches the web server: HTTPS (``DOGMON_TLS``), the setup port, mDNS, the URLs to print.

Owns the order of it for one :class:`WebServer`: before it starts, the certificate (the device's own CA,
made or brought up to date, or the owner's files) and its reloading context; after, the setup port and the
mDNS records; every :data:`REFRESH_SECONDS` the device's addresses are read again, and a change issues the
certificate again and updates the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from edge import __version__
from edge.config import Config
from edge.web import certs
from edge.web.mdns import Announcer
from edge.web.netnames import Reach, reach
from edge.web.server import WebServer, bind_socket
from edge.web.setup import SetupPage, SetupServer
from edge.web.tls import OwnCa, ReloadingContext, TlsFiles, own_ca

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0


class WebAccess:
    def __init__(self, config: Config, web: WebServer) -> None:
        self.config, self.web = config, web
        self.reach: Reach = reach(config.ws_host, config.device_id)
        self.own_ca: OwnCa | None = None
        self.tls: ReloadingContext | None = None
        self.setup: SetupServer | None = None
        self.announcer: Announcer | None = None
        self._task: asyncio.Task | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def prepare(self) -> None:
        """Before the server starts: its certificate, and ``/setup`` and ``/ca.crt`` on the main port."""
        config = self.config
        if config.tls == "off":
            return
        if config.tls_cert is not None and config.tls_key is not None:
            files = TlsFiles(config.tls_cert, config.tls_key)
        else:
            self.own_ca = own_ca(config.data_dir, lambda: self.reach)
            self.own_ca.ensure()
            files = self.own_ca.files
        self.tls = ReloadingContext(files)
        self.web.ssl_context = self.tls.listening
        page = SetupPage(files, lambda: self.reach, lambda: self.web.port,
                         lambda: self.setup.port if self.setup is not None else 0)
        self.web.add_route("/setup", page.page, needs_token=False)
        self.web.add_route("/ca.crt", page.ca_cert, needs_token=False)
        if config.setup_port:
            self.setup = SetupServer(config.ws_host, config.setup_port, page)

    async def start(self) -> None:
        """After the server started: the setup port, the mDNS records, the address watch."""
        if self.setup is not None:
            await self.setup.start(bind_socket)
        if self.config.mdns:
            self.announcer = Announcer(self.config.ws_host, self.config.device_id, __version__, self.scheme)
            await self.announcer.start(self.reach, self.web.port)
        self._task = asyncio.create_task(self._watch())

    def urls(self) -> list[str]:
        """What to open, for the start line: the app, then the setup page."""
        # With the device's own CA, an address its certificate cannot name would only show a warning.
        usable = certs.permitted_address if self.own_ca is not None else None
        found = self.reach.urls(self.scheme, self.web.port, usable=usable)
        if self.setup is not None:
            found.append(self.reach.urls("http", self.setup.port, "/setup")[0])
        return found

    def connection_info(self) -> dict[str, str]:
        """For the ``connection`` message: ``setup_url``, the setup port's page (how to trust the device's
        certificate), when there is one."""
        if self.setup is None:
            return {}
        return {"setup_url": self.reach.urls("http", self.setup.port, "/setup")[0]}

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not bring the certificate or mDNS records up to date")

    async def refresh(self) -> None:
        now = await asyncio.to_thread(reach, self.config.ws_host, self.config.device_id)
        changed = now != self.reach
        self.reach = now
        if self.own_ca is not None:
            await asyncio.to_thread(self.own_ca.ensure)  # also renews a certificate near its expiry
        if changed and self.announcer is not None:
            await self.announcer.update(now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.announcer is not None:
            await self.announcer.stop()
        if self.setup is not None:
            await self.setup.stop()
