"""A network camera for tests: a real HTTP MJPEG stream (what many IP cameras serve) that can stall."""

from __future__ import annotations

import http.server
import threading
import time

import cv2
import numpy as np

BOUNDARY = "dogmonitorframe"


class MjpegCamera:
    """Serves ``/stream.mjpg`` at ``fps``; ``stall()`` keeps connections open but stops sending frames,
    ``resume()`` sends again. Frames are grey with a moving bar so each one differs."""

    def __init__(self, fps: float = 10.0, size: tuple[int, int] = (320, 240)) -> None:
        self.fps, self.size = fps, size
        self.sending = threading.Event()
        self.sending.set()
        self.closed = threading.Event()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                self.end_headers()
                n = 0
                try:
                    while not camera.closed.is_set():
                        if not camera.sending.wait(0.2):
                            continue
                        jpeg = camera.frame(n)
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                        n += 1
                        time.sleep(1.0 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def frame(self, n: int) -> bytes:
        width, height = self.size
        image = np.full((height, width, 3), 90, dtype=np.uint8)
        x = (n * 7) % width
        image[:, x:x + 8] = 200
        return cv2.imencode(".jpg", image)[1].tobytes()

    def stall(self) -> None:
        self.sending.clear()

    def resume(self) -> None:
        self.sending.set()

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

