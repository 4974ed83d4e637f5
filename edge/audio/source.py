"""Audio sources: a microphone through ALSA's ``arecord``, or a WAV/FLAC file played in real time.

Owns parsing ``DOGMON_AUDIO_SOURCE``, decoding files to 16 kHz mono float32, and reading chunks of
0.1 s. Every source yields float32 samples in [-1, 1] at 16 kHz, which is what YAMNet takes.

* ``alsa:<device>`` runs ``arecord -f S16_LE -r 16000 -c 1 -t raw`` and reads its stdout. ``hw:X,Y`` is
  opened as ``plughw:X,Y`` so ALSA's plug layer converts rate, format and channels when the microphone
  only does 44.1/48 kHz or stereo. arecord comes with alsa-utils on Raspberry Pi OS, so no Python
  audio package (and no PortAudio) is needed on the device.
* Anything else is a file path. WAV (PCM 8/16/24/32-bit) is read with the stdlib ``wave`` module;
  other formats (FLAC …) need the optional ``soundfile`` package (``pip install dogmonitor[audio-files]``).
  Files are resampled once at load with :func:`edge.audio.resample.resample` and then paced at real
  time, looping or not.

Failures raise :class:`AudioSourceError` with a one-line reason; the end of a non-looping file raises
:class:`AudioEnded`. Sources are used from the audio thread only.
"""

from __future__ import annotations

import dataclasses
import os
import select
import shutil
import subprocess
import threading
import time
import wave
from collections import deque
from pathlib import Path

import numpy as np

from edge.audio.resample import TARGET_RATE, resample

CHUNK_SAMPLES = 1600  # 0.1 s


class AudioSourceError(RuntimeError):
    """The source cannot be opened or stopped delivering; ``str()`` is the reason shown to users."""


class AudioEnded(Exception):
    """A non-looping file source played to its end."""


@dataclasses.dataclass(frozen=True)
class AudioSourceSpec:
    kind: str      # "alsa" or "file"
    target: str    # ALSA device name or file path
    display: str


def parse_audio_source(value: str) -> AudioSourceSpec | None:
    """``""`` → None (audio off); ``alsa:hw:1,0`` / ``alsa:default`` → ALSA; anything else → file."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("alsa:"):
        device = value[5:].strip()
        if not device:
            raise ValueError("alsa:<device>, e.g. alsa:hw:1,0 or alsa:default")
        if device.startswith("hw:"):
            device = "plug" + device  # let ALSA convert to 16 kHz mono S16 when the hardware cannot
        return AudioSourceSpec("alsa", device, f"alsa:{device}")
    return AudioSourceSpec("file", value, value)


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / float(1 << 23)
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    raise AudioSourceError(f"unsupported WAV sample width {width * 8} bits")


def read_audio_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 (mean of channels) and its sample rate."""
    if not path.is_file():
        raise AudioSourceError(f"audio file not found: {path}")
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as wav:
                channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
                raw = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError) as exc:  # e.g. float WAV: wave reads PCM only
            raise AudioSourceError(f"{path}: not a PCM WAV file ({exc})") from exc
        samples = _pcm_to_float(raw, width).reshape(-1, channels).mean(axis=1)
        return samples.astype(np.float32), rate
    try:
        import soundfile  # optional: only for FLAC/OGG and other non-WAV files
    except ImportError:
        raise AudioSourceError(
            f"{path}: only WAV is read without extra packages; install soundfile "
            "(pip install dogmonitor[audio-files]) for FLAC and other formats") from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own error types
        raise AudioSourceError(f"{path}: cannot decode ({exc})") from exc
    return data.mean(axis=1).astype(np.float32), int(rate)


def load_audio_16k(path: Path) -> np.ndarray:
    """A file as 16 kHz mono float32 in [-1, 1]."""
    samples, rate = read_audio_file(path)
    if rate != TARGET_RATE:
        samples = resample(samples, rate)
    return np.clip(samples, -1.0, 1.0)


