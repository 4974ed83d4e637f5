"""HTTPS on the device's port: which certificate, kept where, and handed to new connections when it changes.

Owns the files of the device's own CA (``DATA_DIR/tls``: ``ca.key`` and ``server.key`` 0600 in a 0700
folder) and the one :class:`ssl.SSLContext` uvicorn listens with. Each TLS handshake first looks at the
certificate files (two ``stat`` calls); when they changed, a fresh context is loaded and the connection is
moved to it (``sni_callback``), so a bring-your-own certificate renewed on disk (``DOGMON_TLS_CERT``/
``DOGMON_TLS_KEY``) or a certificate issued again for new addresses serves the next connection with no
restart. Connections already open keep the certificate they began with. A pair that does not load (half
written, key and certificate not matching) is logged and the previous one kept until the next change.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from edge.util.fsutil import atomic_write, private_dir, private_file
from edge.web import certs
from edge.web.netnames import Reach

log = logging.getLogger(__name__)

TLS_DIR = "tls"
Signature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class TlsFiles:
    """Where the certificate served is; ``ca`` is the device's own CA (None: a certificate brought by the owner)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def ca_pem(self) -> bytes | None:
        return self.ca.read_bytes() if self.ca is not None and self.ca.is_file() else None


class OwnCa:
    """The device's CA and its server certificate in ``folder``: made on first start, the server certificate
    issued again when the device's names or addresses change or it nears expiry."""

    def __init__(self, folder: Path, reach: Callable[[], Reach]) -> None:
        self.folder = folder
        self.reach = reach
        self.files = TlsFiles(folder / "server.crt", folder / "server.key", folder / "ca.crt")

    def ensure(self) -> str | None:
        """Make what is missing or no longer fits; the reason when the server certificate was issued again."""
        private_dir(self.folder)
        now = self.reach()
        ca_cert, ca_key = self.folder / "ca.crt", self.folder / "ca.key"
        if not (ca_cert.is_file() and ca_key.is_file()):
            ca = certs.make_ca(now.label, hostnames=[now.label])
            atomic_write(ca_key, ca.key)
            atomic_write(ca_cert, ca.cert)
            os.chmod(ca_cert, 0o644)  # public: served at /ca.crt
            log.info("made the device's own certificate authority %s (SHA-256 %s)", ca_cert, certs.fingerprint(ca.cert))
        for secret in (ca_key, self.files.key):
            private_file(secret)
        ca = certs.Issued(ca_cert.read_bytes(), ca_key.read_bytes())
        names, addresses = now.names, now.addresses
        reason = "no certificate yet"
        if self.files.cert.is_file() and self.files.key.is_file():
            reason = certs.needs_reissue(self.files.cert.read_bytes(), ca.cert, names, addresses) or ""
        if not reason:
            return None
        issued = certs.make_server_cert(ca, names, addresses)
        # Key first: a handshake reading between the two renames fails to load and keeps the previous pair.
        atomic_write(self.files.key, issued.key)
        atomic_write(self.files.cert, issued.cert)
        log.info("issued the server certificate for %s (%s)", ", ".join(
            str(n.value) for n in certs.cert_alt_names(x509.load_pem_x509_certificate(issued.cert))), reason)
        return reason


def _signature(files: TlsFiles) -> Signature | None:
    try:
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in (files.cert.stat(), files.key.stat()))
    except OSError:
        return None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context with the pair in ``files`` (TLS 1.2 at least); raises ``ssl.SSLError``/``OSError``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


class ReloadingContext:
    """The listening context; each handshake is moved to the newest loadable pair of ``files``."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.current = server_context(files)  # a pair that does not load at start stops start-up
        self.signature = _signature(files)
        self.loads = 1
        self.listening = server_context(files)
        self.listening.sni_callback = self._pick

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        self.refresh()
        if sslobj.context is not self.current:
            sslobj.context = self.current

    def refresh(self) -> bool:
        """Load the files again if they changed; whether a new pair is now served."""
        signature = _signature(self.files)
        if signature is None or signature == self.signature:
            return False
        try:
            context = server_context(self.files)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.warning("certificate %s did not load (%s); still serving the previous one", self.files.cert, exc)
            return False
        self.current, self.signature = context, signature
        self.loads += 1
        log.info("serving the certificate %s (changed on disk)", self.files.cert)
        return True


def own_ca(data_dir: Path, reach: Callable[[], Reach]) -> OwnCa:
    return OwnCa(data_dir / TLS_DIR, reach)
