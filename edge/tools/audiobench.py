"""``python -m edge.tools.audiobench``: what bark detection costs and how late it speaks, on the shared clips.

Measures, with the device's own :class:`~edge.audio.analyzer.BarkAnalyzer` and YAMNet session settings:
per-clip results (events, peak scores, windows), CPU milliseconds per second of audio for the analysis
(level, onsets, YAMNet every hop, episode logic) and for decoding + resampling a 44.1 kHz file, the
YAMNet call time, and the latency from the first bark onset to the ``bark`` state turning active and
to the ``bark`` event, for each bark clip placed after 3 s of quiet and followed by 8 s of quiet.
Latency counts stream time (a live microphone delivers samples in real time) plus the measured compute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio.analyzer import BarkAnalyzer
from edge.audio.bark import SAMPLE_RATE
from edge.audio.source import CHUNK_SAMPLES, load_audio_16k
from edge.audio.yamnet import YamnetClassifier, read_class_map
from edge.vision.runtime import create_session


def _run(analyzer: BarkAnalyzer, samples: np.ndarray) -> tuple[list[tuple[float, str, dict[str, Any]]], float]:
    """Feed chunks; return (events with the stream time their chunk ended, CPU seconds spent)."""
    out = []
    cpu = time.process_time()
    for i in range(0, len(samples), CHUNK_SAMPLES):
        for event in analyzer.push(samples[i:i + CHUNK_SAMPLES]):
            out.append((min(i + CHUNK_SAMPLES, len(samples)) / SAMPLE_RATE, event.kind, event.data))
    for event in analyzer.flush():
        out.append((len(samples) / SAMPLE_RATE, event.kind, event.data))
    return out, time.process_time() - cpu


def benchmark_audio(model: Path, class_map: Path, clips: list[Path], threads: int = 1, hop: float = 0.5,
                    gap: float = 3.0, threshold: float = 0.3) -> dict[str, Any]:
    classifier = YamnetClassifier(create_session(model, threads), read_class_map(class_map))
    for _ in range(5):  # warm-up
        classifier.scores(np.zeros(15600, np.float32))
    classifier.call_ms.clear()
    settings = {"threshold": threshold, "hop_seconds": hop, "gap_seconds": gap}
    per_clip, analysis_cpu, decode_cpu, audio_seconds = [], 0.0, 0.0, 0.0
    latencies_active, latencies_event = [], []
    for clip in clips:
        cpu = time.process_time()
        samples = load_audio_16k(clip)
        decode_cpu += time.process_time() - cpu
        seconds = len(samples) / SAMPLE_RATE
        audio_seconds += seconds
        analyzer = BarkAnalyzer(classifier.scores, **settings)
        events, spent = _run(analyzer, samples)
        analysis_cpu += spent
        per_clip.append({"clip": clip.name, "seconds": round(seconds, 2),
                         "events": [(kind, data["duration_s"], data["peak_score"], data["barks"])
                                    for _, kind, data in events],
                         "cpu_ms_per_audio_s": round(spent * 1000 / seconds, 2)})
        if clip.name.startswith("bark"):
            lead, tail = np.zeros(3 * SAMPLE_RATE, np.float32), np.zeros(8 * SAMPLE_RATE, np.float32)
            analyzer = BarkAnalyzer(classifier.scores, **settings)
            first_active = None
            stream = np.concatenate([lead, samples, tail])
            timed = []
            for i in range(0, len(stream), CHUNK_SAMPLES):
                started = time.perf_counter()
                got = analyzer.push(stream[i:i + CHUNK_SAMPLES])
                ready = (i + CHUNK_SAMPLES) / SAMPLE_RATE + (time.perf_counter() - started)
                if first_active is None and analyzer.detector.active:
                    first_active = ready
                timed += [(ready, e.kind) for e in got]
            onset = next((t for t in analyzer.onsets.onsets if t >= 3.0), 3.0)
            event_at = next((t for t, kind in timed if kind == "bark"), None)
            if first_active is not None:
                latencies_active.append(first_active - onset)
            if event_at is not None:
                latencies_event.append(event_at - onset)
    return {
        "settings": {**settings, "threads": threads},
        "clips": per_clip,
        "analysis_cpu_ms_per_audio_s": round(analysis_cpu * 1000 / audio_seconds, 2),
        "decode_resample_cpu_ms_per_audio_s": round(decode_cpu * 1000 / audio_seconds, 2),
        "yamnet_call_ms_p50": classifier.median_ms(),
        "windows_per_audio_s": round(1 / hop, 2),
        "latency_onset_to_active_s": _spread(latencies_active),
        "latency_onset_to_bark_event_s": _spread(latencies_event),
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="folder with yamnet.onnx and yamnet_class_map.csv (default: DOGMON_MODEL_DIR, fetched)")
    parser.add_argument("--audio-dir", type=Path, default=None,
                        help="clips to run (default: media/audio in DOGMON_MIRROR)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hop", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="print the JSON result only")
    args = parser.parse_args(argv)

    from edge.config import load_config
    from edge.core.models import fetch_all, find_manifest

    config = load_config()
    model_dir = args.model_dir or config.model_dir
    if args.model_dir is None:
        manifest = find_manifest("audio_classifier")
        if manifest is not None:
            fetch_all(model_dir, config.mirror, [manifest])
    audio_dir = args.audio_dir or (config.mirror / "media" / "audio" if config.mirror else None)
    if audio_dir is None or not audio_dir.is_dir():
        parser.error("no clips: pass --audio-dir or set DOGMON_MIRROR to a folder holding media/audio")
    clips = sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in {".wav", ".flac"})
    result = benchmark_audio(model_dir / "yamnet.onnx", model_dir / "yamnet_class_map.csv", clips, args.threads,
                             args.hop or config.bark_hop_seconds, config.bark_gap_seconds, config.bark_threshold)
    if args.json:
        print(json.dumps(result))
        return 0
    for row in result["clips"]:
        print(f"{row['clip']:<48} {row['seconds']:>5.1f}s  {row['cpu_ms_per_audio_s']:>6.2f} ms/s  {row['events']}")
    for key, value in result.items():
        if key != "clips":
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
