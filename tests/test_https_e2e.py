"""HTTPS on a real device process: its own CA verifies its port (HTTP and WebSocket), the setup port hands
out the CA and sends everything else to HTTPS, and a brought certificate renewed on disk is served to the
next connection without a restart."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.sync.client import connect

from edge.web import certs
from tests.conftest import DeviceProcess, free_port

pytestmark = pytest.mark.e2e

LOOPBACK = [ipaddress.ip_address("127.0.0.1")]


def trusting(cafile: Path) -> ssl.SSLContext:
    """What a tablet that installed the CA does: verify the chain and the host name against it alone."""
    return ssl.create_default_context(cafile=str(cafile))


def wait_https(url: str, context_of: Callable[[], ssl.SSLContext], device: DeviceProcess,
               timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if device.proc.poll() is not None:
            pytest.fail(f"device exited with {device.proc.returncode}:\n{device.logs()}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=2, context=context_of()) as answer:
                return answer.read()
        except (OSError, ssl.SSLError) as exc:
            last = exc
            time.sleep(0.2)
    pytest.fail(f"no HTTPS answer from {url} within {timeout}s ({last}):\n{device.logs()}", pytrace=False)


def peer_certificate(port: int, cafile: Path, host: str = "localhost") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            trusting(cafile).wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def test_own_ca_verifies_the_port_and_the_setup_port_hands_it_out(start_device, tmp_path: Path) -> None:
    setup_port = free_port()
    device = start_device({"DOGMON_TLS": "auto", "DOGMON_SETUP_PORT": str(setup_port)}, wait=False)
    ca_file = tmp_path / "data" / "tls" / "ca.crt"
    port = device.port

    health = json.loads(wait_https(f"https://127.0.0.1:{port}/healthz", lambda: trusting(ca_file), device))
    assert health["device_id"] == "testdog"
    # The names a browser would use verify too (the certificate names localhost and the address).
    with urllib.request.urlopen(f"https://localhost:{port}/", timeout=5, context=trusting(ca_file)) as page:
        assert b"<html" in page.read().lower()
    # Over the same port, the tablets' WebSocket is wss:// and verified the same way.
    with connect(f"wss://localhost:{port}/ws/ui", ssl=trusting(ca_file), open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
    assert first["type"] == "connection"
    # Plain HTTP on the HTTPS port gets no page.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    conn.close()
    # An untrusting client (no CA installed) is refused: the certificate is not from a public CA.
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"https://localhost:{port}/healthz", timeout=5, context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)

    # The setup port, plain HTTP: the CA certificate (what the tablet downloads), the same as on disk.
    with urllib.request.urlopen(f"http://127.0.0.1:{setup_port}/ca.crt", timeout=5) as answer:
        downloaded = answer.read()
        assert answer.headers["Content-Type"].startswith("application/x-x509-ca-cert")
    assert downloaded == ca_file.read_bytes()
    downloaded_file = tmp_path / "downloaded-ca.crt"
    downloaded_file.write_bytes(downloaded)
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/ca.crt", timeout=5, context=trusting(downloaded_file)) \
            as answer:
        assert answer.read() == downloaded  # public on the HTTPS port too
    # The setup page shows the fingerprint to compare with what the tablet shows.
    with urllib.request.urlopen(f"http://127.0.0.1:{setup_port}/setup", timeout=5) as answer:
        setup_page = answer.read().decode()
        assert "script" not in answer.headers["Content-Security-Policy"]
    der = certs.pem_to_der(downloaded)
    expected = hashlib.sha256(der).hexdigest().upper()
    assert ":".join(expected[i:i + 2] for i in range(0, 64, 2)) in setup_page
    assert "Android" in setup_page and "Fire OS" in setup_page and "iPad" in setup_page and "<svg" in setup_page
    # Everything else on the setup port is sent to HTTPS, path and query kept.
    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/", "/api/state?x=1"):
        with pytest.raises(urllib.error.HTTPError) as redirected:
            opener.open(f"http://127.0.0.1:{setup_port}{path}", timeout=5)
        assert redirected.value.code == 307
        assert redirected.value.headers["Location"] == f"https://127.0.0.1:{port}{path}"
    # A forged Host is not echoed into the redirect.
    with pytest.raises(urllib.error.HTTPError) as forged:
        opener.open(urllib.request.Request(f"http://127.0.0.1:{setup_port}/", headers={"Host": "evil.example"}),
                    timeout=5)
    assert "evil.example" not in forged.value.headers["Location"]
    # The start line says what to open.
    logs = device.logs()
    assert f"https://localhost:{port}/" in logs and "/setup" in logs and f"wss://127.0.0.1:{port}/ws/ui" in logs
    assert stat_mode(tmp_path / "data" / "tls" / "ca.key") == 0o600


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def test_a_brought_certificate_renewed_on_disk_is_served_to_the_next_connection(start_device, tmp_path: Path) -> None:
    ca = certs.make_ca("owner")
    ca_file = tmp_path / "owner-ca.crt"
    ca_file.write_bytes(ca.cert)
    cert_file, key_file = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    first = certs.make_server_cert(ca, ["localhost"], LOOPBACK)
    cert_file.write_bytes(first.cert)
    key_file.write_bytes(first.key)
    device = start_device({"DOGMON_TLS": "auto", "DOGMON_TLS_CERT": str(cert_file), "DOGMON_TLS_KEY": str(key_file),
                           "DOGMON_SETUP_PORT": "0"}, wait=False)
    wait_https(f"https://localhost:{device.port}/healthz", lambda: trusting(ca_file), device)
    assert peer_certificate(device.port, ca_file) == certs.pem_to_der(first.cert)
    # No own CA was made: nothing to hand out.
    assert not (tmp_path / "data" / "tls" / "ca.crt").exists()

    second = certs.make_server_cert(ca, ["localhost"], LOOPBACK)  # a renewal, as an ACME client writes it
    for path, data in ((key_file, second.key), (cert_file, second.cert)):
        part = path.with_suffix(".new")
        part.write_bytes(data)
        part.replace(path)
    assert peer_certificate(device.port, ca_file) == certs.pem_to_der(second.cert)
    assert "changed on disk" in device.logs()
