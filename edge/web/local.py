"""How a tool on the device's own machine reaches its web port: ``dogmonitor watch``, ``diag`` and ``pair``.

Owns the scheme (``https``/``wss`` when ``DOGMON_TLS`` is on), the host to dial and the verifying client
context. With the device's own CA the tool trusts that CA's certificate (``DATA_DIR/tls/ca.crt``) and
dials the loopback address the server certificate names; with a certificate brought by the owner it dials
the certificate's first DNS name (its own addresses may be absent from it) and trusts the system's CAs
plus that certificate, read from local disk. Verification is never turned off: a tool that cannot verify
says so, as a browser would.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from edge.config import Config
from edge.web.tls import TLS_DIR

ANY_HOST = ("0.0.0.0", "::", "")


def tls_on(config: Config) -> bool:
    """Whether the main port speaks HTTPS (``DOGMON_TLS=auto`` always serves a certificate)."""
    return config.tls != "off"


def web_scheme(config: Config) -> str:
    return "https" if tls_on(config) else "http"


def own_ca_file(config: Config) -> Path:
    return config.data_dir / TLS_DIR / "ca.crt"


def _cert_dns_name(cert_file: Path) -> str | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    dns = names.get_values_for_type(x509.DNSName)
    return next((n for n in dns if not n.startswith("*")), None)


@dataclass(frozen=True)
class LocalDevice:
    """The device's web port as this machine reaches it."""

    host: str                  # as written in a URL (an IPv6 address in brackets)
    port: int
    tls: bool
    ca_file: Path | None       # the device's own CA; None: the system's CAs (and ``owner_cert``)
    owner_cert: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def http(self, path: str = "") -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}{path}"

    def ws(self, path: str = "/ws/ui") -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.address}{path}"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context: the device's CA, or the system's CAs plus the owner's certificate;
        ``FileNotFoundError`` while the device has made no CA yet."""
        if self.ca_file is not None:
            if not self.ca_file.is_file():  # the device makes it before it listens: it has not started yet
                raise FileNotFoundError(f"no device CA yet at {self.ca_file}")
            return ssl.create_default_context(cafile=str(self.ca_file))
        context = ssl.create_default_context()
        if self.owner_cert is not None and self.owner_cert.is_file():
            # The certificate the device serves, read from this machine's disk, is trusted as it is.
            context.load_verify_locations(cafile=str(self.owner_cert))
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    def client_ssl(self, url: str) -> ssl.SSLContext | None:
        """The context for ``url``: one for ``https``/``wss``, None for plain ``http``/``ws``."""
        return self.ssl_context() if url.startswith(("https:", "wss:")) else None


def local_device(config: Config) -> LocalDevice:
    host = "127.0.0.1" if config.ws_host in ANY_HOST else config.ws_host
    owner_cert = config.tls_cert if config.tls_cert is not None and config.tls_key is not None else None
    if tls_on(config) and owner_cert is not None:
        host = _cert_dns_name(owner_cert) or host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca_file = own_ca_file(config) if owner_cert is None else None
    return LocalDevice(host, config.ws_port, tls_on(config), ca_file, owner_cert)