class FileAudioSource:
    """Plays a decoded file in 0.1 s chunks at real time, like a microphone would deliver it."""

    def __init__(self, path: Path, loop: bool = True, display: str | None = None) -> None:
        self.path, self.loop = path, loop
        self.display = display or str(path)
        self.samples = np.zeros(0, dtype=np.float32)
        self._pos = 0
        self._due = 0.0

    def open(self) -> None:
        self.samples = load_audio_16k(self.path)
        if len(self.samples) == 0:
            raise AudioSourceError(f"{self.path}: no audio samples")
        self._pos = 0
        self._due = time.monotonic()

    def read(self, stop: threading.Event) -> np.ndarray | None:
        """The next chunk when its time has come; None when ``stop`` was set while waiting."""
        if self._pos >= len(self.samples):
            if not self.loop:
                raise AudioEnded()
            self._pos = 0
        chunk = self.samples[self._pos:self._pos + CHUNK_SAMPLES]
        self._pos += len(chunk)
        self._due += len(chunk) / TARGET_RATE
        # Deliver a chunk once it "has been recorded"; never fall more than a second behind.
        self._due = max(self._due, time.monotonic() - 1.0)
        if stop.wait(max(0.0, self._due - time.monotonic())):
            return None
        return chunk

    def close(self) -> None:
        pass


class AlsaAudioSource:
    """Reads 16 kHz mono S16_LE from an ``arecord`` child process."""

    def __init__(self, device: str, stall_seconds: float = 5.0, display: str | None = None,
                 command: str = "arecord") -> None:
        self.device, self.stall_seconds = device, stall_seconds
        self.display = display or f"alsa:{device}"
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self._stderr_lines: deque[str] = deque(maxlen=20)
        self._stderr_reader: threading.Thread | None = None

    def open(self) -> None:
        exe = shutil.which(self.command)
        if exe is None:
            raise AudioSourceError(f"{self.command} not found: install alsa-utils (apt install alsa-utils)")
        self.proc = subprocess.Popen(
            [exe, "-q", "-D", self.device, "-f", "S16_LE", "-r", str(TARGET_RATE), "-c", "1", "-t", "raw"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._pending = b""
        # Drain stderr (overrun warnings) so a full pipe can never block arecord; keep the last lines for reasons.
        self._stderr_lines = deque(maxlen=20)
        self._stderr_reader = threading.Thread(target=self._drain_stderr, args=(self.proc,), daemon=True,
                                               name="arecord-stderr")
        self._stderr_reader.start()

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._stderr_lines.append(text)

    def _failure(self, what: str) -> AudioSourceError:
        self.close()
        detail = self._stderr_lines[-1] if self._stderr_lines else ""
        return AudioSourceError(f"{self.display}: {what}" + (f" ({detail})" if detail else ""))

    def read(self, stop: threading.Event) -> np.ndarray | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        need = CHUNK_SAMPLES * 2
        waited = 0.0
        while len(self._pending) < need:
            if stop.is_set():
                return None
            ready, _, _ = select.select([fd], [], [], 0.25)
            if not ready:
                waited += 0.25
                if waited >= self.stall_seconds:
                    raise self._failure(f"no audio for {self.stall_seconds:.0f} s")
                continue
            data = os.read(fd, need - len(self._pending))
            if not data:
                raise self._failure("capture stopped")
            self._pending += data
        chunk, self._pending = self._pending[:need], self._pending[need:]
        return np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0

    def _stop_process(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=1.0)

    def close(self) -> None:
        self._stop_process()
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=1.0)  # the child is gone, so its stderr ends
        if self.proc is not None:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            if self.proc.stderr is not None and not (self._stderr_reader and self._stderr_reader.is_alive()):
                self.proc.stderr.close()


def open_source(spec: AudioSourceSpec, loop: bool) -> FileAudioSource | AlsaAudioSource:
    if spec.kind == "alsa":
        return AlsaAudioSource(spec.target, display=spec.display)
    return FileAudioSource(Path(spec.target).expanduser(), loop=loop, display=spec.display)
