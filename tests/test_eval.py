"""``python -m edge.tools.eval`` on the real shared photos and a user's labelled folder, with the real detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.tools.eval import label_from_name, main

pytestmark = pytest.mark.unit


def test_labels_come_from_the_shared_file_names() -> None:
    assert label_from_name("dog_sitting_bike_darknet.jpg") == "sit"
    assert label_from_name("dogs_lying_sleeping_pups_wikimedia.jpg") == "lie"
    assert label_from_name("dogs_running_playing_wikimedia.jpg") == "stand"
    assert label_from_name("hardneg_coyote_wikimedia.jpg") == "none"
    assert label_from_name("PROVENANCE.md") is None


def test_eval_over_shared_media_prints_detection_and_posture_tables(tool_env, capsys) -> None:
    assert main(["--no-video"]) == 0
    out = capsys.readouterr().out
    # the real YOLOX-Nano finds a dog in 9 of the 10 dog photos (not the sleeping puppies) and none in the 3 others
    assert "detection (per photo): recall 9/10 = 90%, precision 9/9 = 100%" in out
    assert "false alarms on 0 of 3 no-dog photos" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["sit"], ["lie"])}
    assert rows["sit"][-1] == "2/2"          # both sitting dogs: tall narrow boxes
    assert rows["lie"][5] == "1"             # lying column order: sit stand lie unknown missed → the missed puppies
    assert "posture accuracy:" in out and "box (single photos: absolute aspect rule" in out


def test_eval_over_a_users_labelled_folder(tool_env, capsys, media: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    for truth, name in (("sit", "dog_sitting_bike_darknet.jpg"), ("stand", "dog_standing_labrador_wikimedia.jpg"),
                        ("lie", "dog_lying_person_horse_darknet.jpg"), ("none", "neg_bridge_wikimedia.jpg")):
        (folder / truth).mkdir(parents=True)
        (folder / truth / name).symlink_to(media / name)
    assert main(["--no-shared", "--images", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "recall 3/3 = 100%, precision 3/3 = 100%" in out
    assert "posture accuracy: 3/3 = 100%" in out


def test_eval_says_what_is_wrong_with_an_empty_folder(tool_env, capsys, tmp_path: Path) -> None:
    assert main(["--no-shared", "--images", str(tmp_path / "nothing")]) == 2
    assert "no images in" in capsys.readouterr().err


def test_eval_uses_keypoints_from_a_pose_model(tool_env, capsys, media: Path, tmp_path: Path) -> None:
    """With a pose model (here a graph that always sees a sitting dog) keypoints decide, and the table says so."""
    import numpy as np

    from tests.pose_graphs import DOG_POSE_24, constant_outputs_model, write_manifest
    from tests.test_posture import DOGS, dog_pose

    points = dog_pose(DOGS["sit"])
    kpts = np.array([[150 + x, 250 - y, 0.9] for x, y in (points[n] for n in DOG_POSE_24)], dtype=np.float32)
    row = np.concatenate(([160, 160, 200, 200, 0.9], kpts.reshape(-1))).astype(np.float32)
    weights = constant_outputs_model(tmp_path / "sit.onnx", [1, 3, 320, 320], {"output0": row.reshape(1, -1, 1)})
    manifest = write_manifest(tmp_path / "sit.json", weights, {
        "name": "always-sitting", "family": "yolo_pose", "keypoints": DOG_POSE_24,
        "input": {"width": 320, "height": 320, "std": [255, 255, 255]}})
    folder = tmp_path / "mine" / "stand"
    folder.mkdir(parents=True)
    (folder / "labrador.jpg").symlink_to(media / "dog_standing_labrador_wikimedia.jpg")
    assert main(["--no-shared", "--images", str(tmp_path / "mine"), "--pose-model", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "keypoints from always-sitting" in out
    assert "labrador.jpg" in out and "sit (keypoints)" in out
    assert "posture accuracy: 0/1 = 0%" in out


def test_eval_in_grey_shows_the_night_camera_losses_per_class(tool_env, capsys) -> None:
    """Grey as an infrared camera: night mode (contrast stretch) keeps the nursing dog (9/10, as in colour);
    the per-class table names the sleeping puppies the model calls a cat, no false alarm appears, and the
    demo clip through the device path still has its dog present and standing."""
    assert main(["--gray"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("images: grey")
    assert "detection (per photo): recall 9/10 = 90%, precision 9/9 = 100%" in out
    assert "false alarms on 0 of 3 no-dog photos" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in (["lie"], ["none"])
            and "photos" not in line and "/" in line.split()[2]}
    assert rows["lie"].split()[1:3] == ["3", "2/3"] and "dogs_lying_sleeping_pups: cat" in rows["lie"]
    assert rows["none"].split()[1:3] == ["3", "0/3"]
    clip = out.split("device path on dog_walking_vidtome.mp4:")[1].splitlines()
    present, frames = (int(x) for x in clip[1].split("dog present in ")[1].split(" frames")[0].split("/"))
    assert frames == 32 and present >= 29
    shown = clip[2].split(": ")[1]
    tracked = int(clip[1].split("confirmed track in ")[1])
    stand = int(shown.split("stand ")[1].split(",")[0])
    assert stand * 4 >= tracked * 3, shown
    assert "sit@" not in clip[3] and "lie@" not in clip[3]
