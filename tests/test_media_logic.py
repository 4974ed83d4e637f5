"""Media logic without a device: ring bounds, clip planning, real-speed timing, retention, index, files.

Real parts only: real SQLite, real OpenCV JPEG/MP4 encoding and decoding, real files in tmp_path.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.commands import CommandError
from edge.media import render
from edge.media.encoder import CHOICE_OF, choose_encoders
from edge.media.feature import validate_bookmark, validate_list_media
from edge.media.index import MediaIndex, MediaRecord, file_of, new_id, valid_id
from edge.media.planner import ActivityGate, BestFramePicker, ClipPlanner, ConstantRate, Trigger
from edge.media.retention import Item, plan_retention
from edge.media.ring import AudioChunk, EncodedFrame, FrameRing
from edge.media.writer import ClipRecorder, DiskFull, check_space, remove_partials
from edge.util.fsutil import atomic_write as write_atomic

pytestmark = pytest.mark.unit


def frame(t: float, size: int = 100, wall: float | None = None) -> EncodedFrame:
    return EncodedFrame(b"x" * size, t, 1_700_000_000 + t if wall is None else wall, 64, 48)


# --- ring ---

def test_ring_is_bounded_by_count_and_by_bytes_dropping_the_oldest() -> None:
    ring = FrameRing(max_frames=5, max_bytes=1000)
    for i in range(8):
        ring.add(frame(i * 0.1))
    assert len(ring) == 5 and [round(f.captured, 1) for f in ring.since(0)] == [0.3, 0.4, 0.5, 0.6, 0.7]
    ring.add(frame(0.8, size=950))  # bytes bound: only this one and nothing older fits
    assert len(ring) == 1 and ring.bytes == 950
    assert not ring.add(frame(0.9, size=1001)) and ring.refused == 1 and len(ring) == 1
    ring.add(frame(1.0))
    assert [f.captured for f in ring.since(0.85)] == [1.0] and ring.newest().captured == 1.0


# --- clip planning ---

def test_clip_starts_pre_roll_before_the_trigger_and_ends_post_roll_after() -> None:
    planner = ClipPlanner(pre=5, post=10, max_seconds=30)
    plan = planner.trigger(Trigger(7, at=100.0, reason="dog_detected"))
    assert plan is not None and plan.start == 95.0 and plan.end == 110.0
    assert planner.due(109.9) is None
    done = planner.due(110.0)
    assert done is plan and planner.active is None


def test_activity_and_new_triggers_extend_a_clip_up_to_its_maximum() -> None:
    planner = ClipPlanner(pre=5, post=10, max_seconds=30)
    plan = planner.trigger(Trigger(1, 100.0, "dog_detected"))
    planner.activity(105.0)
    assert plan.end == 115.0
    assert planner.trigger(Trigger(2, 108.0, "bookmark", "zoomies")) is None  # joins the running clip
    assert plan.end == 118.0 and [t.seq for t in plan.triggers] == [1, 2] and plan.labels == ["zoomies"]
    for t in range(110, 200):
        planner.activity(float(t))
    assert plan.end == plan.start + 5 + 30 == 130.0  # capped: pre-roll plus max seconds
    assert planner.due(129.0) is None and planner.due(130.0) is plan
    again = planner.trigger(Trigger(3, 131.0, "zone_enter"))
    assert again is not None and again.start == 126.0  # the next clip has its own pre-roll


def test_constant_rate_keeps_real_speed_for_an_irregular_input() -> None:
    rate = ConstantRate(fps=10, start=0.0)
    # frames at 0, 0.35 (a stall), 0.4, 0.45 (faster than 10 fps), 1.0
    counts = [rate.slots_before(t) for t in (0.0, 0.35, 0.4, 0.45, 1.0)]
    assert counts == [0, 4, 0, 1, 5]  # slot k shows the newest frame captured by k/10 s
    assert rate.slots_before(1.0 + 1e-6) == 1 and rate.duration == pytest.approx(1.1)


def test_best_frame_of_a_new_track_is_picked_within_its_first_seconds_only() -> None:
    picker = BestFramePicker(window=2.0)
    picker.offer(4, first_seen=10.0, now=10.0, score=0.5, payload="a")
    picker.offer(4, first_seen=10.0, now=10.5, score=0.9, payload="b")
    picker.offer(4, first_seen=10.0, now=11.0, score=0.7, payload="c")
    picker.offer(4, first_seen=10.0, now=12.5, score=0.99, payload="too late")
    assert picker.ready_at(4) == 12.0 and picker.ready_at(5) is None
    assert picker.take(4).payload == "b" and picker.take(4) is None


def test_activity_gate_needs_movement_not_just_presence() -> None:
    gate = ActivityGate(min_speed=0.03, interval=0.5)
    diagonal = 800.0
    assert not gate.update(0.0, (100, 100), diagonal)
    assert not gate.update(0.6, (101, 100), diagonal)       # asleep on the sofa
    assert gate.update(1.2, (200, 100), diagonal)           # ~0.2 diagonals per second
    assert not gate.update(1.3, None, diagonal)             # no dog: not active


# --- retention ---

def test_retention_removes_the_oldest_first_until_under_quota_keeping_pairs_together() -> None:
    items = [Item("snap-1", "snap-1", 1.0, 400), Item("snapo-1", "snap-1", 1.0, 400),
             Item("clip-2", "clip-2", 2.0, 1000), Item("snap-3", "snap-3", 3.0, 300),
             Item("snapo-3", "snap-3", 3.0, 300)]
    assert plan_retention(items, max_bytes=10_000, max_age=100, now=10) == []
    assert plan_retention(items, max_bytes=1700, max_age=100, now=10) == ["snap-1", "snapo-1"]
    assert plan_retention(items, max_bytes=1000, max_age=100, now=10) == ["snap-1", "snapo-1", "clip-2"]
    assert plan_retention(items, max_bytes=1, max_age=100, now=10) == ["snap-1", "snapo-1", "clip-2"]  # newest kept
    assert plan_retention(items, max_bytes=10_000, max_age=8.5, now=10) == ["snap-1", "snapo-1"]  # by age


# --- index and ids ---

def test_index_only_accepts_generated_ids_and_names_files_itself(tmp_path: Path) -> None:
    index = MediaIndex(sqlite3.connect(":memory:", isolation_level=None))
    media_id = new_id("clip", 1_795_000_000)
    assert valid_id(media_id) and media_id.startswith("clip-2026")
    for bad in ("../dogmonitor.db", "%2e%2e", "/etc/passwd", media_id + ".mp4", media_id + "/x", "", "clip-1"):
        assert not valid_id(bad) and index.get(bad) is None
    index.add([MediaRecord(media_id, "clip", media_id, 5.0, f"{media_id}.mp4", 123, "video/mp4", start=4.0,
                           duration=2.5, event_seq=9, label="zoomies")])
    record = index.get(media_id)
    assert record is not None and record.label == "zoomies" and record.describe()["url"] == f"/media/{media_id}"
    assert file_of(record, tmp_path) == tmp_path / f"{media_id}.mp4"
    with pytest.raises(ValueError):
        file_of(MediaRecord(media_id, "clip", media_id, 5.0, "../../etc/passwd", 1, "video/mp4"), tmp_path)
    assert index.total_bytes() == 123 and [r.id for r in index.listing("clip", 10)] == [media_id]
    index.delete([media_id])
    assert index.get(media_id) is None and index.count() == 0


def test_command_validation_of_bookmark_and_list_media() -> None:
    # ``device`` (absent: this device) names a peer of the home the command is relayed to
    assert validate_bookmark({"label": " zoomies\x00 "}) == {"label": "zoomies", "device": None}
    assert validate_bookmark({}) == {"label": "", "device": None}
    assert validate_bookmark({"device": "kitchen"}) == {"label": "", "device": "kitchen"}
    for bad in ({"label": 5}, {"label": "x" * 101}):
        with pytest.raises(CommandError):
            validate_bookmark(bad)
    assert validate_list_media({"kind": "clip"}) == {"kind": "clip", "limit": 50, "before": None, "device": None}
    with pytest.raises(CommandError):
        validate_list_media({"kind": "../x"})


# --- files ---

def test_atomic_write_and_partial_cleanup(tmp_path: Path) -> None:
    target = tmp_path / "snap.jpg"
    write_atomic(target, b"\xff\xd8data")
    assert target.read_bytes() == b"\xff\xd8data" and list(tmp_path.iterdir()) == [target]
    (tmp_path / ".clip-x.part.mp4").write_bytes(b"half")
    assert remove_partials(tmp_path) == 1 and list(tmp_path.iterdir()) == [target]


def test_a_disk_without_room_is_refused_before_writing(tmp_path: Path) -> None:
    check_space(tmp_path, 1000, reserve=0)
    with pytest.raises(DiskFull) as info:
        check_space(tmp_path, 1000, reserve=2**62)
    assert "free" in str(info.value)


@pytest.mark.parametrize("encoder", ["libx264", "mp4v"])
def test_clip_recorder_writes_a_playable_mp4_at_real_speed(tmp_path: Path, encoder: str) -> None:
    working, refused = choose_encoders(encoder)
    assert working and working[0].name == encoder, f"{encoder} cannot encode here: {refused}"
    recorder = ClipRecorder(tmp_path, fps=10, encoders=working, reserve=0, audio_rate=16000)

    def shade(value: int) -> bytes:
        return render.encode_jpeg(np.full((120, 160, 3), value, np.uint8), 90)

    # 1 s of pre-roll at 5 fps (dark), then 1 s at 10 fps (bright): the clip must last 2 s at 10 fps
    pre = [EncodedFrame(shade(20), 100 + i * 0.2, 1e9 + i * 0.2, 160, 120) for i in range(5)]
    # sound: silence, with a loud tone exactly when the picture turns bright (1.0-1.3 s into the clip)
    t = np.arange(1600, dtype=np.float32) / 16000
    chunks = [AudioChunk(np.zeros(1600, np.float32) if not 15 <= k < 18 else
                         (0.8 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 99.5 + k * 0.1, 16000)
              for k in range(5, 25)]
    recorder.start("clip-20260101T000000-00000000", pre, [c for c in chunks if c.captured < 100.4])
    for c in chunks:
        if c.captured >= 100.4 and c.captured < 101:
            recorder.add_audio(c)
    for i in range(10):
        recorder.add(EncodedFrame(shade(220), 101 + i * 0.1, 1e9 + 1 + i * 0.1, 160, 120))
        for c in chunks:
            if 101 + i * 0.1 <= c.captured < 101.1 + i * 0.1:
                recorder.add_audio(c)
    result = recorder.finish(end=101.95)
    path = tmp_path / result["file"]
    assert result["duration"] == pytest.approx(2.0) and result["start"] == 1e9
    assert result["codec"] == ("h264" if encoder == "libx264" else "mp4v") and result["encoder"] == encoder
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no partial file left
    capture = cv2.VideoCapture(str(path))
    means = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        means.append(float(image.mean()))
    assert len(means) == 20
    assert all(m < 60 for m in means[:10]) and all(m > 180 for m in means[10:])
    if encoder == "mp4v":
        assert result["audio"] is False
        return
    import av

    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index must come before the media"
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert video.codec_context.profile in ("Main", "Constrained Baseline", "Baseline")
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    rate = 16000
    level = np.array([np.abs(samples[i:i + 800]).max() for i in range(0, len(samples) - 800, 800)])
    loud = np.flatnonzero(level > 0.3) * 800 / rate
    assert result["audio"] is True and abs(len(samples) / rate - 2.0) < 0.15
    # AAC adds a priming delay the MP4 edit list removes; allow 100 ms either way
    assert abs(loud[0] - 1.0) < 0.1 and abs(loud[-1] - 1.25) < 0.1, loud


def test_a_hardware_encoder_that_fails_its_test_encode_is_not_used() -> None:
    working, refused = choose_encoders("h264_v4l2m2m")
    assert "h264_v4l2m2m" in refused and "did not start" in refused["h264_v4l2m2m"]  # no V4L2 encoder on this machine
    assert [e.name for e in working] == ["libx264", "mp4v"]


def test_an_encoder_that_fails_in_a_clip_ends_it_and_the_next_clip_uses_the_fallback(tmp_path: Path) -> None:
    """h264_v4l2m2m, put first without its test encode as if it had passed one, fails on this machine."""
    recorder = ClipRecorder(tmp_path, fps=10, encoders=[CHOICE_OF["h264_v4l2m2m"], CHOICE_OF["libx264"]], reserve=0)
    frame = render.encode_jpeg(np.full((120, 160, 3), 90, np.uint8))
    recorder.start("clip-20260101T000000-00000001", [EncodedFrame(frame, 100.0, 1e9, 160, 120)])
    recorder.add(EncodedFrame(frame, 100.1, 1e9 + 0.1, 160, 120))
    with pytest.raises(OSError, match="h264_v4l2m2m"):
        recorder.finish(100.2)
    assert list(tmp_path.iterdir()) == [] and recorder.failed_encoders == ["h264_v4l2m2m"]
    recorder.start("clip-20260101T000001-00000002", [EncodedFrame(frame, 101.0, 1e9 + 1, 160, 120)])
    result = recorder.finish(101.5)
    assert result["encoder"] == "libx264" and (tmp_path / result["file"]).is_file()


def test_thumbnails_are_small() -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 255, (720, 1280, 3), np.uint8)  # the worst case for JPEG
    data = render.thumbnail(noisy)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert len(data) <= 25_000 and image.shape[1] in (160, 320)


def test_overlay_draws_boxes_and_zones_on_a_copy() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    drawn = render.draw_overlay(image, [render.Box(50, 40, 150, 200, "dog", 0.9, 3)],
                                [{"name": "sofa", "points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]], "occupied": True}])
    assert (image == 90).all()  # the clean frame is untouched
    assert tuple(drawn[40, 100]) == render.DOG_COLOUR  # the box's top edge
    assert (drawn[200:215, 260:285] != 90).any()  # the zone is shaded
    assert render.fit_width(image, 160).shape == (120, 160, 3) and render.fit_width(image, 0) is image


def test_range_requests_get_one_slice_or_the_whole_file() -> None:
    from starlette.responses import RangeNotSatisfiable

    from edge.web.files import MediaFile

    def parse(header: str) -> list[tuple[int, int]]:  # [] is the whole file; ends are exclusive
        return MediaFile._parse_range_header(header, 1000)

    assert parse("bytes=0-1") == [(0, 2)] and parse("bytes=500-") == [(500, 1000)]
    assert parse("bytes=-100") == [(900, 1000)] and parse("bytes=990-5000") == [(990, 1000)]
    assert parse("bytes=-5000") == [(0, 1000)] and parse("bytes=0-" + "9" * 4301) == [(0, 1000)]
    assert parse("bytes=0-1,5-6") == [] and parse("items=0-1") == [] and parse("bytes=x-y") == []
    for bad in ("bytes=1000-", "bytes=5-4", "bytes=-0", "bytes=" + "9" * 4301 + "-"):
        with pytest.raises(RangeNotSatisfiable):
            parse(bad)


def test_overlay_draws_pose_keypoints_above_their_threshold() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    poses = {"keypoint_threshold": 0.3, "skeleton": [[0, 1]],
             "poses": [{"keypoints": [[40, 40, 0.9], [140, 40, 0.8], [200, 200, 0.1]]}]}
    drawn = render.draw_overlay(image, [], (), poses)
    limb = drawn[38:43, 90].astype(int)  # the limb between two visible keypoints (anti-aliased)
    assert (np.abs(limb - render.KEYPOINT_COLOUR).sum(axis=1) < 40).any()
    assert (drawn[195:206, 195:206] == 90).all()  # a keypoint below the threshold is not drawn
