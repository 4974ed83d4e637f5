"""The real YAMNet on the shared clips, at detector level: one bark episode per bark clip, nothing else.

Chunks of 0.1 s go through the same :class:`BarkAnalyzer` the device runs. The clips and their
reference scores are in ``../shared/media/audio/PROVENANCE.md``.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.audio.analyzer import BarkAnalyzer
from edge.audio.bark import AudioEvent
from edge.audio.source import CHUNK_SAMPLES, AlsaAudioSource, AudioSourceError, load_audio_16k
from edge.audio.yamnet import YamnetClassifier, read_class_map
from edge.tools.audiobench import benchmark_audio
from edge.vision.runtime import create_session

BARKS = ["bark_esc50_4-183992-A-0.wav", "bark_esc50_4-184575-A-0.wav", "bark_esc50_4-191687-A-0.wav",
         "bark_esc50_4-192236-A-0.wav", "bark_esc50_4-199261-A-0.wav", "bark_esc50_4-207124-A-0.wav"]
NEGATIVES = ["neg_speech_jfk_whisper.flac", "neg_door_knock_esc50_4-186518-A-30.wav",
             "neg_vacuum_cleaner_esc50_4-146200-A-36.wav", "neg_washing_machine_esc50_4-218199-A-35.wav",
             "neg_cat_esc50_4-149940-B-5.wav", "neg_rain_esc50_4-160999-A-10.wav",
             "neg_clock_tick_esc50_4-175945-A-38.wav", "neg_clock_alarm_esc50_4-169508-A-37.wav",
             "hardneg_crying_baby_esc50_4-185575-B-20.wav"]


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> YamnetClassifier:
    session = create_session(model_dir / "yamnet.onnx", threads=1)
    return YamnetClassifier(session, read_class_map(model_dir / "yamnet_class_map.csv"))


@pytest.fixture(scope="module")
def audio_dir(media: Path) -> Path:
    directory = media / "audio"
    missing = [n for n in BARKS + NEGATIVES if not (directory / n).is_file()]
    if missing:
        pytest.fail(f"test clips missing from {directory}: {missing}", pytrace=False)
    return directory


def analyse(classifier: YamnetClassifier, samples: np.ndarray, **settings: float) -> list[AudioEvent]:
    analyzer = BarkAnalyzer(classifier.scores, **settings)
    events: list[AudioEvent] = []
    for i in range(0, len(samples), CHUNK_SAMPLES):
        events += analyzer.push(samples[i:i + CHUNK_SAMPLES])
    return events + analyzer.flush()


@pytest.mark.unit
@pytest.mark.parametrize("name", BARKS)
def test_each_bark_clip_is_one_bark_episode(classifier: YamnetClassifier, audio_dir: Path, name: str) -> None:
    events = analyse(classifier, load_audio_16k(audio_dir / name))
    assert [e.kind for e in events] == ["bark"], [(e.kind, e.data) for e in events]
    data = events[0].data
    assert 0.5 <= data["peak_score"] <= 0.95  # PROVENANCE: barks score 0.50-0.94 on Bark
    assert data["dominant"] == "bark"
    assert 3.5 <= data["duration_s"] <= 5.0 and data["start"] <= 0.5  # the barking fills the 5 s clip
    assert 2 <= data["barks"] <= 15


@pytest.mark.unit
@pytest.mark.parametrize("name", NEGATIVES)
def test_each_negative_clip_makes_no_event(classifier: YamnetClassifier, audio_dir: Path, name: str) -> None:
    samples = load_audio_16k(audio_dir / name)
    analyzer = BarkAnalyzer(classifier.scores)
    events: list[AudioEvent] = []
    peak = dict.fromkeys(("bark", "howl", "growling", "whimper"), 0.0)
    for i in range(0, len(samples), CHUNK_SAMPLES):
        events += analyzer.push(samples[i:i + CHUNK_SAMPLES])
        peak = {k: max(v, analyzer.last_scores.get(k, 0.0)) for k, v in peak.items()}
    events += analyzer.flush()
    assert events == []
    assert max(peak.values()) < 0.3, peak  # PROVENANCE: negatives reach at most 0.20 on Bark


@pytest.mark.unit
def test_a_long_run_of_barking_sends_continuous_barking_once(classifier: YamnetClassifier, audio_dir: Path) -> None:
    barking = np.concatenate([load_audio_16k(audio_dir / n) for n in BARKS])  # 30 s
    events = analyse(classifier, barking, continuous_seconds=10.0)
    assert [e.kind for e in events] == ["continuous_barking", "bark"], [(e.kind, e.data) for e in events]
    continuous, episode = events
    assert 10.0 <= continuous.at <= 12.0  # sent while the barking goes on, not when it ends
    assert episode.data["duration_s"] >= 29.0 and episode.data["barks"] >= 30


@pytest.mark.e2e
def test_microphone_path_reads_through_real_arecord(classifier: YamnetClassifier, audio_dir: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """arecord captures from an ALSA ``file`` PCM fed with a bark clip (no sound card needed)."""
    if shutil.which("arecord") is None:
        pytest.fail("arecord not installed: apt-get install alsa-utils (see .ci/run)", pytrace=False)
    clip = load_audio_16k(audio_dir / BARKS[2])
    raw = tmp_path / "bark.raw"
    (np.clip(clip, -1.0, 32767 / 32768) * 32768).astype("<i2").tofile(raw)
    (tmp_path / ".asoundrc").write_text(
        f'pcm.barkfile {{\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "{raw}"\n format "raw"\n}}\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    source = AlsaAudioSource("barkfile")
    source.open()
    try:
        chunks = [source.read(threading.Event()) for _ in range(len(clip) // CHUNK_SAMPLES)]
    finally:
        source.close()
    captured = np.concatenate(chunks)
    assert np.allclose(captured, clip, atol=1 / 32768 + 1e-6)
    assert [e.kind for e in analyse(classifier, captured)] == ["bark"]


@pytest.mark.e2e
def test_missing_microphone_is_a_clear_error() -> None:
    source = AlsaAudioSource("plughw:9,0")  # no card 9
    with pytest.raises(AudioSourceError) as caught:
        source.open()
        source.read(threading.Event())
    message = str(caught.value)
    assert message.startswith("alsa:plughw:9,0: ")
    assert "audio open error" in message or "install alsa-utils" in message
    assert source.proc is None or source.proc.poll() is not None  # no arecord left running


@pytest.mark.unit
def test_benchmark_reports_cost_and_latency(model_dir: Path, audio_dir: Path) -> None:
    result = benchmark_audio(model_dir / "yamnet.onnx", model_dir / "yamnet_class_map.csv",
                             [audio_dir / BARKS[2], audio_dir / NEGATIVES[1]], gap=3.0)
    assert [e[0] for e in result["clips"][0]["events"]] == ["bark"] and result["clips"][1]["events"] == []
    assert 0 < result["analysis_cpu_ms_per_audio_s"] < 200  # a small fraction of real time
    assert result["latency_onset_to_active_s"]["max"] < 1.5  # the live state follows the first bark quickly
    # the episode event waits for the 5 s of barking to end plus the 3 s gap that proves it ended
    assert 6.5 < result["latency_onset_to_bark_event_s"]["median"] < 9.5
