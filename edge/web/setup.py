"""The setup page and the plain-HTTP setup port (``DOGMON_SETUP_PORT``) that serves it while HTTPS is on.

A tablet cannot open the HTTPS page before it trusts the device's CA, and cannot trust the CA before it has
it: the setup port answers plain HTTP with only public things: ``/setup`` (download the CA certificate,
its SHA-256 fingerprint to compare, the steps for Android, Fire OS, iPad and desktops, a QR code of the
page for the tablet's camera) and ``/ca.crt``. Every other path is redirected (307) to the same path over
HTTPS on the main port. The main port serves ``/setup`` and ``/ca.crt`` too, without a token.
"""

from __future__ import annotations

import html
import logging
import socket
from collections.abc import Callable

import segno
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from edge.web import certs
from edge.web.netnames import Reach
from edge.web.tls import TlsFiles

log = logging.getLogger(__name__)

CA_MEDIA_TYPE = "application/x-x509-ca-cert"  # what Android, iOS and Windows offer to install
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
STEPS = (
    ("Android tablet or phone",
     "Tap <b>Download the CA certificate</b>. Open <i>Settings → Security &amp; privacy → More security "
     "settings → Encryption &amp; credentials → Install a certificate → CA certificate</i>, tap "
     "<i>Install anyway</i> and pick the downloaded file. Chrome trusts it from then on."),
    ("Amazon Fire tablet (Fire OS)",
     "Download the certificate with Silk. Open <i>Settings → Security &amp; Privacy → Install certificates from "
     "storage</i> (older Fire OS: <i>Credential storage → Install from storage</i>), pick the file and name it "
     "<i>dogmonitor</i>."),
    ("iPad or iPhone",
     "Open this page in Safari and download the certificate; allow the configuration profile. Then "
     "<i>Settings → Profile Downloaded → Install</i>, and turn on full trust in <i>Settings → General → About → "
     "Certificate Trust Settings</i>."),
    ("Desktop",
     "<b>Windows:</b> open the file → <i>Install Certificate</i> → <i>Trusted Root Certification Authorities</i>. "
     "<b>macOS:</b> open it in Keychain Access (System) and set <i>Always Trust</i>. <b>Linux Chrome:</b> "
     "<i>Settings → Privacy and security → Security → Manage certificates → Authorities → Import</i>, tick "
     "<i>Trust this certificate for identifying websites</i>. <b>Firefox:</b> the same in "
     "<i>Settings → Certificates → View Certificates → Authorities</i>."),
)


