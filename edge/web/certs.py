"""The device's own certificate authority and its server certificate, as bytes (no file, no network).

Owns what goes into them: a CA that may only vouch for local names and private addresses (X.509 name
constraints, so a tablet that trusts it trusts nothing on the internet through it, even if its key leaked),
and a server certificate whose subject alternative names are the device's names and addresses, valid at
most :data:`SERVER_DAYS` days (browsers refuse longer). :func:`needs_reissue` says when the certificate no
longer fits (an address came or went, a name changed, the CA changed, expiry is near).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CA_DAYS = 3650                    # the CA a tablet was told to trust: long-lived, so it is installed once
SERVER_DAYS = 397                 # browsers refuse server certificates valid longer (CA/Browser Forum)
RENEW_DAYS = 30                   # a server certificate this close to expiry is issued again
BACKDATE = datetime.timedelta(hours=1)  # a tablet whose clock is a little behind still accepts it
# Where the CA may vouch: mDNS names, localhost, loopback, private and link-local ranges (RFC 1918, 6598,
# 4193). A public address is never put in the server certificate: the constraints would void it.
PERMITTED_DNS = ("local", "localhost")
PERMITTED_NETWORKS: tuple[IpNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM."""

    cert: bytes
    key: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def permitted_name(name: str, hostnames: Iterable[str] = ()) -> bool:
    """Whether the CA's constraints allow the DNS ``name`` (a ``.local`` name, localhost, or a bare host name
    it was made for)."""
    allowed = (*PERMITTED_DNS, *hostnames)
    name = name.lower().rstrip(".")
    return any(name == base or name.endswith("." + base) for base in allowed)


def permitted_address(address: IpAddress) -> bool:
    return any(address.version == net.version and address in net for net in PERMITTED_NETWORKS)


def make_ca(label: str, hostnames: Iterable[str] = (), now: datetime.datetime | None = None) -> Issued:
    """A new CA (P-256) named after the device, constrained to local names (``hostnames``: bare host names
    it may also vouch for) and private addresses."""
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dogmonitor"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"dogmonitor {label} local CA"[:64])])
    dns = sorted({*PERMITTED_DNS, *(h.lower() for h in hostnames)})
    constraints = x509.NameConstraints(
        permitted_subtrees=[*(x509.DNSName(d) for d in dns), *(x509.IPAddress(n) for n in PERMITTED_NETWORKS)],
        excluded_subtrees=None)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(constraints, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def ca_hostnames(ca_cert: x509.Certificate) -> tuple[str, ...]:
    """The bare host names the CA's constraints name besides the fixed ones."""
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(s.value) for s in constraints.permitted_subtrees or ()
                 if isinstance(s, x509.DNSName) and s.value not in PERMITTED_DNS)


def alt_names(names: Iterable[str], addresses: Iterable[IpAddress],
              ca_cert: x509.Certificate) -> list[x509.GeneralName]:
    """The subject alternative names for ``names`` and ``addresses``: those the CA may vouch for, sorted."""
    hostnames = ca_hostnames(ca_cert)
    dns = sorted({n.lower().rstrip(".") for n in names if n and permitted_name(n, hostnames)})
    ips = sorted({a for a in addresses if permitted_address(a)}, key=lambda a: (a.version, int(a)))
    return [*(x509.DNSName(n) for n in dns), *(x509.IPAddress(a) for a in ips)]


def make_server_cert(ca: Issued, names: Iterable[str], addresses: Iterable[IpAddress],
                     now: datetime.datetime | None = None) -> Issued:
    """A server certificate signed by ``ca`` for the permitted ``names`` and ``addresses``."""
    now = now or _now()
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    sans = alt_names(names, addresses, ca_cert)
    if not sans:
        raise ValueError("no name or address the certificate may be issued for")
    key = ec.generate_private_key(ec.SECP256R1())
    common = next((str(s.value) for s in sans if isinstance(s, x509.DNSName)), "dogmonitor")
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def cert_alt_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def needs_reissue(server_pem: bytes, ca_pem: bytes, names: Iterable[str], addresses: Iterable[IpAddress],
                  now: datetime.datetime | None = None) -> str | None:
    """Why the server certificate must be issued again (a reason to log), or None while it still fits."""
    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(server_pem)
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
    except ValueError:
        return "unreadable certificate"
    if cert.issuer != ca_cert.subject:
        return "issued by another CA"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by this CA"
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_DAYS):
        return "expires soon"
    wanted = alt_names(names, addresses, ca_cert)
    have = cert_alt_names(cert)
    if sorted(map(repr, wanted)) != sorted(map(repr, have)):
        return "names or addresses changed"
    return None


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate (DER), as the colon-separated hex that browsers and phones show."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def pem_to_der(cert_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
