"""``python -m edge.tools.bench --web``: what the web server costs: fan-out per WebSocket client, HTTP requests,
start-up time and RSS of an idle device.

Fan-out: a whole device runs in this process; WebSocket clients run in a child process (their CPU is
not counted) and each counts the messages it receives. One encoded detection overlay (the same
bytes for every client) is handed to the hub N times as a queued message, paced so no client's
queue fills; the event loop thread's CPU time (``time.thread_time``: the inference and capture
threads are not counted) until every client has every message, divided by N, is the cost of one
message with that many clients; the slope between 1 and C clients is the cost per added client.
HTTP: sequential keep-alive GETs of ``/api/session`` from the child, loop CPU per request.
The script only uses names both the old hub (``websockets`` handshake hook) and the new server
have, so the same file measures either tree (``PYTHONPATH=<old tree> python edge/tools/webbench.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

CHILD_CLIENTS = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main(url, clients, count):
    sockets = [await connect(url, max_size=None, compression=None) for _ in range(clients)]
    for ws in sockets:
        await ws.recv()  # the connection message
    print("ready", flush=True)
    async def take(ws):
        got = 0
        while got < count:
            if (await ws.recv())[:40].find('"reply"') >= 0:
                got += 1
    await asyncio.gather(*(take(ws) for ws in sockets))
    print("done", flush=True)
    for ws in sockets:
        await ws.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

CHILD_HTTP = """
import http.client, sys, time
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", sys.argv[2]); conn.getresponse().read()
print("ready", flush=True); sys.stdin.readline()
started, reconnects = time.perf_counter(), 0
for _ in range(int(sys.argv[3])):
    try:
        conn.request("GET", sys.argv[2]); r = conn.getresponse(); r.read()
    except (http.client.HTTPException, OSError):  # a server without keep-alive: a new connection each time
        conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port); reconnects += 1
        conn.request("GET", sys.argv[2]); r = conn.getresponse(); r.read()
print(f"done {time.perf_counter() - started:.4f} {reconnects}", flush=True)
"""


async def _child(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", script, *args, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE)


async def _line(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().strip()
    if not line:
        raise SystemExit("benchmark client process failed")
    return line


async def delivery_cost(device: Any, clients: int, count: int) -> tuple[float, int]:
    """Loop-thread CPU microseconds per message delivered to ``clients`` clients, and the message's size."""
    from edge.protocol import messages

    overlay = messages.detection_overlay(512, 512, [messages.box(10, 20, 200, 300, "dog", 0.8, 1)], 1)
    payload = messages.encode(overlay, device.bus.device_id).replace(b'"overlay"', b'"reply"', 1)
    queued = messages.reply(None, {"type": "bench"})  # queued kind: every copy is delivered, none replaced
    child = await _child(CHILD_CLIENTS, f"ws://127.0.0.1:{device.hub.port}/ws/ui", str(clients), str(count))
    assert await _line(child) == "ready"
    while len(device.hub.clients) < clients:
        await asyncio.sleep(0.01)
    hub = device.hub
    cpu = time.thread_time()
    for i in range(count):
        hub.deliver(queued, payload)
        if i % 64 == 63:
            while any(len(c.pending) > 128 for c in hub.clients):  # pace: never near the 1013 limit
                await asyncio.sleep(0)
    done = asyncio.ensure_future(_line(child))
    while not done.done():
        await asyncio.sleep(0)  # the loop keeps sending; this thread's CPU is what we count
    cpu = time.thread_time() - cpu
    await child.wait()
    return cpu / count * 1e6, len(payload)


async def http_cost(device: Any, requests: int) -> tuple[float, float, int]:
    """Loop-thread CPU microseconds and wall microseconds per keep-alive GET /api/session (or /healthz)."""
    path = "/api/session" if hasattr(device, "web") else "/healthz"
    child = await _child(CHILD_HTTP, str(device.hub.port), path, str(requests))
    assert await _line(child) == "ready"
    assert child.stdin is not None
    cpu = time.thread_time()
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    done = asyncio.ensure_future(_line(child))
    while not done.done():
        await asyncio.sleep(0)
    cpu = time.thread_time() - cpu
    _, wall, reconnects = done.result().split()
    await child.wait()
    return cpu / requests * 1e6, float(wall) / requests * 1e6, int(reconnects)


