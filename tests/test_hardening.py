"""Hardening found by an adversarial probe (issue 15), each checked on a real device process, broker and sockets:
a data dir deleted under the device, file modes, MQTT command floods and retained commands, SIGTERM under
load, read-your-writes for zones, retention with its ``gap`` message."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.publish as mqtt_publish
import pytest

from tests.helpers import EventEmitter, MqttCollector, events, ws_collect, ws_connect
from tests.media import compose_video

pytestmark = pytest.mark.e2e

RELIABLE = {"DOGMON_TEST_EVENTS": "1", "DOGMON_WS_RATE": "1000"}
QUIET_MEDIA = {"DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": ""}


@pytest.fixture
def room_video(tmp_path: Path) -> Path:
    """An empty room: the camera runs, no dog, so only the test's own events are produced."""
    return compose_video(tmp_path / "room.mp4", [(None, 2.0)])


def answer(ws, got: list[dict], body: dict[str, Any], timeout: float = 15) -> dict:
    """Send a command and return its reply or error."""
    ws.send(orjson.dumps(body))

    def mine(m: dict) -> bool:
        return m["type"] in ("reply", "error") and m["data"].get("id") == body["id"]

    ws_collect(ws, lambda msgs: any(mine(m) for m in msgs), timeout, into=got)
    return next(m for m in got if mine(m))


def emit(ws, got: list[dict], n: int) -> int:
    reply = answer(ws, got, {"type": "emit_test_event", "id": f"e{n}", "data": {"n": n}})
    assert reply["type"] == "reply", reply
    return reply["data"]["seq"]


def healthz(device) -> dict:
    with urllib.request.urlopen(device.http_url + "/healthz", timeout=5) as response:
        return orjson.loads(response.read())


def test_deleting_the_data_dir_while_running_is_reported_recreated_and_seq_never_repeats(
        start_device, room_video: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**RELIABLE, **QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_DATA_DIR": str(data_dir)}
    device = start_device(env)
    got: list[dict] = []
    with ws_connect(device.ws_url) as ws:
        before = [emit(ws, got, n) for n in range(5)]
        shutil.rmtree(data_dir)
        # noticed without any event being committed: an error event, telemetry and /healthz say so
        ws_collect(ws, lambda m: any(e["data"].get("component") == "store" for e in events(m, "error")), 15, into=got)
        report = next(e for e in events(got, "error") if e["data"].get("component") == "store")
        assert "deleted" in report["data"]["detail"] and report["seq"] > max(before)
        ws_collect(ws, lambda m: any(x["type"] == "telemetry" and x["data"]["store"]["recreated"] == 1
                                     and not x["data"]["store"]["ok"] for x in m), 15, into=got)
        health = healthz(device)
        assert health["status"] == "degraded" and any("deleted" in p for p in health["problems"]), health
        after = [emit(ws, got, n) for n in range(5, 10)]
        assert after == sorted(after) and after[0] > report["seq"]
    assert (data_dir / "dogmonitor.db").is_file() and (data_dir / "media").is_dir()
    assert device.stop() == 0

    restarted = start_device(env)
    with ws_connect(restarted.ws_url + "?since=0") as ws:
        replay: list[dict] = []
        ws_collect(ws, lambda m: set(after) <= {e["seq"] for e in events(m)}, 20, into=replay)
        stored = [e["seq"] for e in events(replay)]
        assert report["seq"] in stored and not set(before) & set(stored)  # the old ones are gone, and said so
        again = emit(ws, replay, 99)
    assert again > max(after)


def test_data_dir_and_every_file_in_it_are_private_whatever_the_umask(start_device, room_video: Path,
                                                                       tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old = os.umask(0o022)
    try:
        device = start_device({**RELIABLE, **QUIET_MEDIA, "DOGMON_SOURCE": str(room_video),
                               "DOGMON_DATA_DIR": str(data_dir), "DOGMON_CLIP_PRE_SECONDS": "0",
                               "DOGMON_CLIP_POST_SECONDS": "1"})
    finally:
        os.umask(old)
    got: list[dict] = []
    with ws_connect(device.ws_url) as ws:
        emit(ws, got, 1)
        assert answer(ws, got, {"type": "snapshot", "id": "s"})["type"] == "reply"
        mark = answer(ws, got, {"type": "bookmark", "id": "b", "label": "modes"})
        ws_collect(ws, lambda m: any(mark["data"]["seq"] in e["data"]["events"] for e in events(m, "clip_saved")),
                   30, into=got)
        zones = [{"name": "rug", "points": [[0, 0.8], [1, 0.8], [1, 1], [0, 1]]}]
        assert answer(ws, got, {"type": "set_zones", "id": "z", "zones": zones})["type"] == "reply"
    folders = [data_dir, *(p for p in data_dir.rglob("*") if p.is_dir())]
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in folders
            if p.stat().st_mode & 0o777 != 0o700} == {}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files if p.stat().st_mode & 0o777 != 0o600} == {}
    names = {p.name for p in files}
    assert {"dogmonitor.db", "dogmonitor.db-wal", "dogmonitor.db-shm", "seq-floor.json", "zones.json"} <= names
    assert any(n.endswith(".jpg") for n in names) and any(n.endswith(".mp4") for n in names), names


