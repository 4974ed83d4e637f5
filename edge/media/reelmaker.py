"""Cutting the highlight reel and assembling the time-lapse with PyAV: streamed, one packet or frame at a time.

Runs on the low-priority builder thread of :mod:`edge.media.daily`; no state of its own.

- :func:`write_reel`: the planned cuts (:func:`edge.media.reel.plan_cuts`) joined into one MP4. A cut whose
  clip has the reel's format (same codec, size and codec headers, no B-frames: every clip this device's encoder
  wrote) is **copied packet by packet** from its keyframe (no decoding, no encoding; timestamps shifted onto
  the reel's timeline). A cut from a clip of another format (another size or encoder) is re-encoded alone into
  a short temporary MP4 with the device's clip encoder at the reel's size; when that one has the reel's headers
  it is copied like the rest, otherwise (an encoder whose headers differ between runs) the whole reel is
  re-encoded. Memory: one packet, or one decoded frame, at a time.
- :func:`write_timelapse`: the day's small JPEGs, each decoded, stamped with its time (and the day's heat map
  blended in, if given) and encoded once.
- :func:`keyframe_times`: where a clip's keyframes are (packet headers only; nothing is decoded).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.media.encoder import EncoderChoice, _av, open_clip
from edge.media.reel import ClipSpan, Cut
from edge.util.fsutil import PART_SUFFIX

EPS = 1e-3
HEAT_ALPHA = 0.45     # how strongly the heat map tints the time-lapse where the dog spent time


@dataclasses.dataclass(frozen=True, slots=True)
class Format:
    codec: str
    width: int
    height: int
    extradata: bytes
    b_frames: int


def clip_format(path: Path) -> Format | None:
    """The video format of an MP4 (from its header; None when it has no readable video)."""
    try:
        with _av().open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            return Format(ctx.name, ctx.width, ctx.height, bytes(ctx.extradata or b""), ctx.has_b_frames)
    except Exception:  # a damaged or half-deleted clip is left out of the reel, not fatal
        return None


def keyframe_times(path: Path) -> list[float]:
    """Seconds from the clip's start to each keyframe (demuxed packet headers; nothing is decoded)."""
    times = []
    with _av().open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.start_time or 0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.is_keyframe:
                times.append(float((packet.pts - base) * stream.time_base))
    return times


