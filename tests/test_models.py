"""The model fetcher: mirror copy, sha256 check, atomic write, clear failures."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edge.config import load_config
from edge.core.models import MANIFEST_DIR, FetchError, ManifestFile, fetch_all, fetch_file, load_manifests
from edge.device import ensure_models

pytestmark = pytest.mark.unit


def test_fetch_from_mirror_verifies_every_manifest_file(mirror: Path, tmp_path: Path) -> None:
    paths = fetch_all(tmp_path / "m", mirror)
    names = {p.name for p in paths}
    assert {"yolox_nano.onnx", "dog_walking_vidtome.mp4"} <= names
    for manifest in load_manifests():
        for entry in manifest.files:
            digest = hashlib.sha256((tmp_path / "m" / entry.name).read_bytes()).hexdigest()
            assert digest in entry.sha256


def test_wrong_hash_is_refused_and_nothing_is_left_behind(mirror: Path, tmp_path: Path) -> None:
    entry = ManifestFile(name="yolox_nano.onnx", sha256=("0" * 64,), urls=(), mirror="models/yolox_nano.onnx")
    with pytest.raises(FetchError) as info:
        fetch_file(entry, tmp_path, mirror)
    assert "yolox_nano.onnx" in str(info.value) and str(mirror) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no partial or temporary file


def test_missing_mirror_file_says_what_to_do(tmp_path: Path) -> None:
    entry = ManifestFile(name="x.onnx", sha256=("0" * 64,), urls=(), mirror="models/x.onnx")
    with pytest.raises(FetchError, match="DOGMON_MIRROR"):
        fetch_file(entry, tmp_path / "out", tmp_path)


def test_download_failure_names_file_and_url(tmp_path: Path) -> None:
    entry = ManifestFile(name="x.onnx", sha256=("0" * 64,), urls=("http://127.0.0.1:9/x.onnx",))
    with pytest.raises(FetchError) as info:
        fetch_file(entry, tmp_path, None, timeout=2)
    assert "x.onnx" in str(info.value) and "127.0.0.1:9" in str(info.value)


def test_corrupt_local_copy_is_replaced(mirror: Path, tmp_path: Path) -> None:
    target = tmp_path / "dog_walking_vidtome.mp4"
    target.write_bytes(b"not a video")
    manifest = next(m for m in load_manifests() if m.kind == "media")
    fetch_all(tmp_path, mirror, [manifest])
    assert target.stat().st_size == manifest.files[0].size


def _manifest(directory: Path, name: str, kind: str) -> None:
    (directory / f"{name}.json").write_text(json.dumps({
        "name": name, "kind": kind,
        "files": [{"name": f"{name}.onnx", "sha256": ["0" * 64], "urls": [], "mirror": f"models/{name}.onnx"}]}))


def test_start_up_fetch_needs_the_detector_but_not_optional_stages(mirror: Path, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    shutil.copy(MANIFEST_DIR / "yolox_nano.json", manifests)
    _manifest(manifests, "users_pose_model", "pose")  # dropped in by a user, weights not fetchable
    config = dataclasses.replace(load_config(None, {}), model_dir=tmp_path / "m", mirror=mirror, source="0")
    ensure_models(config, manifests)  # the pose stage stays off; the device still starts
    assert (tmp_path / "m" / "yolox_nano.onnx").is_file()
    _manifest(manifests, "yolox_nano", "detector")  # now the detector itself cannot be had
    (tmp_path / "m" / "yolox_nano.onnx").unlink()
    with pytest.raises(FetchError, match="yolox_nano.onnx"):
        ensure_models(config, manifests)
