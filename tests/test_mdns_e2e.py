"""Found by name: a device announces itself by mDNS, and a zeroconf browser on another host finds it.

Both hosts are network namespaces this test makes, joined by a veth pair: the multicast never leaves them
(the machine's own network sees none of it). The device runs in one with ``ip netns exec``; the browser, a
plain python-zeroconf client, in the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import __version__

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
DEVICE_ADDRESS, CLIENT_ADDRESS = "10.231.7.1", "10.231.7.2"

BROWSE = r"""
import json, socket, ssl, sys, time
from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, Zeroconf

found = {}
zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)

class Listener:
    def add_service(self, zc, type_, name):
        found.setdefault(type_, name)
    update_service = add_service
    def remove_service(self, zc, type_, name):
        pass

browsers = [ServiceBrowser(zc, t, Listener()) for t in ("_dogmonitor._tcp.local.", "_https._tcp.local.")]
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline and len(found) < 2:
    time.sleep(0.2)
out = {"types": sorted(found)}
if "_dogmonitor._tcp.local." in found:
    info = zc.get_service_info("_dogmonitor._tcp.local.", found["_dogmonitor._tcp.local."], timeout=5000)
    out.update(name=info.name, port=info.port, server=info.server, addresses=info.parsed_addresses(),
               txt={k.decode(): (v or b"").decode() for k, v in info.properties.items()})
    # https://NAME.local:PORT/ as a tablet that resolves .local and trusts the device's CA opens it
    context = ssl.create_default_context(cafile=sys.argv[2])
    with socket.create_connection((info.parsed_addresses()[0], info.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=info.server.rstrip(".")) as tls:
        host = info.server.rstrip(".").encode()
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        out["healthz"] = tls.recv(200).decode(errors="replace").split("\r\n")[0]
zc.close()
print(json.dumps(out))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, str]]:
    """Two network namespaces joined by a veth pair, with a multicast route on each end and nothing else."""
    tag = os.getpid() % 100000
    device_ns, client_ns = f"dogmon-dev{tag}", f"dogmon-cli{tag}"
    device_if, client_if = f"dmd{tag}", f"dmc{tag}"
    ip("netns", "add", device_ns)
    try:
        ip("netns", "add", client_ns)
        ip("link", "add", device_if, "type", "veth", "peer", "name", client_if)
        for ns, link, address in ((device_ns, device_if, DEVICE_ADDRESS), (client_ns, client_if, CLIENT_ADDRESS)):
            ip("link", "set", link, "netns", ns)
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", link)
            ip("-n", ns, "link", "set", link, "up", "multicast", "on")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", link)
        yield device_ns, client_ns
    finally:
        for ns in (client_ns, device_ns):  # the veth pair goes with its namespaces
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def test_a_zeroconf_browser_on_the_lan_finds_the_device_and_opens_it_by_name(two_hosts, start_device,
                                                                             tmp_path: Path) -> None:
    device_ns, client_ns = two_hosts
    device = start_device({"DOGMON_WS_HOST": "0.0.0.0", "DOGMON_WS_TOKEN": "netns-lan-token-0123456789",
                           "DOGMON_MDNS": "1", "DOGMON_TLS": "auto", "DOGMON_SETUP_PORT": "0"},
                          wait=False, wrapper=["ip", "netns", "exec", device_ns])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    ca_file = tmp_path / "data" / "tls" / "ca.crt"
    result = None
    for _ in range(3):  # the device may still be loading its model when the first browse ends
        browse = subprocess.run(["ip", "netns", "exec", client_ns, sys.executable, "-c", BROWSE, "15", str(ca_file)],
                                capture_output=True, text=True, timeout=90, env=env)
        assert device.proc.poll() is None, device.logs()
        if browse.returncode == 0:
            result = json.loads(browse.stdout)
            if "port" in result:
                break
    assert result is not None and "port" in result, (browse.stdout, browse.stderr, device.logs())
    assert result["types"] == ["_dogmonitor._tcp.local.", "_https._tcp.local."]
    assert result["txt"]["id"] == "testdog" and result["txt"]["version"] == __version__, result
    assert result["txt"]["scheme"] == "https"
    assert result["port"] == device.port and DEVICE_ADDRESS in result["addresses"], result
    assert result["server"].endswith(".local."), result
    assert result["healthz"] == "HTTP/1.1 200 OK", result
    assert f"https://{result['server'].rstrip('.')}:{device.port}/" in device.logs()