def _decoded(path: Path, begin: float, end: float) -> Iterator[np.ndarray]:
    """BGR frames of ``path`` shown from ``begin`` to ``end`` seconds (decoding starts at the keyframe before)."""
    with _av().open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        base = stream.start_time or 0
        with contextlib.suppress(Exception):  # an unseekable file is decoded from its start
            container.seek(base + int(begin / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float((frame.pts - base) * stream.time_base)
            if t < begin - EPS:
                continue
            if t >= end - EPS:
                return
            yield frame.to_ndarray(format="bgr24")


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class _Mismatch(Exception):
    """A re-encoded cut does not share the reel's codec headers: the reel is re-encoded whole."""


def _encode_cuts(cuts: Sequence[Cut], path: Path, encoder: EncoderChoice, size: tuple[int, int], fps: float) -> int:
    """Decode each cut and encode its frames, fitted to ``size``, into one MP4 at ``path``; the frames written.
    A failure removes the partial file (the writer's abort)."""
    writer = open_clip(path, encoder, size, fps, None)
    frames = 0
    try:
        for cut in cuts:
            for image in _decoded(Path(cut.clip.file), cut.begin, cut.end):
                writer.add_video(_fit(image, size))
                frames += 1
        writer.close()
    except Exception:
        writer.abort()
        raise
    return frames


def _reencode_cut(cut: Cut, part: Path, encoder: EncoderChoice, size: tuple[int, int], fps: float) -> Cut:
    """One cut alone into a short MP4 at the reel's size; the cut of that file that stands for it."""
    frames = _encode_cuts([cut], part, encoder, size, fps)
    span = ClipSpan(cut.clip.media_id, str(part), cut.wall, frames / fps)
    return Cut(span, 0.0, span.duration, cut.moments)


def _copy(cut: Cut, out: Any, container: Any, offset: float) -> float:
    """Copy the cut's packets into ``out`` from ``offset`` s on the reel; the reel's new length."""
    with _av().open(cut.clip.file) as source:
        stream = source.streams.video[0]
        base = stream.start_time or 0
        tb = stream.time_base
        shift = round(offset / tb) - round(cut.begin / tb) - base
        shown = offset
        for packet in source.demux(stream):
            if packet.pts is None:
                continue
            t = float((packet.pts - base) * tb)
            if t < cut.begin - EPS:
                continue
            if t >= cut.end - EPS:
                break
            step = float(packet.duration * tb) if packet.duration else 0.1
            packet.pts += shift
            packet.dts = packet.pts if packet.dts is None else packet.dts + shift
            packet.stream = out
            container.mux(packet)
            shown = offset + t - cut.begin + step
    return shown


def write_reel(cuts: Sequence[Cut], out_path: Path, encoder: EncoderChoice | None, fps: float) -> dict[str, Any]:
    """Join ``cuts`` (whose ``clip.file`` are paths) into ``out_path``; what it holds and how it was made."""
    formats = {cut.clip.media_id: clip_format(Path(cut.clip.file)) for cut in cuts}
    cuts = [c for c in cuts if formats[c.clip.media_id] is not None]
    if not cuts:
        raise ValueError("none of the day's clips can be read")
    usable = [f for f in formats.values() if f is not None and f.b_frames == 0]
    template = max(usable, key=usable.count) if usable else None
    try:
        if template is None:
            raise _Mismatch
        return _remux(cuts, formats, template, out_path, encoder, fps)
    except _Mismatch:
        first = formats[cuts[0].clip.media_id]
        assert first is not None
        return _transcode(cuts, out_path, encoder, fps, (first.width // 2 * 2, first.height // 2 * 2))


def _remux(cuts: Sequence[Cut], formats: dict[str, Format | None], template: Format, out_path: Path,
           encoder: EncoderChoice | None, fps: float) -> dict[str, Any]:
    size = (template.width, template.height)
    temporary: list[Path] = []
    try:
        prepared: list[Cut] = []
        for index, cut in enumerate(cuts):
            if formats[cut.clip.media_id] == template:
                prepared.append(cut)
                continue
            if encoder is None:
                raise _Mismatch
            part = out_path.with_name(f"{out_path.name}.cut{index}{PART_SUFFIX}.mp4")
            temporary.append(part)
            redone = _reencode_cut(cut, part, encoder, size, fps)
            if clip_format(part) != template:
                raise _Mismatch
            prepared.append(redone)
        av = _av()
        with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            with av.open(prepared[0].clip.file) as first:
                out = container.add_stream_from_template(first.streams.video[0])
            offset = 0.0
            for cut in prepared:
                offset = _copy(cut, out, container, offset)
    finally:
        for part in temporary:
            with contextlib.suppress(OSError):
                part.unlink()
    return {"duration": round(offset, 2), "width": size[0], "height": size[1], "codec": template.codec,
            "copied": sum(1 for c in cuts if formats[c.clip.media_id] == template),
            "reencoded": sum(1 for c in cuts if formats[c.clip.media_id] != template)}


def _transcode(cuts: Sequence[Cut], out_path: Path, encoder: EncoderChoice | None, fps: float,
               size: tuple[int, int]) -> dict[str, Any]:
    if encoder is None:
        raise ValueError("no working encoder to re-encode the reel with")
    frames = _encode_cuts(cuts, out_path, encoder, size, fps)
    return {"duration": round(frames / fps, 2), "width": size[0], "height": size[1], "codec": encoder.codec,
            "copied": 0, "reencoded": len(cuts)}


def heat_tint(grid: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """The heat map as a colour image at ``size`` and the mask where it shows (None: the dog was never seen)."""
    peak = float(grid.max()) if grid.size else 0.0
    if peak <= 0:
        return None
    level = cv2.resize((grid / peak * 255).astype(np.uint8), size, interpolation=cv2.INTER_LINEAR)
    return cv2.applyColorMap(level, cv2.COLORMAP_JET), level > 12


def write_timelapse(frames: Sequence[tuple[float, Path]], out_path: Path, encoder: EncoderChoice, fps: float,
                    heat: np.ndarray | None = None) -> dict[str, Any]:
    """Encode the JPEGs (wall time, path) in order; each stamped with its local time."""
    writer = None
    size = (0, 0)
    tint = None
    written = 0
    try:
        for wall, path in frames:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue  # a frame lost to a crash mid-write is skipped
            if writer is None:
                size = (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)
                writer = open_clip(out_path, encoder, size, fps, None)
                tint = heat_tint(heat, size) if heat is not None else None
            image = _fit(image, size)
            if tint is not None:
                colour, mask = tint
                image[mask] = cv2.addWeighted(image, 1 - HEAT_ALPHA, colour, HEAT_ALPHA, 0)[mask]
            stamp = dt.datetime.fromtimestamp(wall).strftime("%H:%M")
            cv2.putText(image, stamp, (8, size[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, stamp, (8, size[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                        cv2.LINE_AA)
            writer.add_video(image)
            written += 1
        if writer is None:
            raise ValueError("no time-lapse frame could be read")
        writer.close()
    except Exception:
        if writer is not None:
            writer.abort()
        raise
    return {"duration": round(written / fps, 2), "width": size[0], "height": size[1], "frames": written,
            "codec": encoder.codec, "fps": float(Fraction(fps).limit_denominator(1000))}
