"""What the other devices of a home cost one device: ``python -m edge.tools.peersbench [--seconds S]``.

Starts a private mosquitto, then for 1, 4 and 16 simulated peers publishes what each real device sends
(a signed retained info, availability, state every 2 s, telemetry every 5 s (DOGMON_TELEMETRY_INTERVAL's
default, a 2.5 KB envelope), one event every 2 s (a busy dog), overlays at 2 Hz per type, which a device does
not subscribe to) while one device's MQTT transport (the bridge with its peers part, the event log and
the bus; no camera) runs in a child process with a WebSocket-like sink taking every relayed message.
Prints per case: messages handled per second, events relayed, the child's CPU (percent of one core)
and RSS growth over an idle bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from edge.util.homesig import signed

SECRET = "peersbench home secret"
PREFIX = "dogmonitor"
TELEMETRY = {"cpu_percent": 31.5, "cpu_per_core": [30.0, 33.0], "memory_percent": 41.0, "process_rss_mb": 180.0,
             "pipeline": {"capture_fps": 15.0, "inference_fps": 7.5, "latency_ms": {
                 s: {"p50": 12.0, "p95": 20.0} for s in ("capture", "detect", "track", "pose", "publish", "total")}},
             "camera": {"online": True, "source": "rtsp://cam/stream", "reconnects": 0, "reason": None},
             "store": {"ok": True, "degraded": None, "write_errors": 0, "last_seq": 1234}, "health": "ok",
             "filler": "x" * 1600}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _consumer(port: int, seconds: float) -> dict[str, Any]:
    """The measured side: the MQTT transport with its peers part, on a bus with a real event log."""
    from edge.config import MqttTarget
    from edge.core.bus import Bus
    from edge.core.store import EventStore
    from edge.transports.mqtt.bridge import MqttBridge
    from edge.transports.mqtt.peers import MqttPeers

    class Sink:
        shows_peers = True
        taken = 0

        def deliver(self, message: Any, payload: bytes) -> None:
            self.taken += 1

    data = Path(tempfile.mkdtemp(prefix="peersbench-"))
    store = EventStore(data)
    bus = Bus("measured", store, asyncio.get_running_loop())
    sink = Sink()
    bus.attach(sink)
    bridge = MqttBridge(bus, store, MqttTarget("127.0.0.1", port, False, None, None), PREFIX, "measured")
    peers = MqttPeers(bridge, bus, PREFIX, "measured", SECRET, "Measured", "bench", lambda: [])
    bridge.add(peers)
    bridge.start()
    while not bridge.connected:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    proc = psutil.Process()
    rss0, cpu0, handled0, t0 = proc.memory_info().rss, proc.cpu_times(), peers.handled, time.monotonic()
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    cpu1, elapsed = proc.cpu_times(), time.monotonic() - t0
    out = {"handled_per_s": (peers.handled - handled0) / elapsed, "relayed": peers.registry.relayed,
           "listed": len(peers.registry.peers()), "cpu_percent": 100 * ((cpu1.user + cpu1.system)
                                                                         - (cpu0.user + cpu0.system)) / elapsed,
           "rss_mb": proc.memory_info().rss / 2**20, "rss_growth_mb": (proc.memory_info().rss - rss0) / 2**20,
           "sink": sink.taken}
    await bridge.aclose()
    store.close()
    shutil.rmtree(data, ignore_errors=True)
    return out


def _publish_peers(port: int, count: int, seconds: float) -> tuple[int, list[mqtt.Client]]:
    """Simulated peers, one client each, at a real device's rates; returns the messages published."""
    clients = []
    for n in range(count):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peersbench-{n}")
        client.will_set(f"{PREFIX}/peer{n}/availability", "offline", qos=1, retain=True)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append(client)
    sent, seq, start = 0, [0] * count, time.monotonic()
    for n, client in enumerate(clients):
        info = signed(SECRET, {"device_id": f"peer{n}", "name": f"Peer {n}", "version": "bench",
                               "urls": [f"http://10.0.0.{n + 2}:8765/"], "ts": time.time()})
        client.publish(f"{PREFIX}/peer{n}/info", orjson.dumps(info), qos=1, retain=True)
        client.publish(f"{PREFIX}/peer{n}/availability", "online", qos=1, retain=True)
    tick = 0
    while time.monotonic() - start < seconds:
        for n, client in enumerate(clients):
            base = f"{PREFIX}/peer{n}"
            for kind in ("detection", "motion"):  # not subscribed: the broker filters them out
                client.publish(f"{base}/overlay", orjson.dumps({"type": "overlay", "overlay_type": kind}), qos=0)
                sent += 1
            if tick % 4 == n % 4:
                client.publish(f"{base}/state", orjson.dumps({"device_id": f"peer{n}", "ts": time.time(),
                                                              "presence": tick % 8 < 4, "posture": "sit",
                                                              "zones": ["sofa"]}), qos=1, retain=True)
                seq[n] += 1
                client.publish(f"{base}/events", orjson.dumps({
                    "v": 1, "type": "event", "event_type": "zone_enter", "device_id": f"peer{n}",
                    "ts": time.time(), "seq": seq[n], "data": {"zone": "sofa", "track_id": 1}}), qos=1)
                sent += 2
            if tick % 10 == n % 10:
                client.publish(f"{base}/telemetry", orjson.dumps({"v": 1, "type": "telemetry", "device_id":
                                                                  f"peer{n}", "ts": time.time(),
                                                                  "data": TELEMETRY}), qos=0, retain=True)
                sent += 1
        tick += 1
        time.sleep(0.5)
    return sent, clients


def _leave(clients: list[mqtt.Client]) -> None:
    """Clear what the simulated peers left retained, so the next case starts from none."""
    for n, client in enumerate(clients):
        for leaf in ("info", "availability", "state", "telemetry"):
            client.publish(f"{PREFIX}/peer{n}/{leaf}", b"", qos=1, retain=True)
        client.loop_stop()
        client.disconnect()


def run_case(port: int, count: int, seconds: float) -> dict[str, Any]:
    child = subprocess.Popen([sys.executable, "-m", "edge.tools.peersbench", "--consumer", str(port),
                              "--seconds", str(seconds + 1)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("the measured side did not start")
    sent, clients = _publish_peers(port, count, seconds)
    result = json.loads(child.stdout.read())
    child.wait()
    _leave(clients)
    return {"peers": count, "published_per_s": sent / seconds, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--peers", default="1,4,16")
    parser.add_argument("--consumer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.consumer:
        print(json.dumps(asyncio.run(_consumer(args.consumer, args.seconds))), flush=True)
        return 0
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        + ("user root\n" if os.geteuid() == 0 else ""))
        broker = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            rows = [run_case(port, int(n), args.seconds) for n in args.peers.split(",")]
        finally:
            broker.terminate()
            broker.wait()
    print(f"{'peers':>5} {'published/s':>11} {'handled/s':>9} {'relayed':>7} {'listed':>6} {'CPU %':>6} "
          f"{'RSS MiB':>7} {'RSS +MiB':>8}")
    for r in rows:
        print(f"{r['peers']:>5} {r['published_per_s']:>11.1f} {r['handled_per_s']:>9.1f} {r['relayed']:>7} "
              f"{r['listed']:>6} {r['cpu_percent']:>6.2f} {r['rss_mb']:>7.1f} {r['rss_growth_mb']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
