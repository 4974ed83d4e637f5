"""Posture end to end: composed videos → real YOLOX-Nano → posture stage → WebSocket and MQTT.

1. No pose model (as shipped): the standing Labrador, then the sphinx-lying dog from the darknet photo,
   each cropped around the dog with a 60 % margin so the cut looks like one dog lying down in the same
   spot (the tracker keeps one track). Box evidence must give ``stand`` then ``lie``.
2. A user-installed pose model (a synthetic Dog-Pose ONNX graph emitting a standing dog's keypoints,
   installed by manifest path): ``pose`` overlays flow and the posture says ``source: keypoints``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import MqttCollector, events, ws_collect, ws_connect
from tests.media import compose_video
from tests.pose_graphs import DOG_POSE_24, constant_outputs_model, write_manifest
from tests.test_posture import DOGS, dog_pose

pytestmark = pytest.mark.e2e

LABRADOR = ("dog_standing_labrador_wikimedia.jpg", (53, 30, 665, 551))        # boxes from models/PROVENANCE.md
LYING = ("dog_lying_person_horse_darknet.jpg", (62, 263, 200, 348))


def crop_around(media: Path, name: str, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    image = cv2.imread(str(media / name))
    if image is None:
        pytest.fail(f"cannot read {media / name}", pytrace=False)
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return image[max(0, int(y1 - margin * h)):min(image.shape[0], int(y2 + margin * h)),
                 max(0, int(x1 - margin * w)):min(image.shape[1], int(x2 + margin * w))]


def posture_events(msgs: list[dict]) -> list[dict]:
    return [m for m in events(msgs) if m["event_type"] in ("sit", "stand", "lie")]


def test_standing_then_lying_dog_gives_stand_then_lie_on_websocket_and_mqtt(start_device, mosquitto, media: Path,
                                                                             tmp_path: Path) -> None:
    video = compose_video(tmp_path / "stand_lie.mp4", [(crop_around(media, *LABRADOR, 0.6), 4.5),
                                                       (crop_around(media, *LYING, 0.6), 5.0)])
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#")
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_SOURCE_LOOP": "0", "DOGMON_MQTT_URL": mosquitto.url,
                           "DOGMON_ABSENCE_SECONDS": "30"})
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: any(e["event_type"] == "lie" for e in posture_events(m)), timeout=40)
    assert got[0]["type"] == "connection" and got[0]["data"]["pose_model"] is None
    postures = posture_events(got)
    assert [e["event_type"] for e in postures] == ["stand", "lie"], [e["data"] for e in postures]
    stand, lie = (e["data"] for e in postures)
    assert stand["source"] == lie["source"] == "box"
    assert stand["previous"] is None and lie["previous"] == "stand"
    assert lie["track_id"] == stand["track_id"]
    # the Labrador was on screen about 4.5 s; the standing posture began with the track's first readings
    assert 3.0 <= lie["previous_seconds"] <= 5.0
    assert lie["held_seconds"] >= 2.0 and 0 < lie["confidence"] <= 1
    assert lie["box"]["w"] > lie["box"]["h"]

    # a client connecting now is told the current posture in the connection message
    with ws_connect(device.ws_url) as ws:
        hello = ws_collect(ws, lambda m: bool(m), timeout=10)[0]
    assert hello["data"]["state"]["posture"] == "lie" and hello["data"]["state"]["posture_source"] == "box"
    assert hello["data"]["postures"][0]["posture"] == "lie"

    subscriber.wait_for(lambda s: any(e["event_type"] == "lie" for e in s.json_on("/events")), 15, "lie on MQTT")
    mqtt_postures = [e for e in subscriber.json_on("/events") if e["event_type"] in ("sit", "stand", "lie")]
    assert [(e["event_type"], e["seq"]) for e in mqtt_postures] == [(e["event_type"], e["seq"]) for e in postures]
    subscriber.wait_for(lambda s: s.json_on("/state") and s.json_on("/state")[-1].get("posture") == "lie", 10,
                        "retained state with posture lie")
    subscriber.close()
    retained = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/state")
    retained.wait_for(lambda s: bool(s.snapshot()), 10, "retained state")
    topic, payload, was_retained = retained.snapshot()[0]
    assert was_retained and b'"posture":"lie"' in payload
    retained.close()


def standing_dog_in_input(size: int = 320) -> np.ndarray:
    """A standing dog's 24 Dog-Pose keypoints in model-input pixels (side view, about 200 px long)."""
    points = dog_pose(DOGS["stand"])
    return np.array([[size / 2 - 10 + x, size * 0.72 - y, 0.9] for x, y in (points[n] for n in DOG_POSE_24)],
                    dtype=np.float32)


def test_installed_pose_model_gives_pose_overlays_and_keypoint_posture(start_device, media: Path,
                                                                       tmp_path: Path) -> None:
    kpts = standing_dog_in_input()
    row = np.concatenate(([160, 160, 256, 207, 0.88], kpts.reshape(-1))).astype(np.float32)
    weights = constant_outputs_model(tmp_path / "dogpose_stub.onnx", [1, 3, 320, 320],
                                     {"output0": row.reshape(1, -1, 1)})            # [1, 77, 1] as Ultralytics
    manifest = write_manifest(tmp_path / "dogpose_stub.json", weights, {
        "name": "dogpose-stub", "family": "yolo_pose", "licence": "test graph",
        "input": {"width": 320, "height": 320, "mean": [0, 0, 0], "std": [255, 255, 255], "channels": "RGB"},
        "keypoints": DOG_POSE_24, "skeleton": [[22, 12], [12, 13], [22, 16]]})
    video = compose_video(tmp_path / "labrador.mp4", [(media / LABRADOR[0], 4.0)])
    device = start_device({"DOGMON_SOURCE": str(video), "DOGMON_SOURCE_LOOP": "0", "DOGMON_POSE_MODEL": str(manifest),
                           "DOGMON_POSE_FPS": "4", "DOGMON_POSTURE_MIN_SECONDS": "1"})
    with ws_connect(device.ws_url) as ws:
        got = ws_collect(ws, lambda m: bool(posture_events(m)), timeout=40)
    hello = got[0]["data"]
    assert hello["pose_model"]["name"] == "dogpose-stub" and hello["pose_model"]["keypoint_names"] == DOG_POSE_24
    stand = posture_events(got)[0]
    assert stand["event_type"] == "stand" and stand["data"]["source"] == "keypoints"
    overlays = [m["data"] for m in got if m["type"] == "overlay" and m.get("overlay_type") == "pose"]
    assert overlays, "no pose overlay"
    pose = overlays[-1]
    assert pose["model"] == "dogpose-stub" and pose["skeleton"] == [[22, 12], [12, 13], [22, 16]]
    assert len(pose["poses"]) == 1 and len(pose["poses"][0]["keypoints"]) == 24
    box = pose["poses"][0]["box"]
    withers = pose["poses"][0]["keypoints"][DOG_POSE_24.index("withers")]
    assert box["x"] <= withers[0] <= box["x"] + box["w"] and box["y"] <= withers[1] <= box["y"] + box["h"]
    assert withers[2] == pytest.approx(0.9)
    # at most DOGMON_POSE_FPS pose runs per second per dog
    times = [m["ts"] for m in got if m["type"] == "overlay" and m.get("overlay_type") == "pose"]
    if len(times) > 2:
        assert (len(times) - 1) / (times[-1] - times[0]) <= 4.5