def test_a_flood_of_mqtt_snapshot_commands_makes_a_bounded_number_of_files(start_device, mosquitto, room_video: Path,
                                                                           tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_MQTT_URL": mosquitto.url,
                           "DOGMON_DATA_DIR": str(data_dir)})
    results = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/cmd/result")
    results.wait_for(lambda s: healthz(device)["status"] == "ok", 20, "the device connected to the broker")
    sent = 150
    started = time.monotonic()
    for n in range(sent):  # 30 a second for 5 s, paced like a misbehaving automation
        results.client.publish("dogmonitor/testdog/cmd/snapshot", orjson.dumps({"id": n}), qos=1)
        time.sleep(max(0.0, started + (n + 1) / 30 - time.monotonic()))
    seconds = time.monotonic() - started
    results.wait_for(lambda s: len({r["id"] for r in s.json_on("/cmd/result")}) == sent, 30, "an answer for each")
    answers = results.json_on("/cmd/result")
    taken = [r for r in answers if r["ok"]]
    jpegs = list((data_dir / "media").glob("*.jpg"))
    assert 1 <= len(taken) <= seconds / 1.0 + 2, len(taken)  # at most one snapshot a second
    assert len(jpegs) == 3 * len(taken)  # a clean, an overlay and a thumbnail file each, nothing else
    refused = {r["error"]["code"] for r in answers if not r["ok"]}
    assert refused == {"rate_limited", "cooldown"}, refused
    results.close()


def test_a_retained_command_found_at_subscribe_time_is_refused_and_cleared(start_device, mosquitto,
                                                                          room_video: Path) -> None:
    topic = "dogmonitor/testdog/cmd/bookmark"
    mqtt_publish.single(topic, orjson.dumps({"id": "stale", "label": "old"}), qos=1, retain=True,
                        hostname=mosquitto.host, port=mosquitto.port)
    watcher = MqttCollector(mosquitto.host, mosquitto.port,
                            ["dogmonitor/testdog/cmd/result", "dogmonitor/testdog/events"])
    start_device({"DOGMON_SOURCE": str(room_video), "DOGMON_MQTT_URL": mosquitto.url})
    watcher.wait_for(lambda s: any(r["id"] == "stale" for r in s.json_on("/cmd/result")), 20, "the retained refusal")
    refusal = next(r for r in watcher.json_on("/cmd/result") if r["id"] == "stale")
    assert not refusal["ok"] and refusal["error"]["code"] == "retained"

    # a live command afterwards is answered; nothing else was (the clearing publish is not a command)
    watcher.client.publish("dogmonitor/testdog/cmd/get_state", orjson.dumps({"id": "live"}), qos=1)
    watcher.wait_for(lambda s: any(r["id"] == "live" for r in s.json_on("/cmd/result")), 10, "the live answer")
    assert [r["id"] for r in watcher.json_on("/cmd/result")] == ["stale", "live"]
    assert not [e for e in watcher.json_on("/events") if e["event_type"] == "bookmark_created"]

    # the broker no longer holds it: a new subscriber gets no retained command before a marker sent after it
    fresh = MqttCollector(mosquitto.host, mosquitto.port, ["dogmonitor/testdog/cmd/#", "test/marker"])
    fresh.client.publish("test/marker", b"x", qos=1)
    fresh.wait_for(lambda s: any(t == "test/marker" for t, _, _ in s.snapshot()), 10, "the marker")
    assert [(t, p) for t, p, retained in fresh.snapshot() if retained] == []
    fresh.close()
    watcher.close()


