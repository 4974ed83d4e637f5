"""Snapshots, clips, bookmarks, /media, retention and the live view on a real device process.

Real parts: the device runs as ``python -m edge run`` on a video composed from the shared photos,
with the real detector; clients are real WebSocket/HTTP/MQTT clients over loopback; clips are
decoded with OpenCV.
"""

from __future__ import annotations

import contextlib
import http.client
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.helpers import MqttCollector, Msg, events, ws_collect, ws_connect

pytestmark = pytest.mark.e2e

LABRADOR = "dog_standing_labrador_wikimedia.jpg"
PRE = 2.0
GREEN = np.array([60, 200, 60])  # edge.media.render.DOG_COLOUR (BGR)


def media_file(data_dir: Path, data: dict[str, Any], key: str = "media_id") -> Path:
    extension = "mp4" if data[key].startswith("clip-") else "jpg"
    return data_dir / "media" / f"{data[key]}.{extension}"


def complete_on_disk(data_dir: Path, data: dict[str, Any]) -> bool:
    """What a client may rely on when the event arrives: the final file exists with all its bytes."""
    path = media_file(data_dir, data)
    partials = list((data_dir / "media").glob(f".{data['media_id']}*"))
    return path.is_file() and path.stat().st_size == data["bytes"] and not partials


class CheckingCollector(MqttCollector):
    """Checks, in paho's thread at the moment each media event arrives, that its file is complete."""

    def __init__(self, data_dir: Path, *args: Any, **kwargs: Any) -> None:
        self.data_dir = data_dir
        self.checked: dict[str, bool] = {}
        super().__init__(*args, **kwargs)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic.endswith("/events"):
            event = orjson.loads(message.payload)
            if event["event_type"] in ("snapshot_saved", "clip_saved"):
                self.checked[event["data"]["media_id"]] = complete_on_disk(self.data_dir, event["data"])
        super()._on_message(client, userdata, message)


