"""Clip encoders: H.264 (+ AAC sound) MP4 through PyAV, OpenCV ``mp4v`` only as the last resort.

Owns which encoder a clip is written with and how. No threads of its own: every call comes from
the clip writer thread.

- :func:`choose_encoders` turns ``DOGMON_CLIP_ENCODER`` into an ordered chain and proves each
  candidate with a real test encode (a few frames into memory): the Pi 4's ``h264_v4l2m2m`` is in
  every FFmpeg build but only works where the V4L2 device exists, so it is never trusted blindly.
- :class:`PyAvClip`: one MP4 file. Video at a fixed rate (``pts`` = frame slot, time base 1/fps),
  yuv420p, H.264 Main/Constrained Baseline (what every tablet decodes), ``movflags=+faststart``
  (the moov atom is moved to the front on close, so a browser starts playing before the whole file
  has arrived). Sound, when given, is AAC-LC mono; audio ``pts`` are in samples from the clip's
  first video frame, so both tracks share one timeline.
- :class:`OpenCvClip`: OpenCV's ``VideoWriter`` with ``mp4v`` (MPEG-4 Part 2, no sound), used only
  when PyAV cannot encode H.264 here. Chrome and Firefox do not play it; the ``codec`` field says so.

x264 is GPL: see docs/media.md (Licences) for what that means for a redistributed device image.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

HARDWARE = "h264_v4l2m2m"
SOFTWARE = "libx264"
FALLBACK = "mp4v"
CHOICES = ("auto", HARDWARE, SOFTWARE, FALLBACK)
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "crf": "26", "profile": "main"}
HARDWARE_BITRATE = 1_500_000  # bits/s at 640×480; scaled by pixel count (v4l2m2m has no crf)
AUDIO_BITRATE = 48_000
KEYFRAME_SECONDS = 2.0        # a keyframe every 2 s: seeking in a clip stays quick


class EncoderError(OSError):
    """An encoder could not open or failed while encoding; ``str()`` names the encoder."""

    def __init__(self, detail: str, cause: BaseException | None = None) -> None:
        code = cause.errno if isinstance(cause, OSError) and cause.errno else errno.EIO
        super().__init__(code, detail)


@dataclasses.dataclass(frozen=True, slots=True)
class EncoderChoice:
    name: str          # "h264_v4l2m2m", "libx264" or "mp4v"
    codec: str         # what clip_saved reports: "h264" or "mp4v"
    audio: bool        # can carry sound


class ClipWriter(Protocol):
    encoder: EncoderChoice

    def add_video(self, image: np.ndarray) -> None: ...

    def add_audio(self, samples: np.ndarray, start_sample: int) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _av() -> Any:  # the av module (PyAV ships no type information)
    import av  # imported lazily: a device without PyAV still records mp4v clips

    return av


class PyAvClip:
    """One H.264 MP4 written through PyAV; optional mono AAC track."""

    def __init__(self, path: Path, encoder: EncoderChoice, size: tuple[int, int], fps: float,
                 audio_rate: int | None = None) -> None:
        av = _av()
        self.encoder = encoder
        self.fps = fps
        self.audio_written = 0
        try:
            self.container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        except Exception as exc:
            raise EncoderError(f"{encoder.name}: cannot create the MP4 ({exc})", exc) from exc
        try:
            rate = Fraction(fps).limit_denominator(1000)
            options = dict(X264_OPTIONS) if encoder.name == SOFTWARE else {}
            self.video = self.container.add_stream(encoder.name, rate=rate, options=options)
            self.video.width, self.video.height = size
            self.video.pix_fmt = "yuv420p"
            self.video.codec_context.time_base = 1 / rate
            self.video.codec_context.gop_size = max(1, round(fps * KEYFRAME_SECONDS))
            self.video.codec_context.thread_count = 1  # one core, like the clips thread: inference keeps the rest
            if encoder.name != SOFTWARE:
                self.video.codec_context.bit_rate = int(HARDWARE_BITRATE * size[0] * size[1] / (640 * 480))
            self.audio = None
            if audio_rate is not None and encoder.audio:
                self.audio = self.container.add_stream("aac", rate=audio_rate)
                self.audio.codec_context.layout = "mono"
                self.audio.codec_context.bit_rate = AUDIO_BITRATE
                self.audio_rate = audio_rate
            self.video.codec_context.open()  # an encoder that cannot run here fails now, not at the first frame
        except Exception as exc:
            self._discard()
            raise EncoderError(f"{encoder.name}: the encoder did not start ({exc})", exc) from exc
        self.frames = 0

    def add_video(self, image: np.ndarray) -> None:
        av = _av()
        try:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = self.frames
            for packet in self.video.encode(frame):
                self.container.mux(packet)
        except Exception as exc:
            raise EncoderError(f"{self.encoder.name}: encoding frame {self.frames} failed ({exc})", exc) from exc
        self.frames += 1

    def add_audio(self, samples: np.ndarray, start_sample: int) -> None:
        """Samples (float32 mono) that begin ``start_sample`` samples after the first video frame."""
        if self.audio is None:
            return
        av = _av()
        if start_sample < self.audio_written:  # overlap with what is written: keep only the new part
            samples = samples[self.audio_written - start_sample:]
            start_sample = self.audio_written
        if start_sample > self.audio_written:  # a gap (a dropped chunk): silence keeps the tracks in sync
            samples = np.concatenate([np.zeros(start_sample - self.audio_written, np.float32), samples])
            start_sample = self.audio_written
        if len(samples) == 0:
            return
        try:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32).reshape(1, -1),
                                               format="flt", layout="mono")
            frame.sample_rate = self.audio_rate
            frame.pts = start_sample
            frame.time_base = Fraction(1, self.audio_rate)
            for packet in self.audio.encode(frame):
                self.container.mux(packet)
        except Exception as exc:
            raise EncoderError(f"aac: encoding sound failed ({exc})", exc) from exc
        self.audio_written = start_sample + len(samples)

    def close(self) -> None:
        """Flush both encoders and write the index (faststart moves it to the front)."""
        try:
            if self.audio is not None:
                wanted = round(self.frames / self.fps * self.audio_rate)
                if wanted > self.audio_written:  # the last chunk had not arrived yet: pad to the picture's end
                    self.add_audio(np.zeros(wanted - self.audio_written, np.float32), self.audio_written)
                for packet in self.audio.encode(None):
                    self.container.mux(packet)
            for packet in self.video.encode(None):
                self.container.mux(packet)
            self.container.close()
        except Exception as exc:
            self._discard()
            raise EncoderError(f"{self.encoder.name}: finishing the clip failed ({exc})", exc) from exc

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing after a failure may fail again; the caller deletes the file
            log.debug("closing a failed clip container", exc_info=True)


class OpenCvClip:
    """MPEG-4 Part 2 through OpenCV, no sound: only when PyAV has no H.264 encoder."""

    def __init__(self, path: Path, encoder: EncoderChoice, size: tuple[int, int], fps: float,
                 audio_rate: int | None = None) -> None:
        import cv2

        self.encoder = encoder
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            self.writer.release()
            raise EncoderError("mp4v: OpenCV could not open an MP4 writer")

    def add_video(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def add_audio(self, samples: np.ndarray, start_sample: int) -> None:
        pass

    def close(self) -> None:
        self.writer.release()

    def abort(self) -> None:
        self.writer.release()


CHOICE_OF = {HARDWARE: EncoderChoice(HARDWARE, "h264", True), SOFTWARE: EncoderChoice(SOFTWARE, "h264", True),
             FALLBACK: EncoderChoice(FALLBACK, "mp4v", False)}


def open_clip(path: Path, encoder: EncoderChoice, size: tuple[int, int], fps: float,
              audio_rate: int | None) -> ClipWriter:
    if encoder.name == FALLBACK:
        return OpenCvClip(path, encoder, size, fps)
    return PyAvClip(path, encoder, size, fps, audio_rate)


def probe(encoder: EncoderChoice, size: tuple[int, int] = (320, 240), frames: int = 4) -> str | None:
    """A real test encode of a few frames to a temporary MP4; None when it works, else why not."""
    import tempfile

    if encoder.name != FALLBACK:
        try:
            _av()
        except ImportError as exc:
            return f"PyAV is not installed ({exc})"
    with tempfile.TemporaryDirectory(prefix="dogmon-probe-") as tmp:
        path = Path(tmp) / "probe.mp4"
        try:
            clip = open_clip(path, encoder, size, 10.0, None)
            for i in range(frames):
                clip.add_video(np.full((size[1], size[0], 3), 40 * i, np.uint8))
            clip.close()
        except EncoderError as exc:
            return str(exc)
        data = path.read_bytes() if path.is_file() else b""
    if encoder.name == FALLBACK:
        return None if data else "mp4v: the test encode wrote nothing"
    return None if len(data) > 1000 and b"avc1" in data[:4096] else f"{encoder.name}: the test encode made no H.264"


def choose_encoders(preference: str) -> tuple[list[EncoderChoice], dict[str, str]]:
    """The working encoders in the order clips should try them, and why the others were left out.

    ``auto``: hardware H.264, then libx264, then mp4v. A named encoder goes first, the rest of the
    auto order follows as fallback (it is probed like the others: a configured encoder that does
    not work here is reported, not used).
    """
    order = [HARDWARE, SOFTWARE, FALLBACK]
    if preference != "auto":
        order.remove(preference)
        order.insert(0, preference)
    working, refused = [], {}
    for name in order:
        reason = probe(CHOICE_OF[name])
        if reason is None:
            working.append(CHOICE_OF[name])
        else:
            refused[name] = reason
    return working, refused