def startup(video: Path, model_dir: Path, mirror: Path | None, runs: int = 3) -> tuple[float, float]:
    """Median seconds from ``python -m edge run`` to the first /healthz answer, and the RSS (MiB) then + 5 s."""
    import socket
    import statistics

    times, rss = [], 0.0
    for _ in range(runs):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "DOGMON_SOURCE": str(video.resolve()), "DOGMON_WS_HOST": "127.0.0.1",
                   "DOGMON_TLS": "off", "DOGMON_MDNS": "0", "DOGMON_SETUP_PORT": "0", "DOGMON_WS_TOKEN": "open",
                   "DOGMON_WS_PORT": str(port), "DOGMON_DATA_DIR": str(Path(tmp) / "data"),
                   "DOGMON_MODEL_DIR": str(model_dir.resolve()), "DOGMON_MQTT_URL": "",
                   "DOGMON_LOG_LEVEL": "warning", "DOGMON_SOURCE_REALTIME": "1"}
            if mirror:
                env["DOGMON_MIRROR"] = str(mirror)
            started = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-m", "edge", "run"], cwd=tmp, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                            break
                    except OSError:
                        if child.poll() is not None:
                            raise SystemExit("device did not start") from None
                        time.sleep(0.02)
                times.append(time.perf_counter() - started)
                time.sleep(5)
                rss = psutil.Process(child.pid).memory_info().rss / 2**20
            finally:
                child.terminate()
                child.wait(10)
    return statistics.median(times), rss


def http_impl_name(new_server: bool) -> str:
    if not new_server:
        return "websockets serve() with HTTP from its process_request hook (before issue 11)"
    from edge.web import server

    return f"uvicorn http={server.HTTP_IMPL}, ws=websockets-sansio, Starlette"


async def measure(config: Any, clients: int, count: int, requests: int) -> dict[str, float]:
    from edge.tools.common import start_in_process

    device, task = await start_in_process(config)
    device.capture.stop()  # the loop's own work only: no frames, no detector
    device.inference.stop()
    out: dict[str, float] = {"one": (await delivery_cost(device, 1, count))[0]}
    out["many"], out["payload"] = await delivery_cost(device, clients, count)
    out["http_cpu_us"], out["http_wall_us"], out["reconnects"] = await http_cost(device, requests)
    out["new_server"] = float(hasattr(device, "web"))
    device.stopping.set()
    await task
    return out


def main(argv: list[str] | None = None) -> int:
    from edge.config import load_config
    from edge.device import ensure_models
    from edge.tools.common import loopback_config

    parser = argparse.ArgumentParser(prog="python -m edge.tools.bench --web", description=__doc__)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--http", choices=("h11", "httptools"), help="uvicorn HTTP parser (default: the device's)")
    parser.add_argument("--no-startup", action="store_true")
    args = parser.parse_args(argv)
    if args.http:
        from edge.web import server

        server.HTTP_IMPL = args.http
    base = load_config()
    ensure_models(base)
    video = base.model_dir / "dog_walking_vidtome.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        config = loopback_config(base, source=str(video), source_loop=True, ws_host="127.0.0.1", ws_port=0,
                                     data_dir=Path(tmp), mqtt_url="", telemetry_interval=3600.0,
                                     ws_max_clients=max(16, args.clients + 2))
        result = asyncio.run(measure(config, args.clients, args.messages, args.requests))
    per_client = (result["many"] - result["one"]) / (args.clients - 1)
    print(f"server               : {http_impl_name(bool(result['new_server']))}")
    print(f"fan-out (loop CPU)   : {result['one']:.1f} us per message with 1 client, {result['many']:.1f} us with "
          f"{args.clients}; {per_client:.2f} us per added client ({args.messages} messages of "
          f"{result['payload']:.0f} B, clients in another process)")
    print(f"HTTP keep-alive GET  : {result['http_cpu_us']:.0f} us loop CPU, {result['http_wall_us']:.0f} us wall "
          f"per request ({args.requests} sequential requests, {result['reconnects']:.0f} new connections)")
    if not args.no_startup:
        seconds, rss = startup(video, base.model_dir, base.mirror)
        print(f"start-up             : {seconds:.2f} s from `python -m edge run` to /healthz (median of 3); "
              f"idle RSS {rss:.0f} MiB 5 s later (no clients)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
