"""One home, two cameras, one broker: device A lists B, shows B's events, relays commands to B and proxies
B's pictures, all with B's own device id; B killed shows offline on A and comes back; a device of
another home is not listed. Two real device processes, different ids and videos, one mosquitto."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

from edge.util.homesig import signed
from tests.helpers import Msg, ws_collect, ws_connect
from tests.media import compose_video
from tests.test_media_e2e import LABRADOR

pytestmark = pytest.mark.e2e

SECRET = "our home's secret, 16+ chars"


def peer_list(msgs: list[Msg]) -> list[dict] | None:
    """The newest peers list pushed to the client."""
    pushed = [m for m in msgs if m["type"] == "peers"]
    return pushed[-1]["data"]["peers"] if pushed else None


def kitchen(msgs: list[Msg]) -> dict | None:
    return next((p for p in peer_list(msgs) or [] if p["device_id"] == "kitchen"), None)


def command(ws, msgs: list[Msg], body: dict, timeout: float = 20) -> dict:
    ws.send(orjson.dumps(body).decode())
    ws_collect(ws, lambda got: any(m["type"] in ("reply", "error") and m["data"].get("id") == body["id"]
                                   for m in got), timeout, msgs)
    return next(m for m in msgs if m["type"] in ("reply", "error") and m["data"].get("id") == body["id"])


def get(url: str, token: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_one_home_two_devices_through_the_broker(start_device, mosquitto, media: Path, tmp_path: Path) -> None:
    common = {"DOGMON_MQTT_URL": mosquitto.url, "DOGMON_HOME_SECRET": SECRET, "DOGMON_CLIP_EVENTS": "",
              "DOGMON_ABSENCE_SECONDS": "3"}
    living = start_device({**common, "DOGMON_SOURCE": "demo", "DOGMON_DEVICE_ID": "living",
                           "DOGMON_DEVICE_NAME": "Living room", "DOGMON_WS_TOKEN": "living-room-token-a",
                           "DOGMON_DATA_DIR": str(tmp_path / "living")})
    clip = compose_video(tmp_path / "kitchen.mp4", [(None, 1.0), (media / LABRADOR, 20.0)])
    kitchen_env = {**common, "DOGMON_SOURCE": str(clip), "DOGMON_DEVICE_ID": "kitchen", "DOGMON_DEVICE_NAME":
                   "Kitchen", "DOGMON_WS_TOKEN": "kitchen-device-token-b", "DOGMON_DATA_DIR": str(tmp_path / "kitchen")}
    with ws_connect(living.ws_url + "?since=0", token="living-room-token-a") as ws:
        msgs: list[Msg] = []
        assert command(ws, msgs, {"type": "get_peers", "id": "p0"})["data"]["peers"] == []

        # B starts: A's page is told within 2 s, with B's name and address; then B's dog presence.
        b = start_device(kitchen_env, wait=False)
        b.wait_ready()
        ready = time.monotonic()
        ws_collect(ws, lambda got: (kitchen(got) or {}).get("online") is True, 10, msgs)
        assert time.monotonic() - ready < 2.0, f"listed {time.monotonic() - ready:.2f}s after B answered"
        peer = kitchen(msgs)
        assert peer is not None and peer["name"] == "Kitchen" and peer["urls"] == [f"{b.http_url}/"]
        assert [p["device_id"] for p in peer_list(msgs) or []] == ["kitchen"]  # never itself

        # B's dog_detected reaches A's client within 2 s of B publishing it, labelled with B's id.
        ws_collect(ws, lambda got: any(m["type"] == "event" and m["device_id"] == "kitchen"
                                       and m["event_type"] == "dog_detected" for m in got), 40, msgs)
        detected = next(m for m in msgs if m["device_id"] == "kitchen" and m.get("event_type") == "dog_detected")
        assert time.time() - detected["ts"] < 2.0 + 1.0  # + the detection's own frame-to-event time
        ws_collect(ws, lambda got: ((kitchen(got) or {}).get("state") or {}).get("presence") is True, 5, msgs)
        assert not [m for m in msgs if m["type"] == "event" and m["device_id"] == "kitchen" and "seq" not in m]

        # get_events with device=kitchen through A: B's own log, exactly as B answers it, resumable by seq.
        direct = get(f"{b.http_url}/api/events?limit=50", "kitchen-device-token-b")[2]
        own = orjson.loads(direct)["events"]
        assert own and all(e["device_id"] == "kitchen" for e in own)
        relayed = command(ws, msgs, {"type": "get_events", "id": "e1", "device": "kitchen", "limit": len(own)})
        assert relayed["type"] == "reply" and relayed["data"]["events"] == own
        middle = own[len(own) // 2]["seq"]
        resumed = command(ws, msgs, {"type": "get_events", "id": "e2", "device": "kitchen", "since": middle})
        assert [e["seq"] for e in resumed["data"]["events"]][:len(own) - len(own) // 2 - 1] == \
            [e["seq"] for e in own if e["seq"] > middle]
        # A's own log is untouched by B's events.
        mine = command(ws, msgs, {"type": "get_events", "id": "e3", "limit": 1000})["data"]["events"]
        assert {e["device_id"] for e in mine} == {"living"}

        # A snapshot asked of A for B: B saves it, says so on its own events, and A's client sees that too.
        snap = command(ws, msgs, {"type": "snapshot", "id": "s1", "device": "kitchen"}, timeout=30)
        assert snap["type"] == "reply", snap
        ws_collect(ws, lambda got: any(m.get("event_type") == "snapshot_saved" and m["device_id"] == "kitchen"
                                       and m["data"]["media_id"] == snap["data"]["media_id"] for m in got), 10, msgs)
        unknown = command(ws, msgs, {"type": "get_zones", "id": "z1", "device": "nowhere"})
        assert unknown["type"] == "error" and unknown["data"]["code"] == "unknown_device"

        # B's pictures through A, with A's token only (the browser never talks to B).
        status, headers, body = get(f"{living.http_url}/peer/kitchen/snapshot.jpg", "living-room-token-a")
        assert status == 200 and body[:2] == b"\xff\xd8" and headers["content-type"] == "image/jpeg"
        status, headers, body = get(f"{living.http_url}/peer/kitchen/media/{snap['data']['media_id']}",
                                    "living-room-token-a", {"Range": "bytes=0-99"})
        assert status == 206 and len(body) == 100 and headers["content-range"].startswith("bytes 0-99/")
        assert get(f"{living.http_url}/peer/nowhere/snapshot.jpg", "living-room-token-a")[0] == 404
        assert get(f"{living.http_url}/peer/kitchen/snapshot.jpg", "wrong")[0] == 401
        with connect(f"ws://127.0.0.1:{living.port}/peer/kitchen/ws/video",
                     additional_headers={"Authorization": "Bearer living-room-token-a"}) as video:
            meta = orjson.loads(video.recv(timeout=15))
            jpeg = video.recv(timeout=15)
            assert meta["type"] == "frame" and isinstance(jpeg, bytes) and jpeg[:2] == b"\xff\xd8"

        # A device of another home: its info does not verify with our secret, so it is never listed.
        rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue")
        rogue.connect(mosquitto.host, mosquitto.port)
        rogue.loop_start()
        fake = signed("another home's secret!!", {"device_id": "intruder", "name": "Intruder", "version": "0.1.0",
                                                   "urls": ["http://127.0.0.1:1/"], "ts": time.time()})
        for leaf, payload in (("availability", b"online"), ("info", orjson.dumps(fake))):
            rogue.publish(f"dogmonitor/intruder/{leaf}", payload, qos=1, retain=True).wait_for_publish(5)
        time.sleep(1.0)
        listed = command(ws, msgs, {"type": "get_peers", "id": "p1"})["data"]["peers"]
        assert [p["device_id"] for p in listed] == ["kitchen"]
        assert get(f"{living.http_url}/peer/intruder/snapshot.jpg", "living-room-token-a")[0] == 404
        for leaf in ("availability", "info"):
            rogue.publish(f"dogmonitor/intruder/{leaf}", b"", qos=1, retain=True).wait_for_publish(5)
        rogue.loop_stop()
        rogue.disconnect()

        # B killed: its last will shows it offline on A within 10 s; restarted, it is back.
        b.stop(signal.SIGKILL)
        killed = time.monotonic()
        ws_collect(ws, lambda got: (kitchen(got) or {}).get("online") is False, 10, msgs)
        assert time.monotonic() - killed < 10
        b2 = start_device(kitchen_env)
        ws_collect(ws, lambda got: (kitchen(got) or {}).get("online") is True, 10, msgs)
        assert b2.proc.poll() is None
