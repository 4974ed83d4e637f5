"""The device's own CA and server certificate: names and addresses in it, signed by the CA, issued again when
the addresses change, private key files, a brought certificate reloaded when it changes on disk."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from edge.config import ConfigError, load_config
from edge.web import certs
from edge.web.netnames import Reach
from edge.web.tls import OwnCa, ReloadingContext, TlsFiles

pytestmark = pytest.mark.unit

LAN = ipaddress.ip_address("192.168.1.20")
LOOP = ipaddress.ip_address("127.0.0.1")


def reach(*addresses: str) -> Reach:
    return Reach("pi", ("pi.local", "pi", "localhost"), tuple(ipaddress.ip_address(a) for a in addresses))


def sans(pem: bytes) -> tuple[set[str], set[str]]:
    names = certs.cert_alt_names(x509.load_pem_x509_certificate(pem))
    return ({n.value for n in names if isinstance(n, x509.DNSName)},
            {str(n.value) for n in names if isinstance(n, x509.IPAddress)})


def test_server_certificate_names_the_host_its_mdns_name_and_addresses_and_the_ca_signs_it() -> None:
    ca = certs.make_ca("pi", hostnames=["pi"])
    issued = certs.make_server_cert(ca, ["pi.local", "pi", "localhost"], [LAN, LOOP, ipaddress.ip_address("fd00::5")])
    dns, ips = sans(issued.cert)
    assert dns == {"pi.local", "pi", "localhost"}
    assert ips == {"192.168.1.20", "127.0.0.1", "fd00::5"}
    cert, ca_cert = x509.load_pem_x509_certificate(issued.cert), x509.load_pem_x509_certificate(ca.cert)
    cert.verify_directly_issued_by(ca_cert)  # raises if the CA did not sign it
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life <= datetime.timedelta(days=398), life  # browsers refuse more than 397 days
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certs.needs_reissue(issued.cert, ca.cert, ["pi.local", "pi", "localhost"],
                               [LAN, LOOP, ipaddress.ip_address("fd00::5")]) is None


def test_the_ca_vouches_only_for_local_names_and_private_addresses() -> None:
    """A tablet that trusts the device's CA must not trust it for a bank: the CA is name-constrained, and a
    public name or address never goes into the server certificate (it would void the whole certificate)."""
    ca = certs.make_ca("pi", hostnames=["pi"])
    constraints = x509.load_pem_x509_certificate(ca.cert).extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(s.value) for s in constraints.value.permitted_subtrees or ()}
    assert {"local", "localhost", "pi", "192.168.0.0/16", "10.0.0.0/8"} <= permitted
    issued = certs.make_server_cert(ca, ["pi.local", "example.com"], [LAN, ipaddress.ip_address("8.8.8.8")])
    assert sans(issued.cert) == ({"pi.local"}, {"192.168.1.20"})


def test_files_are_made_once_private_and_the_certificate_is_issued_again_when_an_address_changes(
        tmp_path: Path) -> None:
    now = [reach("192.168.1.20", "127.0.0.1")]
    own = OwnCa(tmp_path / "tls", lambda: now[0])
    assert own.ensure() == "no certificate yet"
    folder = tmp_path / "tls"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for secret in ("ca.key", "server.key"):
        assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600, secret
    ca_before, cert_before = (folder / "ca.crt").read_bytes(), (folder / "server.crt").read_bytes()
    assert own.ensure() is None and (folder / "server.crt").read_bytes() == cert_before  # still fits

    now[0] = reach("192.168.1.31", "127.0.0.1")  # DHCP gave the device another address
    assert own.ensure() == "names or addresses changed"
    assert (folder / "ca.crt").read_bytes() == ca_before  # the CA the tablets trust stays
    assert "192.168.1.31" in sans((folder / "server.crt").read_bytes())[1]
    assert "192.168.1.20" not in sans((folder / "server.crt").read_bytes())[1]
    assert stat.S_IMODE((folder / "server.key").stat().st_mode) == 0o600


def test_a_certificate_near_its_expiry_or_from_another_ca_is_issued_again() -> None:
    ca, other = certs.make_ca("pi"), certs.make_ca("pi")
    names, addresses = ["pi.local"], [LAN]
    old = certs.make_server_cert(ca, names, addresses, now=datetime.datetime.now(datetime.UTC)
                                 - datetime.timedelta(days=certs.SERVER_DAYS - 10))
    assert certs.needs_reissue(old.cert, ca.cert, names, addresses) == "expires soon"
    fresh = certs.make_server_cert(other, names, addresses)
    assert certs.needs_reissue(fresh.cert, ca.cert, names, addresses) in ("issued by another CA",
                                                                          "not signed by this CA")


def test_fingerprint_is_the_sha256_of_the_certificate_as_devices_show_it() -> None:
    ca = certs.make_ca("pi")
    shown = certs.fingerprint(ca.cert)
    assert len(shown.split(":")) == 32 and shown == shown.upper()
    assert shown.replace(":", "").lower() == __import__("hashlib").sha256(certs.pem_to_der(ca.cert)).hexdigest()


def test_a_certificate_replaced_on_disk_is_loaded_for_new_connections_and_a_broken_one_is_not(
        tmp_path: Path) -> None:
    ca = certs.make_ca("pi")
    files = TlsFiles(tmp_path / "cert.pem", tmp_path / "key.pem")
    first = certs.make_server_cert(ca, ["pi.local"], [LAN])
    files.cert.write_bytes(first.cert)
    files.key.write_bytes(first.key)
    reloading = ReloadingContext(files)
    assert not reloading.refresh()  # nothing changed
    second = certs.make_server_cert(ca, ["pi.local"], [LAN])
    files.key.write_bytes(second.key)  # half written: the key of the next pair, the certificate of the last
    assert not reloading.refresh() and reloading.loads == 1
    files.cert.write_bytes(second.cert + b"\n")
    assert reloading.refresh() and reloading.loads == 2
    assert isinstance(reloading.current, ssl.SSLContext)


def test_a_brought_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(Path("/dev/null"), {"DOGMON_TLS_CERT": str(tmp_path / "cert.pem")})
    assert "DOGMON_TLS_KEY" in str(raised.value)
    assert load_config(Path("/dev/null"), {}).tls == "auto"
