"""Media over HTTP done properly (issue 11; issue 15 item 9): streamed bodies, ranges, HEAD, keep-alive, ETag,
bounded memory with many slow readers. A real H.264 clip (made with PyAV) is adopted by a real device."""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from tests.media import compose_video

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-0123456789"
CLIP_ID = "clip-20260101T000000-0123abcd"
QUIET_MEDIA = {"DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": ""}


def make_clip(path: Path, seconds: float, bitrate: int) -> Path:
    """An H.264 MP4 of moving noise, written with PyAV (the device's own encoder library): noise never
    compresses, so the encoder spends the whole capped bitrate and the size is about seconds x bitrate."""
    fps, width, height = 25, 640, 360
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={
            "preset": "ultrafast", "b": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(round(seconds * fps)):
            planes = rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)  # Y, then U and V
            container.mux(stream.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def device_with_clip(start_device, tmp_path: Path):
    data = tmp_path / "data"
    (data / "media").mkdir(parents=True)
    make_clip(data / "media" / f"{CLIP_ID}.mp4", 8, 5_600_000)
    room = compose_video(tmp_path / "room.mp4", [(None, 2.0)])
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room), "DOGMON_DATA_DIR": str(data),
                           "DOGMON_WS_TOKEN": TOKEN})
    return device, (data / "media" / f"{CLIP_ID}.mp4").read_bytes()


def test_head_ranges_etag_and_keep_alive_on_one_connection(device_with_clip) -> None:
    device, clip = device_with_clip
    path = f"/media/{CLIP_ID}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    conn = http.client.HTTPConnection("127.0.0.1", device.port, timeout=10)
    conn.connect()
    local = conn.sock.getsockname()

    def get(method: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        conn.request(method, path, headers={**auth, **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        assert conn.sock is not None and conn.sock.getsockname() == local, "the connection was not kept alive"
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}

    status, body, headers = get("HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(clip)
    assert headers["content-type"] == "video/mp4" and headers["accept-ranges"] == "bytes"
    assert "immutable" in headers["cache-control"] and headers["etag"]
    etag = headers["etag"]

    status, body, headers = get("GET")
    assert status == 200 and body == clip and headers["etag"] == etag

    status, body, headers = get("GET", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == clip[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{len(clip)}" and headers["content-length"] == "1000"
    status, body, _ = get("GET", {"Range": "bytes=-500"})
    assert status == 206 and body == clip[-500:]
    status, body, headers = get("GET", {"Range": f"bytes={len(clip) - 10}-"})
    assert status == 206 and body == clip[-10:]
    status, body, headers = get("HEAD", {"Range": "bytes=0-99"})
    assert status == 206 and body == b"" and headers["content-length"] == "100"
    status, body, _ = get("GET", {"Range": "bytes=0-1,5-6"})  # several ranges: the whole file (RFC 9110 allows)
    assert status == 200 and body == clip
    status, _, headers = get("GET", {"Range": f"bytes={len(clip)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(clip)}"
    # issue 15 item 9: a number int() refuses (more than 4300 digits) is a 416, not a 500
    status, _, headers = get("GET", {"Range": "bytes=" + "9" * 4301 + "-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(clip)}"
    status, body, _ = get("GET", {"Range": "bytes=0-" + "9" * 4301})
    assert status == 206 and body == clip
    status, body, _ = get("GET", {"If-None-Match": etag})
    assert status == 304 and body == b""
    conn.close()
    assert "Traceback" not in device.logs()


def test_twenty_slow_readers_all_get_the_whole_clip_with_bounded_memory(device_with_clip) -> None:
    device, clip = device_with_clip
    assert len(clip) >= 5 * 2**20, len(clip)
    want = hashlib.sha256(clip).hexdigest()
    process = psutil.Process(device.proc.pid)
    rss_before = process.memory_info().rss
    readers, rate = 20, 60 * 1024
    results: list[tuple[int, str, float] | BaseException] = []
    lock = threading.Lock()

    def slow_reader() -> None:
        try:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.connect(("127.0.0.1", device.port))
            sock.sendall(f"GET /media/{CLIP_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                         .encode())
            sock.settimeout(20)
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += sock.recv(4096)
            head, _, body = raw.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            digest = hashlib.sha256(body)
            got, started = len(body), time.monotonic()
            while got < length:  # 60 KB/s: 6 KB every 0.1 s
                chunk = sock.recv(min(6 * 1024, length - got))
                if not chunk:
                    break
                digest.update(chunk)
                got += len(chunk)
                behind = got / rate - (time.monotonic() - started)
                if behind > 0:
                    time.sleep(behind)
            sock.close()
            with lock:
                results.append((got, digest.hexdigest(), time.monotonic() - started))
        except BaseException as exc:  # reported below with the others
            with lock:
                results.append(exc)

    threads = [threading.Thread(target=slow_reader, daemon=True) for _ in range(readers)]
    for thread in threads:
        thread.start()
    peak = rss_before
    while any(t.is_alive() for t in threads):
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.5)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    complete = [r for r in results if not isinstance(r, BaseException) and r[0] == len(clip) and r[1] == want]
    assert len(complete) == readers, [(r[0], r[2]) for r in results if not isinstance(r, BaseException)]
    grown_mb = (peak - rss_before) / 2**20
    print(f"20 readers x {len(clip) / 2**20:.1f} MB at 60 KB/s: RSS {rss_before / 2**20:.0f} MB -> peak "
          f"{peak / 2**20:.0f} MB (+{grown_mb:.1f} MB)")
    assert grown_mb <= 80, grown_mb
