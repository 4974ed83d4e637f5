"""YAMNet is optional: a device without it still installs and runs; with bark detection on, it says what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.audio.feature import load_classifier
from edge.config import load_config
from edge.device import StartupError, ensure_models

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def mirror_without_yamnet(mirror: Path, tmp_path: Path) -> Path:
    """A mirror holding everything but yamnet.onnx (as for a user who has no copy of our conversion)."""
    partial = tmp_path / "mirror"
    for rel in ("models/yolox_nano.onnx", "media/dog_walking_vidtome.mp4", "models/yamnet_class_map.csv"):
        (partial / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror / rel, partial / rel)
    return partial


def _env(model_dir: Path, mirror: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGMON_")}
    env.update({"DOGMON_MODEL_DIR": str(model_dir), "DOGMON_MIRROR": str(mirror), "PYTHONPATH": str(REPO), **extra})
    return env


@pytest.mark.e2e
def test_fetch_models_gets_everything_else_when_yamnet_cannot_be_had(mirror_without_yamnet: Path,
                                                                     tmp_path: Path) -> None:
    models = tmp_path / "models"
    done = subprocess.run([sys.executable, "-m", "edge", "fetch-models"], env=_env(models, mirror_without_yamnet),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (models / "yolox_nano.onnx").is_file() and (models / "dog_walking_vidtome.mp4").is_file()
    assert not (models / "yamnet.onnx").exists()
    assert "skipped (optional, needed when DOGMON_AUDIO_SOURCE is set" in done.stderr


@pytest.mark.unit
def test_device_start_up_does_not_need_yamnet_when_audio_is_off(mirror_without_yamnet: Path,
                                                                tmp_path: Path) -> None:
    config = load_config(environ=_env(tmp_path / "models", mirror_without_yamnet))
    ensure_models(config)
    assert (tmp_path / "models" / "yolox_nano.onnx").is_file()
    assert not (tmp_path / "models" / "yamnet.onnx").exists()


@pytest.mark.e2e
def test_bark_detection_without_the_model_fails_start_up_with_what_to_do(mirror_without_yamnet: Path,
                                                                          tmp_path: Path) -> None:
    env = _env(tmp_path / "models", mirror_without_yamnet, DOGMON_AUDIO_SOURCE="alsa:default",
               DOGMON_DATA_DIR=str(tmp_path / "data"), DOGMON_WS_PORT="0")
    done = subprocess.run([sys.executable, "-m", "edge", "run"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "bark detection needs YAMNet" in done.stderr and "Bark detection" in done.stderr


@pytest.mark.unit
def test_own_converted_model_is_used_with_the_verified_class_map(mirror_without_yamnet: Path, mirror: Path,
                                                                 tmp_path: Path) -> None:
    own = tmp_path / "converted" / "my-yamnet.onnx"  # stands for the user's own tf2onnx output
    own.parent.mkdir()
    shutil.copy(mirror / "models" / "yamnet.onnx", own)
    config = load_config(environ=_env(tmp_path / "models", mirror_without_yamnet, DOGMON_AUDIO_MODEL=str(own)))
    classifier = load_classifier(config)
    assert classifier.class_names is not None and classifier.class_names[70] == "Bark"
    scores = classifier.scores(np.zeros(15600, np.float32))
    assert scores.shape == (521,) and scores[70] < 0.1  # silence is no bark

    config = load_config(environ=_env(tmp_path / "models", mirror_without_yamnet,
                                      DOGMON_AUDIO_MODEL=str(tmp_path / "nowhere.onnx")))
    with pytest.raises(StartupError, match="DOGMON_AUDIO_MODEL"):
        load_classifier(config)
