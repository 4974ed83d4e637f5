"""Private by default (issue 19 items 1-3), against a real device process: pairing, sessions, origins and
hosts, and limits that hold against one slow or guessing address.

Attackers use other loopback source addresses (127.0.0.2, 127.0.0.3: all of 127/8 is this machine), so
the per-address limits can be told apart from the owner's client on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from websockets.exceptions import InvalidStatus

from edge.transports.rest import BROADCAST_PATHS, ROUTES
from edge.web.static import STATIC_DIR
from tests.helpers import ws_connect

pytestmark = pytest.mark.e2e

TOKEN = "owner-token-0123456789"
JSON = {"Content-Type": "application/json"}


def call(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
         source: str = "127.0.0.1", timeout: float = 10) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def cookie_of(response: http.client.HTTPResponse) -> dict[str, str]:
    [cookie] = [c for c in response.headers.get_all("set-cookie") or [] if "Max-Age=0" not in c]
    return {"Cookie": cookie.split(";")[0]}


def no_camera(tmp_path: Path) -> dict[str, str]:
    return {"DOGMON_SOURCE": str(tmp_path / "no-such-camera.mp4")}  # cheap: nothing to decode or detect


def wait_for_log(device, pattern: str, timeout: float = 10) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, device.logs())
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the log:\n{device.logs()}")


def read_terminal_qr(lines: list[str]) -> str:
    """What a camera reads from a QR code drawn with half blocks (light drawn on a dark terminal)."""
    import cv2
    import numpy as np

    halves = {" ": (0, 0), "▀": (255, 0), "▄": (0, 255), "█": (255, 255)}
    rows = [[halves[c][half] for c in line.ljust(len(lines[0]))] for line in lines for half in (0, 1)]
    image = np.kron(np.array(rows, dtype=np.uint8), np.ones((8, 8), dtype=np.uint8))
    image = cv2.copyMakeBorder(image, 32, 32, 32, 32, cv2.BORDER_CONSTANT, value=255)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    return str(text)


def test_a_default_device_is_closed_until_paired_and_a_code_works_once(start_device, tmp_path: Path) -> None:
    device = start_device({**no_camera(tmp_path), "DOGMON_WS_TOKEN": ""})  # the shipped default
    port = device.port
    token_file = tmp_path / "data" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(token_file.read_text().strip()) >= 22
    started = wait_for_log(device, r"open (http://127\.0\.0\.1:\d+/) and enter the pairing code (\w{4}-\w{4}) "
                                   r"\(one-time, valid 10 min\), or open (\S+/pair\?code=\w{8})")
    assert started.group(1) == f"http://127.0.0.1:{port}/"
    code = started.group(2)

    # every API path, media, the snapshot and both WebSockets: 401 until paired
    for route in ROUTES:
        body = b"{}" if route.method in ("POST", "PUT") else None
        assert call(port, route.method, route.path, JSON if body else None, body)[0] == 401, route.path
    for path in BROADCAST_PATHS.values():
        assert call(port, "POST", path, JSON, b"{}")[0] == 401, path
    for path in ("/media/snap-20260101T000000-deadbeef", "/snapshot.jpg"):
        assert call(port, "GET", path)[0] == 401, path
    for path in ("/ws/ui", "/ws/video"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(f"ws://127.0.0.1:{port}{path}")
        assert refused.value.response.status_code == 401, path

    # the printed code, typed into the page's one field, opens a session once and never again
    assert call(port, "POST", "/api/pair", JSON, orjson.dumps({"code": "ABCD-EFGH"}))[0] == 401
    status, _, response = call(port, "POST", "/api/login", JSON, orjson.dumps({"token": code.lower()}))
    assert status == 200
    jar = cookie_of(response)
    assert call(port, "GET", "/api/state", jar)[0] == 200
    assert call(port, "POST", "/api/pair", JSON, orjson.dumps({"code": code}))[0] == 401
    assert call(port, "POST", "/api/login", JSON, orjson.dumps({"token": code}))[0] == 401
    with ws_connect(f"ws://127.0.0.1:{port}/ws/ui", additional_headers={**jar, "Origin": f"http://127.0.0.1:{port}"}
                    ) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "connection"

    # `dogmonitor pair` while the device runs: a new code, and a link that signs a browser in once
    done = subprocess.run([sys.executable, "-m", "edge", "--env", "/dev/null", "pair"], env=device.env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    link = re.search(r"open (http://127\.0\.0\.1:\d+)(/pair\?code=\w{8})", done.stdout)
    assert link and link.group(1) == f"http://127.0.0.1:{port}", done.stdout
    # and the same link as a small QR code in the terminal, which a phone's camera reads
    qr = [line for line in done.stdout.splitlines() if line and set(line) <= set(" ▀▄█")]
    assert 15 <= len(qr) <= 25 and all(len(line) <= 45 for line in qr), done.stdout
    assert read_terminal_qr(qr) == link.group(1) + link.group(2)
    status, _, response = call(port, "GET", link.group(2))
    assert status == 303 and response.headers["Location"] == "/"
    assert call(port, "GET", "/api/state", cookie_of(response))[0] == 200
    assert call(port, "GET", link.group(2))[0] == 401
    assert TOKEN not in device.logs() and token_file.read_text().strip() not in device.logs()


def test_origins_hosts_body_types_headers_logout_and_restart(start_device, tmp_path: Path) -> None:
    env = {**no_camera(tmp_path), "DOGMON_WS_TOKEN": TOKEN}
    device = start_device(env)
    port = device.port
    own, other = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    status, _, response = call(port, "POST", "/api/login", {**JSON, "Origin": own}, orjson.dumps({"token": TOKEN}))
    assert status == 200
    jar = cookie_of(response)
    zones = orjson.dumps({"zones": [{"name": "bed", "points": [[0, 0], [0.5, 0], [0.5, 0.5]]}]})

    # a page on another port of the same host holds the (same-site) cookie: refused, WebSocket and POST alike
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(device.ws_url, additional_headers={**jar, "Origin": other})
    assert refused.value.response.status_code == 403
    for origin in (other, "http://evil.example", "null"):
        assert call(port, "PUT", "/api/zones", {**jar, **JSON, "Origin": origin}, zones)[0] == 403, origin
    assert call(port, "PUT", "/api/zones", {**jar, **JSON}, zones)[0] == 403  # a cookie without its page's Origin
    # a no-cors text/plain POST (what any page can send anywhere) never reaches a handler
    assert call(port, "POST", "/api/bookmark", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
                b'{"label": "x"}')[0] == 415
    assert orjson.loads(call(port, "GET", "/api/zones", jar)[1])["zones"] == []  # nothing above changed a thing
    # the page itself may
    assert call(port, "PUT", "/api/zones", {**jar, **JSON, "Origin": own}, zones)[0] == 200
    assert [z["name"] for z in orjson.loads(call(port, "GET", "/api/zones", jar)[1])["zones"]] == ["bed"]
    with ws_connect(device.ws_url, additional_headers={**jar, "Origin": own}) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "connection"

    # DNS rebinding: a foreign name that resolves here is refused, whatever credential it carries
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        status, body, _ = call(port, "GET", "/api/state", {**jar, "Host": host})
        assert status == 421 and b"zones" not in body, host
    assert call(port, "GET", "/healthz", {"Host": f"localhost:{port}"})[0] == 200

    # the page's security headers; its HTML has no inline script for the CSP to allow
    status, html, response = call(port, "GET", "/")
    csp = response.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert status == 200 and script_src and script_src.group(1) == "'self'" and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = (STATIC_DIR / "index.html").read_text()
    assert html.decode() == page
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page)) and not re.search(r"\son\w+=", page)

    # a session survives a restart ...
    device.stop()
    device = start_device({**env, "DOGMON_WS_PORT": str(port)})
    assert call(port, "GET", "/api/state", jar)[0] == 200
    # ... and ends at logout; "sign out everywhere" ends the others
    status, _, response = call(port, "POST", "/api/login", {**JSON, "Origin": own}, orjson.dumps({"token": TOKEN}))
    tablet = cookie_of(response)
    assert call(port, "POST", "/api/logout", {**jar, "Origin": own})[0] == 200
    assert call(port, "GET", "/api/state", jar)[0] == 401
    assert call(port, "GET", "/api/state", tablet)[0] == 200
    status, _, response = call(port, "POST", "/api/login", {**JSON, "Origin": own}, orjson.dumps({"token": TOKEN}))
    phone = cookie_of(response)
    status, body, _ = call(port, "POST", "/api/logout?all=1", {**phone, "Origin": own})
    assert status == 200 and orjson.loads(body)["ended"] == 2
    assert call(port, "GET", "/api/state", tablet)[0] == 401 and call(port, "GET", "/api/state", phone)[0] == 401


def test_wrong_credentials_on_every_path_share_one_limit_and_healthz_is_no_oracle(start_device,
                                                                                   tmp_path: Path) -> None:
    device = start_device({**no_camera(tmp_path), "DOGMON_WS_TOKEN": TOKEN})
    port = device.port
    plain = orjson.loads(call(port, "GET", "/healthz", source="127.0.0.3")[1])
    guessed = orjson.loads(call(port, "GET", "/healthz", {"Authorization": "Bearer nope-nope-nope-nope"},
                                source="127.0.0.3")[1])
    assert set(plain) == set(guessed) == {"status"}
    statuses = [call(port, "GET", "/api/state", {"Authorization": f"Bearer guess-{i:016d}"}, source="127.0.0.2")[0]
                for i in range(200)]
    assert 429 in statuses[:19], statuses[:20]
    assert set(statuses[:statuses.index(429)]) == {401} and set(statuses[statuses.index(429):]) == {429}
    # while blocked the right token is not even looked at: the answers tell nothing
    status, _, response = call(port, "GET", "/api/state", {"Authorization": f"Bearer {TOKEN}"}, source="127.0.0.2")
    assert status == 429 and int(response.headers["Retry-After"]) > 0
    # one bucket: ?token=, cookies, WebSocket handshakes and /healthz count toward it too
    forged = {"Cookie": "dogmon_session=forged"}
    for path, headers in [("/healthz?token=wrong", {}), ("/snapshot.jpg", forged), ("/api/state?token=x", {})] * 8:
        last = call(port, "GET", path, headers, source="127.0.0.3")[0]
    assert last == 429
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(device.ws_url + "?token=wrong", source_address=("127.0.0.3", 0))
    assert refused.value.response.status_code == 429
    # the owner's address is not affected
    assert call(port, "GET", "/api/state", {"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_255_slow_login_bodies_never_make_healthz_or_the_owner_wait(start_device, tmp_path: Path) -> None:
    device = start_device({**no_camera(tmp_path), "DOGMON_WS_TOKEN": TOKEN})
    port = device.port
    answers: list[bytes] = []
    stop = threading.Event()

    def attacker() -> None:
        socks = []
        for _ in range(255):
            sock = socket.socket()
            sock.settimeout(5)
            sock.bind(("127.0.0.2", 0))
            try:
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 200\r\n\r\n{")
            except OSError:
                pass
            socks.append(sock)
        while not stop.wait(3):  # one byte every 3 s on every connection
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")
        for sock in socks:
            sock.setblocking(False)
            try:
                answers.append(sock.recv(4096))
            except OSError:
                answers.append(b"")
            sock.close()

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    slowest = 0.0
    deadline = time.monotonic() + 14
    try:
        while time.monotonic() < deadline:
            for path, headers in (("/healthz", {}), ("/api/state", {"Authorization": f"Bearer {TOKEN}"})):
                started = time.monotonic()
                status, _, _ = call(port, "GET", path, headers, timeout=5)
                slowest = max(slowest, time.monotonic() - started)
                assert status == 200, (path, status)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert slowest < 1.0, slowest
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503") and b"too many connections" in a]
    timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(refused) >= 255 - 64 and timed_out, (len(refused), len(timed_out), answers[:3])
    logs = device.logs()
    assert "Traceback" not in logs and "Exception in ASGI" not in logs