class SetupPage:
    """``/setup``, ``/ca.crt`` and the redirect, for the device's ``reach`` and its certificate ``files``."""

    def __init__(self, files: TlsFiles, reach: Callable[[], Reach], https_port: Callable[[], int],
                 setup_port: Callable[[], int]) -> None:
        self.files = files
        self.reach = reach
        self.https_port = https_port
        self.setup_port = setup_port

    def _host(self, request: Request) -> str:
        """The host the request named when it is one of the device's; else ``NAME.local`` (no open redirect)."""
        now = self.reach()
        host = (request.url.hostname or "").lower()
        known = {*now.names, *(str(a) for a in now.addresses)}
        if host in known:
            return f"[{host}]" if ":" in host else host
        return now.mdns_name

    async def ca_cert(self, request: Request) -> Response:
        pem = self.files.ca_pem()
        if pem is None:
            return PlainTextResponse("this device serves a certificate of your own (DOGMON_TLS_CERT): no CA to "
                                     "install\n", 404, {"Cache-Control": "no-store"})
        name = f"dogmonitor-{self.reach().label}-ca.crt"
        return Response(pem, media_type=CA_MEDIA_TYPE, headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff"})

    async def page(self, request: Request) -> Response:
        host, port = self._host(request), self.https_port()
        https = f"https://{host}:{port}/"
        setup_url = f"http://{host}:{self.setup_port()}/setup" if self.setup_port() else f"{https}setup"
        pem = self.files.ca_pem()
        served = self.files.cert.read_bytes() if self.files.cert.is_file() else None
        return HTMLResponse(render(self.reach(), https, self.reach().urls("https", port), setup_url, pem, served),
                            headers=PAGE_HEADERS)

    async def redirect(self, request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        target = f"https://{self._host(request)}:{self.https_port()}{request.url.path}{query}"
        return RedirectResponse(target, 307, headers={"Cache-Control": "no-store"})


def render(reach: Reach, https: str, urls: list[str], setup_url: str, ca_pem: bytes | None,
           served_pem: bytes | None) -> str:
    """The setup page's HTML (no script: the page works wherever it is opened)."""
    esc = html.escape
    qr = segno.make(setup_url, error="m").svg_inline(scale=4, border=3, dark="#000", light="#fff")
    if ca_pem is not None:
        trust = (f'<p><a class="button" href="/ca.crt" download>Download the CA certificate</a></p>'
                 f'<p>Its SHA-256 fingerprint (compare it with the one your device shows before you trust it):</p>'
                 f'<p class="fp" id="fingerprint">{esc(certs.fingerprint(ca_pem))}</p>'
                 + "".join(f"<h2>{title}</h2><p>{text}</p>" for title, text in STEPS))
    else:
        fp = esc(certs.fingerprint(served_pem)) if served_pem else "unknown"
        trust = ("<p>This device serves a certificate of your own (DOGMON_TLS_CERT): there is nothing to install. "
                 f'The certificate served now has the SHA-256 fingerprint</p><p class="fp" id="fingerprint">{fp}</p>')
    others = "".join(f'<li><a href="{esc(u)}">{esc(u)}</a></li>' for u in urls)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dogmonitor setup: trust this device</title>
<style>
body {{ margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #10161d;
       color: #e8edf2; }}
main {{ max-width: 44rem; margin: 0 auto; padding: 16px; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 1.4em; }}
a {{ color: #7cc4ff; word-break: break-all; }}
.button {{ display: inline-block; padding: 12px 18px; border-radius: 8px; background: #2b7bd6; color: #fff;
          text-decoration: none; font-weight: 600; }}
.fp {{ font-family: ui-monospace, monospace; font-size: .85rem; word-break: break-all; background: #1b242e;
      padding: 8px; border-radius: 6px; }}
.qr {{ float: right; margin: 0 0 12px 16px; background: #fff; padding: 4px; border-radius: 6px; line-height: 0; }}
@media (max-width: 520px) {{ .qr {{ float: none; display: inline-block; margin: 0 0 12px; }} }}
</style></head>
<body><main>
<div class="qr" title="{esc(setup_url)}">{qr}</div>
<h1>Trust this dogmonitor ({esc(reach.label)})</h1>
<p>The device speaks HTTPS with a certificate from its own small certificate authority, made on this device
and valid only for local names and addresses. Trust it once on each tablet or computer, then open
<a href="{esc(https)}">{esc(https)}</a>. Scan the code with the tablet's camera to open this page there.</p>
{trust}
<h2>Then open</h2><ul>{others}</ul>
</main></body></html>
"""


class SetupServer:
    """The plain-HTTP setup port: its own small uvicorn server beside the main one, on its own socket."""

    def __init__(self, host: str, port: int, page: SetupPage) -> None:
        self.host, self.requested_port = host, port
        self.app = Starlette(routes=[Route("/setup", page.page, methods=["GET"]),
                                     Route("/ca.crt", page.ca_cert, methods=["GET"]),
                                     Route("/{path:path}", page.redirect, methods=["GET", "HEAD", "POST", "PUT",
                                                                                   "DELETE", "PATCH", "OPTIONS"])])
        self.server: uvicorn.Server | None = None
        self.socket: socket.socket | None = None

    async def start(self, bind: Callable[[str, int], socket.socket]) -> None:
        config = uvicorn.Config(self.app, interface="asgi3", lifespan="off", log_config=None, access_log=False,
                                server_header=False, date_header=False, proxy_headers=False, ws="none",
                                timeout_keep_alive=5, limit_concurrency=32)
        config.load()
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self.socket = bind(self.host, self.requested_port)
        await self.server.startup(sockets=[self.socket])

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1]) if self.socket is not None else 0

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.shutdown()
