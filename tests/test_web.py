"""The one web server (issue 11): static files for the tablet app, the browser login, /healthz, admission.

The static-file tests run :class:`edge.web.server.WebServer` in this process on a real loopback port
with a folder of real files; the login flow runs against a whole device.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from websockets.exceptions import InvalidStatus

from edge.web.server import WebServer
from tests.helpers import ws_connect
from tests.media import compose_video

pytestmark = pytest.mark.e2e

QUIET_MEDIA = {"DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": ""}
SECRET = "s3cret-0123456789"


@contextmanager
def running(server: WebServer) -> Iterator[WebServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, bytes, dict[str, str], list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    cookies = response.headers.get_all("set-cookie") or []
    return response.status, data, {k.lower(): v for k, v in response.getheaders()}, cookies


@pytest.fixture
def room_video(tmp_path: Path) -> Path:
    """An empty room: the camera runs, no dog."""
    return compose_video(tmp_path / "room.mp4", [(None, 2.0)])


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "static"
    (folder / "icons").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>dogmonitor</title>" + "<p>dog</p>" * 200)
    (folder / "app.js").write_text("export const x = 1;\n" * 200)
    (folder / "app.css").write_text("body { margin: 0 }\n" * 200)
    (folder / "icons" / "dog.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    (folder / "app.webmanifest").write_text('{"name": "dogmonitor"}')
    (folder / "icons" / "dog.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (tmp_path / "secret.txt").write_text("not for you")
    return folder


def test_static_files_have_their_types_gzip_and_no_way_out(static_dir: Path) -> None:
    with running(WebServer("127.0.0.1", 0, token="s3cret", static_dir=static_dir)) as server:
        port = server.port
        status, body, headers, _ = request(port, "GET", "/")  # no token needed: the page must load to ask for it
        assert status == 200 and body.startswith(b"<!doctype html>") and headers["content-type"].startswith("text/html")
        for path, kind in [("/static/app.js", "text/javascript"), ("/static/app.css", "text/css"),
                           ("/static/icons/dog.svg", "image/svg+xml"),
                           ("/static/app.webmanifest", "application/manifest+json"),
                           ("/static/icons/dog.png", "image/png")]:
            status, body, headers, _ = request(port, "GET", path, {"Accept-Encoding": "gzip"})
            assert status == 200, path
            assert headers["content-type"].split(";")[0] == kind, (path, headers["content-type"])
            if kind.startswith("text/"):
                assert headers.get("content-encoding") == "gzip", path
                assert gzip.decompress(body) == (static_dir / path[len("/static/"):]).read_bytes()
            if kind == "image/png":
                assert "content-encoding" not in headers and body == (static_dir / "icons" / "dog.png").read_bytes()
        # a cached copy is revalidated on every load (an updated app is never stale), cheaply
        _, _, headers, _ = request(port, "GET", "/static/app.js")
        assert headers["cache-control"] == "no-cache"
        assert request(port, "GET", "/static/app.js", {"If-None-Match": headers["etag"]})[0] == 304
        for sneaky in ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt",
                       "/static/icons/../../secret.txt", "/static//etc/passwd"]:
            status, body, _, _ = request(port, "GET", sneaky)
            assert status == 404 and b"not for you" not in body, sneaky
        assert request(port, "GET", "/static/nothing.js")[0] == 404
        assert request(port, "GET", "/nowhere")[0] == 404


def test_refusals_are_logged_once_per_spell(static_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="edge.web.server"), \
            running(WebServer("127.0.0.1", 0, token="s3cret", static_dir=static_dir)) as server:
        server.add_route("/secret", lambda request: None)  # type: ignore[arg-type,return-value]
        for _ in range(50):  # 401 until the address used up its wrong-credential allowance, then 429
            assert request(server.port, "GET", "/secret?token=guess123")[0] in (401, 429)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2, lines  # the first of the spell, and the count of the rest when it is over
    assert "401" in lines[0] and "49 more" in lines[1]
    assert all("guess123" not in line for line in lines)


def test_browser_login_sets_a_cookie_every_path_accepts(start_device, room_video: Path) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": SECRET})
    port = device.port
    status, body, _, _ = request(port, "GET", "/api/session")
    assert status == 200 and orjson.loads(body) == {"auth_required": True, "authenticated": False, "pairing": True}
    # without a token or cookie: refused everywhere that needs one
    assert request(port, "GET", "/snapshot.jpg")[0] == 401
    with pytest.raises(InvalidStatus) as info:
        ws_connect(device.ws_url)
    assert info.value.response.status_code == 401
    for path in ("/ws/ui", "/ws/video"):  # a browser tab or curl on a WebSocket path is told what it needs
        status, body, headers, _ = request(port, "GET", path)
        assert status == 426 and headers["upgrade"] == "websocket", (path, status)
        assert b"WebSocket client" in body and body.count(b"\n") == 1 and body.endswith(b"\n"), body

    status, body, _, cookies = request(port, "POST", "/api/login", {"Content-Type": "application/json"},
                                       orjson.dumps({"token": SECRET}))
    assert status == 200 and orjson.loads(body)["authenticated"] is True
    [cookie] = cookies
    assert cookie.startswith("dogmon_session=") and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert SECRET not in cookie
    session = cookie.split(";")[0]
    jar = {"Cookie": session}
    page = {**jar, "Origin": f"http://127.0.0.1:{port}"}  # what a browser sends with the cookie
    assert orjson.loads(request(port, "GET", "/api/session", jar)[1])["authenticated"] is True
    assert request(port, "GET", "/media/snap-20260101T000000-deadbeef", jar)[0] == 404  # past admission
    assert request(port, "GET", "/snapshot.jpg", jar)[0] in (200, 503)
    with ws_connect(device.ws_url, additional_headers=page) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "connection"
    health = orjson.loads(request(port, "GET", "/healthz", jar)[1])
    assert health["device_id"] == "testdog"
    assert set(orjson.loads(request(port, "GET", "/healthz")[1])) == {"status"}

    status, _, _, cookies = request(port, "POST", "/api/logout", page)
    assert status == 200 and cookies[0].startswith("dogmon_session=") and "Max-Age=0" in cookies[0]
    assert request(port, "GET", "/snapshot.jpg", jar)[0] == 401  # the session ended: a copied cookie is worthless

    json = {"Content-Type": "application/json"}
    assert request(port, "POST", "/api/login", json, body=b"x" * 100_000)[0] == 413  # never read whole
    # wrong tokens: 401, and after a few the peer is told to wait
    statuses = [request(port, "POST", "/api/login", json, orjson.dumps({"token": f"guess{i}"}))[0] for i in range(12)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses
    assert request(port, "POST", "/api/login", json, body=b"not json")[0] == 429
    assert SECRET not in device.logs()


def test_login_with_auth_off_always_succeeds(start_device, room_video: Path) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": "open"})
    status, body, _, _ = request(device.port, "GET", "/api/session")
    assert orjson.loads(body) == {"auth_required": False, "authenticated": True, "pairing": True}
    status, body, _, cookies = request(device.port, "POST", "/api/login", {"Content-Type": "application/json"},
                                       b"anything")
    assert status == 200 and orjson.loads(body)["authenticated"] is True and cookies
    assert "WARNING edge.device: AUTH OFF (DOGMON_WS_TOKEN=open)" in device.logs()
    # auth off is still no open door for other pages in the same browser
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(device.ws_url, additional_headers={"Origin": "http://evil.example"})
    assert refused.value.response.status_code == 403


def test_tokens_never_reach_the_log_and_refusals_log_once(start_device, room_video: Path) -> None:
    token = "tok-9f8e7d6c5b4a"
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_WS_TOKEN": token,
                           "DOGMON_LOG_LEVEL": "debug"})
    with ws_connect(device.ws_url + f"?token={token}") as ws:
        ws.recv(timeout=10)
    with ws_connect(device.ws_url, token=token) as ws:
        ws.recv(timeout=10)
    assert request(device.port, "GET", f"/healthz?token={token}")[0] == 200
    _, _, _, cookies = request(device.port, "POST", "/api/login", {"Content-Type": "application/json"},
                               orjson.dumps({"token": token}))
    assert request(device.port, "GET", "/api/session", {"Cookie": cookies[0].split(";")[0]})[0] == 200
    before = len(device.logs().splitlines())
    for _ in range(200):  # refused: 401, then 429 once the address used up its allowance
        assert request(device.port, "GET", "/snapshot.jpg?token=nope")[0] in (401, 429)
    for _ in range(20):
        with pytest.raises(InvalidStatus):
            ws_connect(device.ws_url, token="nope")
    for _ in range(30):  # garbage that is not HTTP: uvicorn's warning once, not per request
        with socket.create_connection(("127.0.0.1", device.port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)
    logs = device.logs()
    assert logs.count("Invalid HTTP request") == 1, logs.count("Invalid HTTP request")
    assert token not in logs and "nope" not in logs
    session = cookies[0].split(";")[0].split("=", 1)[1]
    assert session not in logs
    refusal_lines = [line for line in logs.splitlines()[before:] if "refused" in line]
    assert len(refusal_lines) == 1, refusal_lines


def test_a_stalled_download_is_cut_off_a_slow_one_is_not_and_bodies_are_bounded(tmp_path: Path, static_dir: Path,
                                                                               monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    import os
    import time

    from edge.web import files

    monkeypatch.setattr(files, "IDLE_TIMEOUT", 1.0)  # 30 s on the device
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(16 * 2**20))   # more than the kernel buffers hold: the body really stalls
    small.write_bytes(os.urandom(2**20))
    slots = files.StreamSlots(limit=2)
    server = WebServer("127.0.0.1", 0, static_dir=static_dir)
    for path in (big, small):
        server.add_route(f"/{path.name}", lambda request, path=path: files.MediaFile(
            path, "application/octet-stream", f'"{path.name}"', slots), needs_token=False)

    def stalled_reader() -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return sock

    with running(server):
        first, second = stalled_reader(), stalled_reader()
        deadline = time.monotonic() + 5
        while slots.active < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slots.active == 2
        # every slot is taken by a body being sent: the next download is told to come back, memory stays bounded
        status, _, headers, _ = request(server.port, "GET", "/small.bin")
        assert status == 503 and headers["retry-after"] == "2"
        # the stalled readers take nothing: cut off after the idle timeout, their slots come back
        deadline = time.monotonic() + 10
        while slots.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slots.active == 0
        for sock in (first, second):
            sock.settimeout(5)
            received = 0
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            assert received < big.stat().st_size
            sock.close()
        # a slow reader that keeps taking bytes runs far longer than the idle timeout and gets everything
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started, raw = time.monotonic(), b""
        while len(raw) < small.stat().st_size + 100:
            chunk = sock.recv(24 * 1024)
            if not chunk:
                break
            raw += chunk
            if raw.find(b"\r\n\r\n") >= 0 and len(raw.partition(b"\r\n\r\n")[2]) >= small.stat().st_size:
                break
            time.sleep(0.08)
        sock.close()
        assert raw.partition(b"\r\n\r\n")[2] == small.read_bytes()
        assert time.monotonic() - started > 2.0


def test_a_peer_that_never_finishes_its_headers_is_closed_but_websockets_stay(static_dir: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from edge.web import protocols
    from edge.web.wsconn import WsConn

    monkeypatch.setattr(protocols, "HEADER_TIMEOUT", 1.0)  # 10 s on the device

    async def echo(ws: WsConn) -> None:
        async for message in ws:
            await ws.send(message, text=True)

    server = WebServer("127.0.0.1", 0, static_dir=static_dir)
    server.add_websocket("/ws/echo", echo, needs_token=False)
    with running(server):
        silent = socket.create_connection(("127.0.0.1", server.port))
        partial = socket.create_connection(("127.0.0.1", server.port))
        partial.sendall(b"GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        kept = socket.create_connection(("127.0.0.1", server.port))
        kept.sendall(b"GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):  # the whole first answer (headers and JSON body)
            first += kept.recv(4096)
        assert b"200 OK" in first
        kept.sendall(b"GET /api/ses")  # half of a next request on the kept-alive connection
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{server.port}/ws/echo") as ws:
            started = time.monotonic()
            for sock in (silent, partial, kept):
                sock.settimeout(5)
                assert sock.recv(4096) == b"", "the connection was not closed"
                sock.close()
            assert time.monotonic() - started < 4
            time.sleep(1.5)  # past the deadline: an upgraded connection is not the HTTP protocol's any more
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"


def test_a_login_body_cut_off_midway_is_one_debug_line_and_the_server_goes_on(static_dir: Path,
                                                                              caplog: pytest.LogCaptureFixture
                                                                              ) -> None:
    import time

    with caplog.at_level("DEBUG"), running(WebServer("127.0.0.1", 0, token="s3cret", static_dir=static_dir)) as server:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b'Content-Length: 1000\r\n\r\n{"token": "s3c')  # and the peer is gone
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum("left while sending" in r.getMessage() for r in caplog.records) < 3:
            time.sleep(0.05)
        status, body, _, _ = request(server.port, "GET", "/api/session")
        assert status == 200 and orjson.loads(body) == {"auth_required": True, "authenticated": False, "pairing": False}
        status, _, _, cookies = request(server.port, "POST", "/api/login", {"Content-Type": "application/json"},
                                        orjson.dumps({"token": "s3cret"}))
        assert status == 200 and cookies
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]
    left = [r for r in caplog.records if "left while sending" in r.getMessage()]
    assert len(left) == 3 and all(r.levelname == "DEBUG" and "/api/login" in r.getMessage() for r in left), left
