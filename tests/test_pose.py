"""The pose runner on real onnxruntime sessions of synthetic graphs, one per output family.

Every expected keypoint is worked out by hand from the crop geometry (box grown by the padding,
widened to the input aspect, centred on the box), so these tests pin what a user's real model
would produce in frame pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.vision.pose import PoseRunner, PoseSpec, crop_for, load_pose_runner, preprocess, yolo_rows
from edge.vision.runtime import create_session
from tests.pose_graphs import (
    AP10K_17,
    AP10K_SKELETON,
    DOG_POSE_24,
    constant_outputs_model,
    identity_heatmap_model,
    write_manifest,
)

pytestmark = pytest.mark.unit

FRAME = np.zeros((480, 640, 3), dtype=np.uint8)


def yolo_spec(**extra: object) -> dict:
    return {"name": "stub-dog-pose", "family": "yolo_pose", "licence": "test",
            "input": {"width": 320, "height": 320, "mean": [0, 0, 0], "std": [255, 255, 255], "channels": "RGB"},
            "keypoints": DOG_POSE_24, "skeleton": [[22, 12], [16, 22]], **extra}


def yolo_rows_for_test() -> tuple[np.ndarray, np.ndarray]:
    """Three candidate rows: a confident decoy far from the target dog, the target, a weak row."""
    k = 24
    target_kpts = np.array([[10 * i + 5, 8 * i + 4, 0.5 + i / 100] for i in range(k)], dtype=np.float32)
    decoy_kpts = np.full((k, 3), 300.0, dtype=np.float32)
    rows = np.zeros((3, 5 + 3 * k), dtype=np.float32)
    rows[0, :5] = [300, 300, 40, 40, 0.9]            # decoy: cx, cy, w, h, score (no overlap with the target)
    rows[0, 5:] = decoy_kpts.reshape(-1)
    rows[1, :5] = [160, 160, 128, 256, 0.6]          # the tracked dog's box in input pixels (see below)
    rows[1, 5:] = target_kpts.reshape(-1)
    rows[2, :5] = [160, 160, 128, 256, 0.1]          # below the score threshold
    return rows, target_kpts


# Box (100, 50, 300, 450) in a 640x480 frame, padding 0.25 → 250x500, widened to the 1:1 input → 500x500,
# centred on (200, 250): the crop starts at (-50, 0) and the scale is 320/500 = 0.64. The box itself lands at
# input (96, 32)-(224, 288), i.e. centre (160, 160), size 128x256.
YOLO_BOX = (100.0, 50.0, 300.0, 450.0)


def yolo_expected(kpts: np.ndarray) -> np.ndarray:
    return np.stack((-50 + kpts[:, 0] / 0.64, kpts[:, 1] / 0.64, kpts[:, 2]), axis=1)


@pytest.mark.parametrize("layout", ["channels", "rows"])
def test_yolo_pose_both_layouts_decode_to_frame_pixels(tmp_path: Path, layout: str) -> None:
    rows, kpts = yolo_rows_for_test()
    tensor = rows.T[np.newaxis] if layout == "channels" else rows[np.newaxis]   # [1, 77, 3] or [1, 3, 77]
    weights = constant_outputs_model(tmp_path / "pose.onnx", [1, 3, 320, 320], {"output0": tensor})
    runner = PoseRunner(create_session(weights), PoseSpec.from_manifest(yolo_spec()))
    pose = runner.estimate(FRAME, YOLO_BOX)
    assert pose is not None
    assert pose.score == pytest.approx(0.6)
    np.testing.assert_allclose(pose.keypoints, yolo_expected(kpts), atol=1e-4)
    # first keypoint by hand: input (5, 4) → frame (-50 + 5/0.64, 4/0.64) = (-42.1875, 6.25)
    assert pose.named()["front_left_paw"][:2] == pytest.approx((-42.1875, 6.25), abs=1e-4)


def test_yolo_pose_nms_export_and_logit_visibility(tmp_path: Path) -> None:
    """Exports with nms=True give rows [x1, y1, x2, y2, score, class, K×3]; logits are squashed on request."""
    rows, kpts = yolo_rows_for_test()
    nms_rows = np.zeros((3, 6 + 3 * 24), dtype=np.float32)
    for i, row in enumerate(rows):
        cx, cy, w, h, score = row[:5]
        nms_rows[i, :6] = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, 0]
        nms_rows[i, 6:] = row[5:]
    nms_rows[1, 6 + 2::3] = 0.0   # visibility logit 0 → probability 0.5
    weights = constant_outputs_model(tmp_path / "pose.onnx", [1, 3, 320, 320], {"output0": nms_rows[np.newaxis]})
    spec = PoseSpec.from_manifest(yolo_spec(output={"visibility": "logit"}))
    pose = PoseRunner(create_session(weights), spec).estimate(FRAME, YOLO_BOX)
    assert pose is not None
    expected = yolo_expected(kpts)
    expected[:, 2] = 0.5
    np.testing.assert_allclose(pose.keypoints, expected, atol=1e-4)


def test_yolo_pose_nothing_above_threshold_gives_no_pose(tmp_path: Path) -> None:
    rows, _ = yolo_rows_for_test()
    rows[:, 4] = 0.05
    weights = constant_outputs_model(tmp_path / "pose.onnx", [1, 3, 320, 320], {"output0": rows.T[np.newaxis]})
    runner = PoseRunner(create_session(weights), PoseSpec.from_manifest(yolo_spec()))
    assert runner.estimate(FRAME, YOLO_BOX) is None


def test_yolo_rows_rejects_a_shape_that_is_not_pose() -> None:
    with pytest.raises(ValueError, match="5\\+3K"):
        yolo_rows(np.zeros((1, 85, 100)), 24)


def simcc_spec(**extra: object) -> dict:
    return {"name": "stub-rtmpose-ap10k", "family": "simcc", "licence": "test",
            "input": {"width": 192, "height": 256, "mean": [123.675, 116.28, 103.53],
                      "std": [58.395, 57.12, 57.375], "channels": "RGB"},
            "keypoints": AP10K_17, "skeleton": AP10K_SKELETON, **extra}


@pytest.mark.parametrize("names", [("simcc_x", "simcc_y"), ("simcc_y", "simcc_x")])
def test_simcc_decodes_argmax_over_split_ratio(tmp_path: Path, names: tuple[str, str]) -> None:
    k = 17
    sx = np.zeros((1, k, 192 * 2), dtype=np.float32)
    sy = np.zeros((1, k, 256 * 2), dtype=np.float32)
    for i in range(k):
        sx[0, i, 20 * i + 1] = 0.9          # x = (20i + 1) / 2
        sy[0, i, 25 * i + 3] = 0.8 - i / 100  # y = (25i + 3) / 2; confidence = min(0.9, 0.8 - i/100)
    arrays = {"simcc_x": sx, "simcc_y": sy}
    weights = constant_outputs_model(tmp_path / "rtm.onnx", [1, 3, 256, 192], {n: arrays[n] for n in names})
    runner = PoseRunner(create_session(weights), PoseSpec.from_manifest(simcc_spec()))
    # Box (300, 100, 400, 300): 100x200, padded → 125x250, widened to 192:256 → 187.5x250, centred on (350, 200):
    # crop origin (256.25, 75), scale 192 / 187.5 = 1.024.
    pose = runner.estimate(FRAME, (300.0, 100.0, 400.0, 300.0))
    assert pose is not None
    i = np.arange(k)
    expected = np.stack((256.25 + (20 * i + 1) / 2 / 1.024, 75 + (25 * i + 3) / 2 / 1.024, 0.8 - i / 100), axis=1)
    np.testing.assert_allclose(pose.keypoints, expected, atol=1e-4)
    assert pose.named()["L_Eye"] == pytest.approx((256.25 + 0.5 / 1.024, 75 + 1.5 / 1.024, 0.8), abs=1e-4)


@pytest.mark.parametrize(("box", "spot_in_input"), [
    ((60.0, 40.0, 124.0, 104.0), (30, 30)),    # crop 64x64 at (60, 40), scale 1
    ((60.0, 40.0, 188.0, 168.0), (15, 15)),    # crop 128x128 at (60, 40), scale 0.5
])
def test_heatmap_peak_follows_a_real_pixel_through_crop_and_back(tmp_path: Path, box: tuple, spot_in_input) -> None:
    """The identity graph turns the crop into the heatmap: the decoded keypoint must land on the bright pixel."""
    weights = identity_heatmap_model(tmp_path / "hm.onnx", 64)
    spec = PoseSpec.from_manifest({"name": "identity", "family": "heatmap", "crop_padding": 0,
                                   "input": {"width": 64, "height": 64, "channels": "BGR"},
                                   "keypoints": ["nose"]})
    frame = np.zeros((200, 200, 3), dtype=np.uint8)
    frame[70, 90] = (255, 0, 0)   # blue channel = channel 0 in BGR order
    crop = crop_for(box, 64, 64, 0)
    assert (crop.x0, crop.y0) == (60.0, 40.0)
    pose = PoseRunner(create_session(weights), spec).estimate(frame, box)
    assert pose is not None
    x, y, conf = pose.keypoints[0]
    assert (x, y) == pytest.approx((90.0, 70.0))
    assert conf == pytest.approx(255.0)
    u, v = spot_in_input
    assert crop.to_input((90, 70, 90, 70))[:2] == pytest.approx((u, v))


def test_heatmap_quarter_pixel_refinement_and_scaling(tmp_path: Path) -> None:
    hm = np.zeros((1, 2, 64, 48), dtype=np.float32)
    hm[0, 0, 10, 20] = 1.0
    hm[0, 0, 10, 21] = 0.5     # right neighbour higher → x + 0.25
    hm[0, 0, 11, 20] = 0.4     # lower neighbour higher → y + 0.25
    hm[0, 1, 30, 5] = 0.7      # symmetric neighbours → no shift
    weights = constant_outputs_model(tmp_path / "hm.onnx", [1, 3, 256, 192], {"heatmaps": hm})
    spec = PoseSpec.from_manifest({"name": "hm", "family": "heatmap", "crop_padding": 0,
                                   "input": {"width": 192, "height": 256}, "keypoints": ["a", "b"]})
    # box 192x256 at (100, 50): crop == box, scale 1; heatmap stride 4
    pose = PoseRunner(create_session(weights), spec).estimate(FRAME, (100.0, 50.0, 292.0, 306.0))
    assert pose is not None
    np.testing.assert_allclose(pose.keypoints, [[100 + 20.25 * 4, 50 + 10.25 * 4, 1.0],
                                                [100 + 5 * 4, 50 + 30 * 4, 0.7]], atol=1e-5)


def test_preprocess_normalises_in_the_manifest_channel_order_and_pads_outside_the_frame() -> None:
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    frame[:] = (10, 20, 30)  # B, G, R
    spec = PoseSpec.from_manifest({"name": "n", "family": "simcc", "crop_padding": 0,
                                   "input": {"width": 4, "height": 4, "mean": [1, 2, 3], "std": [2, 4, 6],
                                             "channels": "RGB", "pad_value": 7},
                                   "keypoints": ["a"]})
    crop = crop_for((-2.0, 0.0, 2.0, 4.0), 4, 4, 0)   # left half outside the frame
    tensor = preprocess(frame, crop, spec)
    assert tensor.shape == (1, 3, 4, 4)
    inside = tensor[0, :, :, 3]
    np.testing.assert_allclose(inside[:, 0], [(30 - 1) / 2, (20 - 2) / 4, (10 - 3) / 6], atol=1e-5)
    outside = tensor[0, :, :, 0]
    np.testing.assert_allclose(outside[:, 0], [(7 - 1) / 2, (7 - 2) / 4, (7 - 3) / 6], atol=1e-5)


def test_manifest_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="family"):
        PoseSpec.from_manifest({"name": "x", "family": "openpose", "input": {"width": 1, "height": 1},
                                "keypoints": ["a"]})
    with pytest.raises(ValueError, match="skeleton"):
        PoseSpec.from_manifest({"name": "x", "family": "heatmap", "input": {"width": 8, "height": 8},
                                "keypoints": ["a"], "skeleton": [[0, 3]]})


def test_input_size_mismatch_is_reported(tmp_path: Path) -> None:
    rows, _ = yolo_rows_for_test()
    weights = constant_outputs_model(tmp_path / "pose.onnx", [1, 3, 640, 640], {"output0": rows.T[np.newaxis]})
    with pytest.raises(ValueError, match="640"):
        PoseRunner(create_session(weights), PoseSpec.from_manifest(yolo_spec()))


def test_pose_stage_is_off_without_a_pose_manifest_and_loads_one_by_path(tmp_path: Path) -> None:
    empty = tmp_path / "manifests"
    empty.mkdir()
    assert load_pose_runner("", tmp_path, manifest_dir=empty) is None
    assert load_pose_runner("off", tmp_path, manifest_dir=empty) is None
    rows, _ = yolo_rows_for_test()
    weights = constant_outputs_model(tmp_path / "pose.onnx", [1, 3, 320, 320], {"output0": rows.T[np.newaxis]})
    manifest = write_manifest(tmp_path / "pose.json", weights, yolo_spec())
    runner = load_pose_runner(str(manifest), tmp_path / "elsewhere", manifest_dir=empty)
    assert runner is not None and runner.spec.family == "yolo_pose" and len(runner.spec.keypoints) == 24
    # the same manifest installed in models/ with weights in the model dir is found automatically
    (empty / "pose.json").write_text(manifest.read_text())
    auto = load_pose_runner("", tmp_path, manifest_dir=empty)
    assert auto is not None and auto.spec.name == "stub-dog-pose"
    weights.write_bytes(b"not the pinned file")
    assert load_pose_runner("", tmp_path, manifest_dir=empty) is None
    with pytest.raises(ValueError, match="sha256"):
        load_pose_runner("stub-dog-pose", tmp_path, manifest_dir=empty)


def test_optional_pose_manifest_fetches_its_weights_from_the_mirror(tmp_path: Path) -> None:
    """A pose manifest with a mirror path is installed on demand; without the file the stage stays off."""
    manifests, mirror, model_dir = tmp_path / "manifests", tmp_path / "mirror", tmp_path / "model-dir"
    manifests.mkdir()
    (mirror / "models").mkdir(parents=True)
    rows, _ = yolo_rows_for_test()
    weights = constant_outputs_model(mirror / "models" / "dogpose.onnx", [1, 3, 320, 320],
                                     {"output0": rows.T[np.newaxis]})
    manifest = write_manifest(manifests / "dogpose.json", weights, {**yolo_spec(), "optional": True})
    spec = json.loads(manifest.read_text())
    spec["files"][0]["mirror"] = "models/dogpose.onnx"
    manifest.write_text(json.dumps(spec))
    assert load_pose_runner("", model_dir, manifest_dir=manifests) is None          # no mirror: off
    runner = load_pose_runner("", model_dir, manifest_dir=manifests, mirror=mirror)
    assert runner is not None and (model_dir / "dogpose.onnx").is_file()


@pytest.mark.parametrize("example", sorted((Path(__file__).resolve().parent.parent / "docs" / "pose").glob("*.json")),
                         ids=lambda p: p.name)
def test_documented_example_manifests_load_and_name_the_parts_posture_needs(example: Path) -> None:
    from edge.behaviour.posture import classify_keypoints
    from edge.core.models import load_manifest

    manifest = load_manifest(example)
    spec = PoseSpec.from_manifest(manifest.spec)
    assert manifest.kind == "pose" and manifest.spec.get("optional") is True
    # every keypoint at a standing dog's place would be read: the names map onto the posture parts
    standing = {"paw": 100.0, "knee": 75.0, "elbow": 40.0, "shoulder": 30.0, "hip": 30.0}
    points = {}
    for i, name in enumerate(spec.keypoints):
        low = name.lower().replace(" ", "_")
        y = next((v for k, v in standing.items() if k in low), 10.0)
        front = any(k in low for k in ("front", "_f_", "shoulder", "elbow", "eye", "nose", "neck", "withers"))
        points[name] = ((60.0 if front else -60.0) + i * 0.1, y, 0.9)
    reading = classify_keypoints(points)
    assert reading is not None and reading.posture == "stand"
