"""The day's highlight reel and time-lapse, planned and cut: which moments, cut points on keyframes, the
length bound, which frames a time-lapse shows; and clips of this device joined by copying packets (real
MP4s written by the device's own clip encoder, decoded back with PyAV)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from edge.media.reel import ClipSpan, Cut, Moment, day_bounds, moments_of, next_run, plan_cuts, timelapse_picks

pytestmark = pytest.mark.unit

KEYS = [0.0, 2.0, 4.0, 6.0, 8.0]  # a keyframe every 2 s, as the clip encoder writes them


def ev(kind: str, ts: float, seq: int, **data: object) -> dict[str, object]:
    return {"event_type": kind, "ts": ts, "seq": seq, "data": data}


def test_moments_are_arrivals_bookmarks_fetches_dwells_and_one_per_barking_episode() -> None:
    events = [ev("dog_detected", 100, 1), ev("sit", 105, 2), ev("bark", 200, 3, start=190.0),
              ev("bark", 230, 4, start=225.0), ev("howl", 400, 5, start=395.0), ev("bookmark_created", 500, 6,
                                                                                  label="zoomies"),
              ev("fetch_return", 600, 7), ev("zone_dwell", 700, 8, zone="bed"), ev("clip_saved", 701, 9)]
    moments = moments_of(events)
    assert [(m.kind, m.at, m.label) for m in moments] == [
        ("arrival", 100, None), ("barking", 190.0, None), ("barking", 395.0, None), ("bookmark", 500, "zoomies"),
        ("fetch", 600, None), ("zone", 700, "bed")]


def test_a_cut_starts_on_the_keyframe_before_the_moment_and_ends_after_it() -> None:
    clip = ClipSpan("clip-a", "a.mp4", 1000.0, 10.0)
    cuts = plan_cuts([Moment(1005.0, "arrival", 1, 4)], [clip], 60, {"clip-a": KEYS})
    assert [(c.begin, c.end) for c in cuts] == [(2.0, 9.0)]  # lead 2 s → 3.0, back to the keyframe at 2.0
    cuts = plan_cuts([Moment(1003.5, "arrival", 1, 4)], [clip], 60, {"clip-a": KEYS})
    assert (cuts[0].begin, cuts[0].end) == (0.0, 7.5)
    # a moment no clip covers is not in the reel
    assert plan_cuts([Moment(2000.0, "bookmark", 2, 0)], [clip], 60, {"clip-a": KEYS}) == []


def test_moments_close_together_in_one_clip_are_one_cut() -> None:
    clip = ClipSpan("clip-a", "a.mp4", 1000.0, 20.0)
    moments = [Moment(1004.0, "arrival", 1, 4), Moment(1007.0, "bookmark", 2, 0)]
    cuts = plan_cuts(moments, [clip], 60, {"clip-a": [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]})
    assert [(c.begin, c.end, [m.seq for m in c.moments]) for c in cuts] == [(2.0, 11.0, [1, 2])]


def test_the_reel_stays_within_its_bound_keeping_bookmarks_first_and_playing_in_time_order() -> None:
    clips = [ClipSpan(f"clip-{i}", f"{i}.mp4", 1000.0 + 100 * i, 10.0) for i in range(30)]
    moments = [Moment(1005.0 + 100 * i, "arrival", i, 4) for i in range(30)]
    moments[25] = Moment(3505.0, "bookmark", 25, 0, "the best bit")
    cuts = plan_cuts(moments, clips, 20, {c.media_id: KEYS for c in clips})
    assert sum(c.length for c in cuts) <= 20
    assert len(cuts) == 2  # 7 s each (keyframe 2 s → 9 s): two fit in 20 s, a third does not
    assert [c.wall for c in cuts] == sorted(c.wall for c in cuts)
    assert any(m.kind == "bookmark" for c in cuts for m in c.moments)
    # one moment longer than the bound alone is trimmed to it
    long_clip = ClipSpan("clip-long", "l.mp4", 0.0, 60.0)
    alone = plan_cuts([Moment(30.0, "fetch", 1, 1)], [long_clip], 3, {"clip-long": [0.0, 20.0]}, tail=20)
    assert alone and alone[0].length == pytest.approx(3.0)


def test_the_time_lapse_shows_every_frame_that_fits_else_evenly_spread_ones() -> None:
    assert timelapse_picks(10, 60, 24) == list(range(10))
    picks = timelapse_picks(2880, 60, 24)  # a day at one frame per 30 s
    assert len(picks) == 1440 and picks[0] == 0 and picks[-1] == 2879
    gaps = np.diff(picks)
    assert gaps.min() >= 1 and gaps.max() - gaps.min() <= 1


def test_days_and_the_daily_time_are_in_local_time() -> None:
    start, end = day_bounds("2024-03-05")
    assert dt.datetime.fromtimestamp(start) == dt.datetime(2024, 3, 5)
    assert dt.datetime.fromtimestamp(end) == dt.datetime(2024, 3, 6)
    at_noon = dt.datetime(2024, 3, 5, 12, 0).timestamp()
    assert dt.datetime.fromtimestamp(next_run(at_noon, "23:30")) == dt.datetime(2024, 3, 5, 23, 30)
    assert dt.datetime.fromtimestamp(next_run(at_noon, "08:15")) == dt.datetime(2024, 3, 6, 8, 15)


def _clip(path: Path, size: tuple[int, int], seconds: float, shade: int) -> None:
    from edge.media.encoder import CHOICE_OF, PyAvClip

    clip = PyAvClip(path, CHOICE_OF["libx264"], size, 10.0)
    for i in range(int(seconds * 10)):
        image = np.full((size[1], size[0], 3), shade, np.uint8)
        image[:, : (i * 7) % size[0]] = 255 - shade  # moves, so frames differ
        clip.add_video(image)
    clip.close()


def test_clips_of_this_device_are_copied_without_re_encoding_and_another_size_is_re_encoded(tmp_path: Path) -> None:
    import av

    from edge.media.encoder import CHOICE_OF
    from edge.media.reelmaker import keyframe_times, write_reel

    specs = [("clip-a", (640, 480), 40), ("clip-b", (640, 480), 120), ("clip-c", (320, 240), 200)]
    clips = []
    for i, (name, size, shade) in enumerate(specs):
        _clip(tmp_path / f"{name}.mp4", size, 10.0, shade)
        clips.append(ClipSpan(name, str(tmp_path / f"{name}.mp4"), 1000.0 + 100 * i, 10.0))
    keyframes = {c.media_id: keyframe_times(Path(c.file)) for c in clips}
    assert keyframes["clip-a"] == KEYS
    moments = [Moment(1005.0, "arrival", 1, 4), Moment(1103.0, "bookmark", 2, 0), Moment(1206.0, "fetch", 3, 1)]
    cuts = plan_cuts(moments, clips, 60, keyframes)
    result = write_reel(cuts, tmp_path / "reel.mp4", CHOICE_OF["libx264"], 10.0)
    assert (result["copied"], result["reencoded"]) == (2, 1)
    assert result["duration"] == pytest.approx(sum(c.length for c in cuts), abs=0.15)
    with av.open(str(tmp_path / "reel.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (640, 480)
        shades = [int(f.to_ndarray(format="gray")[:, -1].mean()) for f in container.decode(stream)]
    assert len(shades) == round(result["duration"] * 10)
    # the cuts in order: clip a's shade, then b's, then c's (its last column keeps the clip's own shade)
    firsts = [shades[0], shades[round(cuts[0].length * 10)], shades[round((cuts[0].length + cuts[1].length) * 10)]]
    assert [abs(s - shade) < 20 for s, (_, _, shade) in zip(firsts, specs, strict=True)] == [True] * 3, firsts


def test_a_reel_re_encoded_whole_holds_every_cut_in_order_at_the_reel_size(tmp_path: Path) -> None:
    """The fallback when a re-encoded cut cannot share the reel's codec headers: every cut decoded and encoded
    again into one file, fitted to the reel's size."""
    import av

    from edge.media.encoder import CHOICE_OF
    from edge.media.reelmaker import _transcode

    specs = [("clip-a", (640, 480), 40), ("clip-c", (320, 240), 200)]
    clips = []
    for i, (name, size, shade) in enumerate(specs):
        _clip(tmp_path / f"{name}.mp4", size, 4.0, shade)
        clips.append(ClipSpan(name, str(tmp_path / f"{name}.mp4"), 1000.0 + 100 * i, 4.0))
    cuts = [Cut(clip, 0.0, 2.0, []) for clip in clips]
    result = _transcode(cuts, tmp_path / "whole.mp4", CHOICE_OF["libx264"], 10.0, (640, 480))
    assert (result["copied"], result["reencoded"], result["width"], result["height"]) == (0, 2, 640, 480)
    with av.open(str(tmp_path / "whole.mp4")) as container:
        stream = container.streams.video[0]
        shades = [int(f.to_ndarray(format="gray")[:, -1].mean()) for f in container.decode(stream)]
    assert len(shades) == round(result["duration"] * 10) == 40
    assert abs(shades[0] - 40) < 20 and abs(shades[-1] - 200) < 20, (shades[0], shades[-1])
