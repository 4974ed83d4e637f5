"""The bark-detection feature: an audio thread from microphone or file to bark events on the bus.

Owns the audio thread and its lifecycle. The thread reads 0.1 s chunks from the source, follows the
loudness (telemetry level, bark onsets), runs YAMNet on each 0.975 s window every hop, and hands the
detector's decisions to the loop with ``Bus.post``; the episode state goes to ``Bus.update_state``
(``bark`` key, retained on MQTT). It shares nothing with the video pipeline but the bus, so video never
waits on audio. A missing, busy or failing source is reported once per transition (``audio_offline`` /
``audio_online``) and retried with capped exponential backoff, like the camera.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.audio.analyzer import BarkAnalyzer
from edge.audio.bark import SAMPLE_RATE, AudioEvent
from edge.audio.source import (
    AlsaAudioSource,
    AudioEnded,
    AudioSourceError,
    AudioSourceSpec,
    FileAudioSource,
    open_source,
    parse_audio_source,
)
from edge.audio.yamnet import YamnetClassifier, read_class_map
from edge.config import Config
from edge.core.feature import Feature, StartupError
from edge.protocol import messages
from edge.protocol.messages import EventType
from edge.util import clock
from edge.util.retry import RECONNECT_INITIAL, RECONNECT_MAX, Backoff

if TYPE_CHECKING:
    from edge.core.feature import Host

log = logging.getLogger(__name__)

EVENT_TYPES = {"bark": EventType.BARK, "howl": EventType.HOWL, "whimper": EventType.WHIMPER,
               "continuous_barking": EventType.CONTINUOUS_BARKING}


def load_classifier(config: Config) -> YamnetClassifier:
    """The YAMNet session and class map: the manifest's verified files, or DOGMON_AUDIO_MODEL's own."""
    from edge.core.models import FetchError, fetch_file, find_manifest
    from edge.vision.runtime import create_session

    manifest = find_manifest("audio_classifier")
    if manifest is None:
        raise StartupError("no audio_classifier manifest in models/ (models/yamnet.json)")
    files = {f.name: f for f in manifest.files}
    needed = ["yamnet_class_map.csv"] + ([] if config.audio_model else ["yamnet.onnx"])
    try:
        for name in needed:
            fetch_file(files[name], config.model_dir, config.mirror)
    except FetchError as exc:
        raise StartupError(f"bark detection needs YAMNet: {exc}. See docs/behaviour.md, 'Bark detection' "
                           "(installing the YAMNet model without the mirror), to install it, "
                           "or unset DOGMON_AUDIO_SOURCE") from exc
    model = config.audio_model or config.model_dir / "yamnet.onnx"
    if not Path(model).is_file():
        raise StartupError(f"DOGMON_AUDIO_MODEL: {model} does not exist")
    # One thread: YAMNet needs ~1-2 ms per window, and the camera's detector should keep the other core.
    session = create_session(Path(model), 1, config.graph_optimization, config.execution_providers)
    try:
        return YamnetClassifier(session, read_class_map(config.model_dir / "yamnet_class_map.csv"))
    except ValueError as exc:
        raise StartupError(f"audio model {model}: {exc}") from exc


def _no_model(window: np.ndarray) -> np.ndarray:
    raise RuntimeError("audio feature used before attach() loaded the model")


class AudioThread(threading.Thread):
    """Source → windows → YAMNet → detector → bus; retries the source with capped backoff."""

    def __init__(self, feature: AudioFeature, source: FileAudioSource | AlsaAudioSource,
                 backoff_initial: float = RECONNECT_INITIAL, backoff_max: float = RECONNECT_MAX) -> None:
        super().__init__(name="audio", daemon=True)
        self.feature, self.source = feature, source
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        feature = self.feature
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        while not self.stop_event.is_set():
            try:
                self.source.open()
                delivered = self._read_loop()
                reason = None
            except AudioEnded:
                feature.finish_stream()
                feature.set_online(False, reason="end of file")
                break
            except AudioSourceError as exc:
                delivered, reason = feature.chunks_since_open > 0, str(exc)
            except Exception as exc:  # a model or logic error must not end audio for good
                log.exception("audio processing failed")
                delivered, reason = False, f"audio processing failed: {exc}"
            finally:
                self.source.close()
            feature.finish_stream()  # an episode cut short by a failure or shutdown is still reported
            if self.stop_event.is_set():
                break
            if delivered:
                backoff.reset()
            feature.reconnects += 1
            feature.set_online(False, reason=reason or "source stopped", retry_in=round(backoff.delay, 2))
            log.warning("audio %s: %s; retrying in %.1fs", self.source.display, reason, backoff.delay)
            self.stop_event.wait(backoff.failed())

    def _read_loop(self) -> bool:
        self.feature.begin_stream()
        while not self.stop_event.is_set():
            chunk = self.source.read(self.stop_event)
            if chunk is None:
                break
            self.feature.process_chunk(chunk)
        return self.feature.chunks_since_open > 0


class AudioFeature(Feature):
    """Bark/howl/whimper events and the ``bark`` state from ``DOGMON_AUDIO_SOURCE``."""

    name = "audio"

    def __init__(self, config: Config, spec: AudioSourceSpec) -> None:
        self.config, self.spec = config, spec
        self.host: Host | None = None
        self.classifier: YamnetClassifier | None = None
        self.thread: AudioThread | None = None
        self.online: bool | None = None  # None until the first open attempt: a first failure is reported
        self.reconnects = 0
        self.chunks_since_open = 0
        self.events_sent = 0
        self._stream_wall0 = 0.0
        self._last_episode: dict[str, Any] | None = None
        self.sample_rate = SAMPLE_RATE
        # Called on the audio thread with (samples, monotonic time of the first sample, rate) for every
        # chunk: the media feature keeps them as the clips' sound. Listeners must only queue, never block.
        self.chunk_listeners: list[Callable[[np.ndarray, float, int], None]] = []
        self._new_stream_state()

    @classmethod
    def from_config(cls, config: Config) -> AudioFeature | None:
        spec = parse_audio_source(config.audio_source)
        return cls(config, spec) if spec is not None else None

    def _new_stream_state(self) -> None:
        config = self.config
        scorer = self.classifier.scores if self.classifier is not None else _no_model
        self.analyzer = BarkAnalyzer(scorer, config.bark_threshold, config.bark_hop_seconds,
                                     config.bark_gap_seconds, config.bark_continuous_seconds)

    # --- Feature surface (loop thread) ---
    def attach(self, host: Host) -> None:
        self.host = host
        self.classifier = load_classifier(self.config)
        host.update_state(bark={"active": False, "since": None, "last": None}, audio_online=None)

    async def start(self) -> None:
        self.thread = AudioThread(self, open_source(self.spec, self.config.audio_loop))
        self.thread.start()

    async def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
            # The thread wakes within 0.25 s (select/wait timeouts); wait off the loop, and not for long.
            await asyncio.to_thread(self.thread.join, 1.0)

    def connection_info(self) -> dict[str, Any]:
        return {"audio": {"source": self.spec.display, "online": self.online}}

    def problems(self) -> list[str]:
        return ["microphone offline"] if self.online is False else []

    def telemetry(self) -> dict[str, Any]:
        assert self.classifier is not None
        return {
            "online": self.online,
            "source": self.spec.display,
            "level_dbfs": self.analyzer.level_dbfs,
            "scores": dict(self.analyzer.last_scores),
            "windows": self.analyzer.windows,
            "episode_active": self.analyzer.detector.active,
            "episodes": self.analyzer.detector.episodes,
            "events": self.events_sent,
            "inference_ms_p50": self.classifier.median_ms(),
            "reconnects": self.reconnects,
        }

    # --- audio thread ---
    def _stream_to_wall(self, t: float) -> float:
        return round(self._stream_wall0 + clock.rate() * t, 3)

    def begin_stream(self) -> None:
        self.chunks_since_open = 0
        self._new_stream_state()

    def process_chunk(self, chunk: np.ndarray) -> None:
        if self.chunks_since_open == 0:
            self.set_online(True)
            # Stream time 0 is when the first sample was captured: the chunk just read ends "now".
            self._stream_wall0 = clock.now() - clock.rate() * len(chunk) / SAMPLE_RATE
        self.chunks_since_open += 1
        captured = clock.monotonic() - clock.rate() * len(chunk) / SAMPLE_RATE
        for listener in self.chunk_listeners:
            listener(chunk, captured, SAMPLE_RATE)
        analyzer = self.analyzer
        was_active = analyzer.detector.active
        events = analyzer.push(chunk)
        for event in events:
            self._emit(event)
        episode = analyzer.detector.episode
        if episode is not None and (not was_active or any(e.kind != "continuous_barking" for e in events)):
            self._set_bark_state(active=True, since=self._stream_to_wall(episode.start))

    def finish_stream(self) -> None:
        """The stream ended or broke: close an open episode so it is still reported."""
        for event in self.analyzer.flush():
            self._emit(event)

    def _emit(self, event: AudioEvent) -> None:
        assert self.host is not None
        data = {**event.data, "start": self._stream_to_wall(event.data["start"]), "source": self.spec.display}
        self.host.post(messages.event(EVENT_TYPES[event.kind], data))
        self.events_sent += 1
        log.info("audio: %s %s", event.kind, {k: v for k, v in data.items() if k != "peaks"})
        if event.kind != "continuous_barking":
            last = {"type": event.kind, **{k: data[k] for k in ("start", "duration_s", "peak_score", "barks")}}
            self._set_bark_state(active=False, since=None, last=last)

    def _set_bark_state(self, active: bool, since: float | None, last: dict[str, Any] | None = None) -> None:
        if last is not None:
            self._last_episode = last
        self._update_state(bark={"active": active, "since": since, "last": self._last_episode})

    def set_online(self, online: bool, **info: Any) -> None:
        """Report a transition once (the first failure too, so a missing microphone is visible)."""
        if online == self.online:
            return
        self.online = online
        assert self.host is not None
        kind = EventType.AUDIO_ONLINE if online else EventType.AUDIO_OFFLINE
        self.host.post(messages.event(kind, {"source": self.spec.display, **info}))
        self._update_state(audio_online=online)

    def _update_state(self, **values: Any) -> None:
        """Hand state keys to the loop thread."""
        assert self.host is not None
        self.host.post_state(**values)


def audio_features(config: Config) -> list[Feature]:
    """What ``build_features`` adds: the audio feature when ``DOGMON_AUDIO_SOURCE`` is set."""
    feature = AudioFeature.from_config(config)
    return [feature] if feature is not None else []
