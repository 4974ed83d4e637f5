"""Bark detection logic without the model: windows, episode grouping, onsets, resampling, WAV decoding."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from edge.audio.bark import WINDOW_SAMPLES, WINDOW_SECONDS, BarkDetector, OnsetCounter, WindowSlicer
from edge.audio.resample import resample
from edge.audio.source import AudioSourceError, load_audio_16k, parse_audio_source, read_audio_file

pytestmark = pytest.mark.unit

QUIET = {"bark": 0.0, "howl": 0.0, "growling": 0.0, "whimper": 0.0}


def scores(bark: float = 0.0, howl: float = 0.0, growling: float = 0.0, whimper: float = 0.0) -> dict[str, float]:
    return {"bark": bark, "howl": howl, "growling": growling, "whimper": whimper}


def run(detector: BarkDetector, windows: list[dict[str, float]], hop: float = 0.5, flush: bool = True):
    out = []
    for i, s in enumerate(windows):
        out += detector.update(i * hop, s)
    if flush:
        out += detector.flush(len(windows) * hop + WINDOW_SECONDS)
    return out


def test_window_slicer_yields_full_windows_every_hop_whatever_the_chunk_size() -> None:
    signal = np.arange(16000 * 3, dtype=np.float32)
    for chunk in (1600, 1000, 7):
        slicer = WindowSlicer(hop_seconds=0.5)
        got = [(start, window.copy()) for i in range(0, len(signal), chunk)
               for start, window in slicer.push(signal[i:i + chunk])]
        # 3 s of audio: windows start at 0, 0.5 … 2.0 (the one at 2.5 would run past the end)
        assert [s for s, _ in got] == [0.0, 0.5, 1.0, 1.5, 2.0]
        for start, window in got:
            assert len(window) == WINDOW_SAMPLES
            assert window[0] == start * 16000 and window[-1] == start * 16000 + WINDOW_SAMPLES - 1
        assert len(slicer._buffer) <= WINDOW_SAMPLES + chunk  # bounded memory


def test_one_episode_for_barks_with_short_pauses_and_its_summary() -> None:
    detector = BarkDetector(threshold=0.3, gap_seconds=3.0, continuous_seconds=30)
    windows = [scores(0.9), scores(0.8), QUIET, QUIET, QUIET, scores(0.6), scores(0.1), QUIET]
    events = run(detector, windows)
    assert [e.kind for e in events] == ["bark"]
    data = events[0].data
    assert data["start"] == 0.0
    assert data["duration_s"] == pytest.approx(2.5 + WINDOW_SECONDS, abs=0.01)  # first window start → last end
    assert data["peak_score"] == 0.9 and data["windows"] == 3 and data["barks"] >= 1


def test_a_long_enough_gap_splits_episodes_and_the_event_comes_when_the_gap_is_over() -> None:
    detector = BarkDetector(threshold=0.3, gap_seconds=2.0)
    windows = [scores(0.9)] + [QUIET] * 6 + [scores(0.7)]
    events = run(detector, windows, flush=False)
    assert [e.kind for e in events] == ["bark"]
    # the first episode ends at 0.975 s; the window [2.0, 2.975] is the first to prove 2 s of quiet
    assert events[0].at == pytest.approx(2.0 + WINDOW_SECONDS)
    assert detector.active  # the second episode is still open
    assert [e.kind for e in detector.flush(10.0)] == ["bark"]


def test_scores_below_threshold_make_no_event() -> None:
    detector = BarkDetector(threshold=0.3)
    assert run(detector, [scores(0.29, 0.2, 0.26, 0.15)] * 20) == []  # the crying baby's worst window


def test_continuous_barking_is_sent_once_per_long_episode() -> None:
    detector = BarkDetector(threshold=0.3, gap_seconds=3.0, continuous_seconds=10.0)
    events = run(detector, [scores(0.8)] * 60)  # 30 s of barking
    kinds = [e.kind for e in events]
    assert kinds == ["continuous_barking", "bark"]
    assert events[0].at == pytest.approx(10.0, abs=0.5) and events[0].data["ongoing"] is True
    assert events[1].data["duration_s"] == pytest.approx(29.5 + WINDOW_SECONDS, abs=0.01)


def test_short_episodes_never_send_continuous_barking() -> None:
    detector = BarkDetector(threshold=0.3, gap_seconds=1.0, continuous_seconds=10.0)
    windows = ([scores(0.8)] * 8 + [QUIET] * 4) * 5  # five 4.5 s episodes
    assert [e.kind for e in run(detector, windows)] == ["bark"] * 5


@pytest.mark.parametrize(("winner", "event"), [("howl", "howl"), ("whimper", "whimper"), ("growling", "bark")])
def test_the_dominant_class_names_the_episode(winner: str, event: str) -> None:
    detector = BarkDetector(threshold=0.3, continuous_seconds=2.0)
    windows = [scores(bark=0.35, **{winner: 0.8})] * 10
    events = run(detector, windows)
    assert [e.kind for e in events] == ([event] if event != "bark" else ["continuous_barking", "bark"])
    assert events[-1].data["dominant"] == winner and events[-1].data["peak_score"] == 0.8


def test_onset_counter_counts_separate_bursts() -> None:
    rate = 16000
    t = np.arange(int(0.2 * rate)) / rate
    burst = (0.5 * np.sin(2 * np.pi * 600 * t)).astype(np.float32)
    silence = np.zeros(int(0.4 * rate), dtype=np.float32)
    signal = np.concatenate([silence] + [np.concatenate([burst, silence]) for _ in range(5)])
    counter = OnsetCounter()
    for i in range(0, len(signal), 1600):
        counter.push(signal[i:i + 1600])
    onsets = list(counter.onsets)
    assert len(onsets) == 5
    assert onsets[0] == pytest.approx(0.4, abs=0.03) and onsets[1] - onsets[0] == pytest.approx(0.6, abs=0.03)
    assert counter.count_between(0.0, 1.5) == 2


def test_resampler_keeps_speech_band_tones_and_removes_what_16k_cannot_hold() -> None:
    rate = 44100
    t = np.arange(rate) / rate
    low = np.sin(2 * np.pi * 1000 * t)
    high = np.sin(2 * np.pi * 12000 * t)  # above the 8 kHz Nyquist of 16 kHz: must not alias in
    out = resample((0.5 * low + 0.5 * high).astype(np.float32), rate)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out[2000:14000] * np.hanning(12000)))
    freqs = np.fft.rfftfreq(12000, 1 / 16000)
    peak = freqs[np.argmax(spectrum)]
    assert peak == pytest.approx(1000, abs=5)
    alias = spectrum[(freqs > 3500) & (freqs < 4500)].max()  # 12 kHz would fold to 4 kHz
    assert alias < spectrum.max() * 1e-3
    assert np.sqrt(np.mean(out[2000:14000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def _write_wav(path: Path, samples: np.ndarray, rate: int, width: int, channels: int) -> None:
    scale = {1: 127, 2: 32767, 3: 2**23 - 1}[width]
    ints = np.round(samples * scale).astype(np.int32)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 2:
        raw = ints.astype("<i2").tobytes()
    else:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.ravel())
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_wav_files_of_any_pcm_width_and_channel_count_decode_to_mono(tmp_path: Path, width: int) -> None:
    t = np.arange(800) / 8000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -left * 0 + 0.25], axis=1)  # right channel: constant 0.25
    path = tmp_path / f"tone{width}.wav"
    _write_wav(path, stereo.ravel(), 8000, width, 2)
    mono, rate = read_audio_file(path)
    assert rate == 8000 and len(mono) == 800
    tolerance = 2.0 / {1: 127, 2: 32767, 3: 2**23 - 1}[width]
    assert np.allclose(mono, (left + 0.25) / 2, atol=tolerance)
    assert len(load_audio_16k(path)) == 1600


def test_unreadable_audio_files_are_reported_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(AudioSourceError, match="not found"):
        read_audio_file(tmp_path / "missing.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioSourceError, match="broken.wav"):
        read_audio_file(broken)


def test_audio_source_setting() -> None:
    assert parse_audio_source("") is None
    alsa = parse_audio_source("alsa:hw:1,0")
    assert alsa is not None and alsa.kind == "alsa" and alsa.target == "plughw:1,0"
    assert parse_audio_source("alsa:default").target == "default"
    assert parse_audio_source("/data/bark.wav").kind == "file"
    with pytest.raises(ValueError):
        parse_audio_source("alsa:")