def test_sigterm_under_load_marks_every_ack_sends_offline_once_and_nothing_after(start_device, mosquitto,
                                                                                  room_video: Path) -> None:
    base = "dogmonitor/testdog"
    watcher = MqttCollector(mosquitto.host, mosquitto.port,
                            [f"{base}/events", f"{base}/availability", f"{base}/cmd/result"])
    env = {**RELIABLE, **QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_MQTT_URL": mosquitto.url}
    device = start_device(env)
    watcher.wait_for(lambda s: (f"{base}/availability", b"online", False) in s.snapshot(), 20, "online")
    emitter = EventEmitter(device.ws_url, rate=400)
    emitter.start()
    commanding = threading.Event()

    def commands() -> None:  # commands keep arriving through the shutdown
        n = 0
        while not commanding.wait(0.02):
            watcher.client.publish(f"{base}/cmd/get_events", orjson.dumps({"id": n, "limit": 50}), qos=1)
            n += 1

    commander = threading.Thread(target=commands, daemon=True)
    commander.start()
    time.sleep(3)  # the load runs for a while
    assert device.stop(signal.SIGTERM) == 0
    committed = emitter.stop()
    assert len(committed) > 100
    time.sleep(0.5)  # commands still arrive while the device is down
    commanding.set()
    commander.join(5)
    restarted = start_device(env)
    watcher.wait_for(lambda s: set(committed) <= {e["seq"] for e in s.json_on("/events")}, 30,
                     "every committed event on MQTT")
    watcher.wait_for(lambda s: [p for t, p, _ in s.snapshot() if t.endswith("/availability")][-1:] == [b"online"],
                     20, "online again")

    seqs = [e["seq"] for e in watcher.json_on("/events")]
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} events delivered twice"
    flow = [(t.rsplit("/", 1)[-1], p) for t, p, _ in watcher.snapshot() if not t.endswith("/events")]
    availability = [p for leaf, p in flow if leaf == "availability"]
    assert availability == [b"online", b"offline", b"online"], availability
    offline = flow.index(("availability", b"offline"))
    back = flow.index(("availability", b"online"), offline)
    assert not [p for leaf, p in flow[offline:back] if leaf == "result"], "a command answered after offline"
    log = device.logs()
    assert "closed database" not in log and "event log write failed" not in log, log[-3000:]
    restarted.stop()
    watcher.close()


def test_get_zones_right_after_set_zones_returns_the_new_set(start_device, room_video: Path) -> None:
    device = start_device({**QUIET_MEDIA, "DOGMON_SOURCE": str(room_video)})
    square = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]
    got: list[dict] = []
    with ws_connect(device.ws_url) as ws:
        for n in range(6):
            names = [f"zone{n}", f"other{n}"][: 1 + n % 2]
            zones = [{"name": name, "points": square} for name in names]
            assert answer(ws, got, {"type": "set_zones", "id": f"s{n}", "zones": zones})["type"] == "reply"
            read = answer(ws, got, {"type": "get_zones", "id": f"g{n}"})
            assert [z["name"] for z in read["data"]["zones"]] == names, (n, read)


def test_retention_sends_a_gap_and_seq_goes_on_after_it(start_device, room_video: Path) -> None:
    env = {**RELIABLE, **QUIET_MEDIA, "DOGMON_SOURCE": str(room_video), "DOGMON_EVENT_MAX_ROWS": "100"}
    device = start_device(env)
    got: list[dict] = []
    with ws_connect(device.ws_url) as ws:
        emitted = [emit(ws, got, n) for n in range(130)]
    device.stop()
    restarted = start_device(env)  # retention runs at start, off the loop
    with ws_connect(restarted.ws_url) as ws:
        deadline = time.monotonic() + 20
        for attempt in range(10_000):
            first = answer(ws, got, {"type": "get_events", "id": f"q{attempt}", "limit": 1})["data"]["first_seq"]
            if first > emitted[0] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert first > emitted[0]
    with ws_connect(restarted.ws_url + "?since=0") as ws:
        replay = ws_collect(ws, lambda m: emitted[-1] in {e["seq"] for e in events(m)}
                            and any(x["type"] == "gap" for x in m), 20)
        gap = next(m for m in replay if m["type"] == "gap")
        assert gap["data"]["requested_since"] == 0 and gap["data"]["resumes_from"] == first
        stored = [e["seq"] for e in events(replay)]
        assert stored[0] == first and stored == sorted(stored) and len(stored) <= 110
        assert emit(ws, replay, 999) > emitted[-1]