def http_get(port: int, path: str, token: str | None = None,
             extra: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """A raw GET that sends ``path`` byte for byte (no client-side normalisation of ``..`` or %2e)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    if token:
        conn.putheader("Authorization", f"Bearer {token}")
    for name, value in (extra or {}).items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, {k.lower(): v for k, v in response.getheaders()}


def decode_clip(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(image)


@pytest.fixture
def visit_video(media: Path, tmp_path: Path) -> Path:
    """An empty room for 4 s, the Labrador for 3 s, the empty room for 6 s (played in a loop)."""
    from tests.media import compose_video

    return compose_video(tmp_path / "visit.mp4", [(None, 4.0), (media / LABRADOR, 3.0), (None, 6.0)])


def test_snapshots_and_clips_are_on_disk_before_their_events_and_bookmarks_record_clips(
        start_device, mosquitto, visit_video: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    subscriber = CheckingCollector(data_dir, mosquitto.host, mosquitto.port, "dogmonitor/testdog/#")
    device = start_device({
        "DOGMON_SOURCE": str(visit_video), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_MQTT_URL": mosquitto.url,
        "DOGMON_ABSENCE_SECONDS": "2", "DOGMON_CLIP_PRE_SECONDS": str(PRE), "DOGMON_CLIP_POST_SECONDS": "2",
        "DOGMON_CLIP_MAX_SECONDS": "8", "DOGMON_CLIP_EVENTS": "dog_detected", "DOGMON_SNAPSHOT_EVENTS": "dog_detected",
        "DOGMON_HA_DISCOVERY": "0"})
    on_arrival: dict[str, bool] = {}
    got: list[Msg] = []

    def check_media(msgs: list[Msg]) -> None:
        for m in events(msgs):
            if m["event_type"] in ("snapshot_saved", "clip_saved") and m["data"]["media_id"] not in on_arrival:
                on_arrival[m["data"]["media_id"]] = complete_on_disk(data_dir, m["data"])

    def first_clip_of(seq: int):
        def until(msgs: list[Msg]) -> bool:
            check_media(msgs)
            return any(seq in m["data"]["events"] for m in events(msgs, "clip_saved"))
        return until

    with ws_connect(device.ws_url + "?since=0") as ws:
        ws_collect(ws, lambda m: bool(events(m, "dog_detected")), timeout=40, into=got)
        detected = events(got, "dog_detected")[0]
        ws_collect(ws, first_clip_of(detected["seq"]), timeout=30, into=got)
        ws_collect(ws, lambda m: (check_media(m), any(e["data"]["event_seq"] == detected["seq"]
                                                     for e in events(m, "snapshot_saved")))[1], timeout=15, into=got)

        # a bookmark from the tablet: bookmark_created at once, then a clip with its label
        ws.send(orjson.dumps({"type": "bookmark", "label": "zoomies", "id": "b1"}))
        reply = ws_collect(ws, lambda m: any(x.get("type") == "reply" and x["data"].get("id") == "b1" for x in m),
                           timeout=5, into=got)
        mark = next(x for x in reply if x.get("type") == "reply" and x["data"].get("id") == "b1")["data"]
        created = [e for e in events(got, "bookmark_created") if e["seq"] == mark["seq"]]
        assert created and created[0]["data"]["label"] == "zoomies" and created[0]["data"]["origin"] == "ws"
        ws_collect(ws, first_clip_of(mark["seq"]), timeout=20, into=got)

        # … and one over MQTT (cmd/bookmark): same path, its own answer on cmd/result
        subscriber.client.publish("dogmonitor/testdog/cmd/bookmark", orjson.dumps({"label": "from HA", "id": "m1"}),
                                  qos=1)
        ws_collect(ws, lambda m: any(e["data"]["origin"] == "mqtt" for e in events(m, "bookmark_created")),
                   timeout=10, into=got)
        mqtt_mark = next(e for e in events(got, "bookmark_created") if e["data"]["origin"] == "mqtt")
        assert mqtt_mark["data"]["label"] == "from HA"
        ws_collect(ws, first_clip_of(mqtt_mark["seq"]), timeout=20, into=got)

    # every media event found its file complete on disk the moment it arrived over WebSocket …
    assert on_arrival and all(on_arrival.values()), on_arrival
    # … and over MQTT
    subscriber.wait_for(lambda s: set(on_arrival) <= set(s.checked), 15, "media events on MQTT")
    assert all(subscriber.checked[m] for m in on_arrival), subscriber.checked
    result = [orjson.loads(p) for t, p, _ in subscriber.snapshot() if t.endswith("/cmd/result")]
    assert any(r["id"] == "m1" and r["ok"] for r in result), result

    # a snapshot asked for over MQTT (cmd/snapshot): answered once its file is on disk
    subscriber.client.publish("dogmonitor/testdog/cmd/snapshot", orjson.dumps({"id": "s1"}), qos=1)
    subscriber.wait_for(lambda s: any(r["id"] == "s1" for r in s.json_on("/cmd/result")), 15, "cmd/snapshot result")
    answer = next(r for r in subscriber.json_on("/cmd/result") if r["id"] == "s1")
    assert answer["ok"] and complete_on_disk(data_dir, answer["result"]), answer
    assert answer["result"]["event_type"] == "request" and answer["result"]["event_seq"] is None

    # the snapshot of the new dog, clean and with its box drawn
    snap = next(e for e in events(got, "snapshot_saved") if e["data"]["event_seq"] == detected["seq"])["data"]
    assert snap["track_id"] == detected["data"]["track_id"] and (snap["width"], snap["height"]) == (640, 480)
    status, body, headers = http_get(device.port, snap["url"])
    assert status == 200 and headers["content-type"] == "image/jpeg" and len(body) == snap["bytes"]
    clean = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(np.frombuffer(http_get(device.port, snap["overlay_url"])[1], np.uint8), cv2.IMREAD_COLOR)
    assert clean.shape == drawn.shape == (480, 640, 3)
    is_green = (np.abs(drawn.astype(int) - GREEN).sum(axis=2) < 60)
    assert is_green.sum() > 500 > (np.abs(clean.astype(int) - GREEN).sum(axis=2) < 60).sum()

    # the newest snapshot is retained on MQTT as JPEG bytes (Home Assistant's image entity)
    retained = [p for t, p, _ in subscriber.snapshot() if t == "dogmonitor/testdog/snapshot"]
    snapshot_ids = [e["data"]["media_id"] for e in events(got, "snapshot_saved")] + [answer["result"]["media_id"]]
    assert retained and retained[-1][:2] == b"\xff\xd8"
    assert any(retained[-1] == media_file(data_dir, {"media_id": i}).read_bytes() for i in snapshot_ids)

    # the dog's clip starts about the pre-roll before dog_detected: empty room first, then the dog
    clip = next(e for e in events(got, "clip_saved") if detected["seq"] in e["data"]["events"])["data"]
    assert clip["event_seq"] == detected["seq"] and clip["event_type"] == "dog_detected"
    assert clip["start"] == pytest.approx(detected["ts"] - PRE, abs=0.4)
    assert clip["pre_roll"] == pytest.approx(PRE, abs=0.4)
    frames = decode_clip(media_file(data_dir, clip))
    assert len(frames) == pytest.approx(clip["duration"] * clip["fps"], abs=1)
    busy = [float(f.std()) > 10 for f in frames]  # the empty room is a flat grey frame
    assert not busy[0], "the clip should open on the empty room, before the dog arrived"
    dog_at = busy.index(True) / clip["fps"]
    assert PRE - 1.2 <= dog_at <= PRE + 0.1, f"dog appears {dog_at:.2f} s into the clip"

    # bookmark clips carry their labels, are indexed with them and are served by id
    for seq, label in ((mark["seq"], "zoomies"), (mqtt_mark["seq"], "from HA")):
        bookmarked = next(e for e in events(got, "clip_saved") if seq in e["data"]["events"])["data"]
        assert label in bookmarked["labels"]
        status, body, headers = http_get(device.port, bookmarked["url"])
        assert status == 200 and headers["content-type"] == "video/mp4" and len(body) == bookmarked["bytes"]
        # Safari's <video> asks for byte ranges first
        status, part, headers = http_get(device.port, bookmarked["url"], extra={"Range": "bytes=0-1"})
        assert status == 206 and part == body[:2] and headers["content-range"] == f"bytes 0-1/{len(body)}"
    subscriber.close()


def test_media_http_live_view_and_a_full_disk(start_device, visit_video: Path, tmp_path: Path) -> None:
    token = "s3cret-0123456789"
    data_dir = tmp_path / "data"
    device = start_device({
        "DOGMON_SOURCE": str(visit_video), "DOGMON_DATA_DIR": str(data_dir), "DOGMON_WS_TOKEN": token,
        "DOGMON_LIVE_FPS": "4", "DOGMON_LIVE_WIDTH": "320", "DOGMON_MEDIA_MIN_FREE_MB": "10000000",
        "DOGMON_SNAPSHOT_EVENTS": "", "DOGMON_CLIP_EVENTS": ""})
    port = device.port

    # /healthz needs no token; everything else does
    assert http_get(port, "/healthz")[0] == 200
    assert http_get(port, "/snapshot.jpg")[0] == 401
    assert http_get(port, "/media/snap-20260101T000000-deadbeef")[0] == 401
    deadline = time.monotonic() + 15
    while (status := http_get(port, "/snapshot.jpg", token))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status[0] == 200 and status[2]["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(status[1], np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)

    # /media/<id>: ids only; unknown ids and anything path-like are refused, never a file
    database = data_dir / "dogmonitor.db"
    assert database.is_file()
    assert http_get(port, "/media/snap-20260101T000000-deadbeef", token)[0] == 404
    for path in ("/media/../dogmonitor.db", "/media/%2e%2e/dogmonitor.db", "/media/%2E%2E%2Fdogmonitor.db",
                 "/media/..%2f..%2fetc%2fpasswd", "/media//etc/passwd", f"/media/{database}",
                 "/media/snap-20260101T000000-deadbeef.jpg", "/media/", "/media/snap-20260101T000000-deadbeef/..",
                 "/media/%00"):
        status, body, _ = http_get(port, path, token)
        assert status in (400, 404), (path, status)
        assert b"SQLite" not in body and b"root:" not in body

    with ws_connect(device.ws_url, token=token) as ui:
        # nobody watches: no live frame is encoded at all
        got = ws_collect(ui, lambda m: len([x for x in m if x["type"] == "telemetry"]) >= 3, timeout=15)
        live = [x["data"]["media"]["live"] for x in got if x["type"] == "telemetry"]
        assert all(t["encoded"] == 0 and t["viewers"] == 0 for t in live), live

        # a viewer gets binary JPEG frames at about DOGMON_LIVE_FPS, DOGMON_LIVE_WIDTH wide
        with pytest.raises(InvalidStatus):
            ws_connect(f"ws://127.0.0.1:{port}/ws/video")
        frames: list[bytes | str] = []
        with ws_connect(f"ws://127.0.0.1:{port}/ws/video", token=token) as viewer:
            started = time.monotonic()
            while time.monotonic() - started < 3.0:
                with contextlib.suppress(TimeoutError):
                    frames.append(viewer.recv(timeout=1))
        assert all(isinstance(f, bytes) and f[:2] == b"\xff\xd8" for f in frames)
        assert 6 <= len(frames) <= 16, len(frames)
        assert cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)

        # viewer gone: encoding stops (telemetry received while watching may still be buffered: skip it)
        got = ws_collect(ui, lambda m: any(x["type"] == "telemetry" and x["data"]["media"]["live"]["viewers"] == 0
                                           for x in m), timeout=15)
        got = ws_collect(ui, lambda m: len([x for x in m if x["type"] == "telemetry"]) >= 3, timeout=15)
        encoded = [x["data"]["media"]["live"]["encoded"] for x in got if x["type"] == "telemetry"]
        assert encoded[0] >= len(frames) and len(set(encoded)) == 1, encoded

        # a full disk: the snapshot is refused and reported (error event + telemetry flag), the device goes on
        ui.send(orjson.dumps({"type": "snapshot", "id": "s1"}))
        got = ws_collect(ui, lambda m: any(x["type"] == "error" and x["data"].get("id") == "s1" for x in m)
                         and any(x["type"] == "telemetry" and x["data"]["media"]["disk_full"] for x in m), timeout=15)
        refused = next(x for x in got if x["type"] == "error" and x["data"].get("id") == "s1")
        assert refused["data"]["code"] == "storage_failed" and "free" in refused["data"]["message"]
        report = [e for e in events(got, "error") if e["data"]["component"] == "media"]
        assert report and report[0]["data"]["disk_full"] is True
        assert not list((data_dir / "media").iterdir())
        status, body, _ = http_get(port, "/healthz", token)  # the problems are shown with the token only
        assert status == 200 and "media disk full" in orjson.loads(body)["problems"]
        got = ws_collect(ui, lambda m: any(x["type"] == "overlay" for x in m), timeout=10)  # detection goes on


def test_retention_deletes_the_oldest_media_under_a_small_quota(start_device, media: Path, tmp_path: Path) -> None:
    from tests.media import compose_video

    video = compose_video(tmp_path / "dog.mp4", [(media / LABRADOR, 4.0)])
    data_dir = tmp_path / "data"
    quota_mb = 0.25
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_DATA_DIR": str(data_dir),
                           "DOGMON_MEDIA_MAX_MB": str(quota_mb), "DOGMON_SNAPSHOT_EVENTS": "",
                           "DOGMON_CLIP_EVENTS": ""})
    saved: list[dict[str, Any]] = []
    with ws_connect(device.ws_url) as ws:
        n = 0
        while len(saved) < 5:
            n += 1
            ws.send(orjson.dumps({"type": "snapshot", "id": n}))
            got = ws_collect(ws, lambda m, n=n: any(x["type"] in ("reply", "error") and x["data"].get("id") == n
                                                    for x in m), timeout=15)
            answer = next(x for x in got if x["type"] in ("reply", "error") and x["data"].get("id") == n)
            if answer["type"] == "error" and answer["data"]["code"] == "cooldown":
                time.sleep(0.25)  # at most one snapshot a second: ask again shortly (polling, within the rate limit)
                continue
            assert answer["type"] == "reply", answer
            saved.append(answer["data"])
        pair = saved[0]["bytes"] + saved[0]["overlay_bytes"]
        assert 3 * pair > quota_mb * 2**20, "the test needs snapshots large enough to exceed the quota"

        # retention runs right after each save, off the loop: poll the listing until it has caught up
        deadline = time.monotonic() + 10
        for attempt in range(1000):
            ws.send(orjson.dumps({"type": "list_media", "id": f"l{attempt}"}))
            got = ws_collect(ws, lambda m, i=attempt: any(x["type"] == "reply" and x["data"].get("id") == f"l{i}"
                                                          for x in m), timeout=5)
            listed = next(x for x in got if x["type"] == "reply" and x["data"].get("id") == f"l{attempt}")["data"]
            listed = listed["media"]
            if sum(m["bytes"] for m in listed) <= quota_mb * 2**20 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    kept = {m["media_id"] for m in listed}
    assert sum(m["bytes"] for m in listed) <= quota_mb * 2**20
    alive = [s["media_id"] in kept for s in saved]
    assert alive[-1] and not alive[0] and alive == sorted(alive), alive  # the oldest went first
    on_disk = {p.stem for p in (data_dir / "media").iterdir()}
    for s in saved:
        present = s["media_id"] in kept
        assert (s["media_id"] in on_disk) is present and (s["overlay_media_id"] in on_disk) is present
        assert http_get(device.port, s["url"])[0] == (200 if present else 404)
