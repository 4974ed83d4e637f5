"""Zones: geometry (concave polygons, edges, pixels vs normalised), set_zones validation, inertia, dwell."""

from __future__ import annotations

import orjson
import pytest

from edge.behaviour.zones import ZoneTracker, ground_point, paw_points, paws_of
from edge.core.commands import CommandError, parse_command
from edge.protocol import messages
from edge.protocol.zones import Zone, ZoneError, parse_zones, point_in_polygon
from tests.protocol_check import check_ws

pytestmark = pytest.mark.unit

# An L-shaped (concave) sofa: the notch at the top right is NOT part of it.
L_SHAPE = ((0.1, 0.1), (0.4, 0.1), (0.4, 0.5), (0.8, 0.5), (0.8, 0.9), (0.1, 0.9))


def test_concave_polygon_excludes_its_notch() -> None:
    assert point_in_polygon((0.2, 0.2), L_SHAPE)          # upright arm
    assert point_in_polygon((0.7, 0.8), L_SHAPE)          # foot of the L
    assert not point_in_polygon((0.6, 0.3), L_SHAPE)      # the notch: inside the bounding box, outside the L
    assert not point_in_polygon((0.9, 0.8), L_SHAPE)
    assert not point_in_polygon((0.05, 0.5), L_SHAPE)


def test_points_on_edges_and_vertices_are_inside() -> None:
    assert point_in_polygon((0.25, 0.1), L_SHAPE)         # top edge
    assert point_in_polygon((0.4, 0.3), L_SHAPE)          # inner vertical edge of the notch
    assert point_in_polygon((0.6, 0.5), L_SHAPE)          # inner horizontal edge of the notch
    assert point_in_polygon((0.4, 0.5), L_SHAPE)          # reflex vertex
    assert point_in_polygon((0.8, 0.9), L_SHAPE)          # corner
    assert point_in_polygon((0.1, 0.9), L_SHAPE)
    assert not point_in_polygon((0.4001, 0.3), L_SHAPE)   # just into the notch


def test_pixel_and_normalised_coordinates_agree_at_any_resolution() -> None:
    zone = Zone("sofa", L_SHAPE)
    for width, height in ((640, 480), (1920, 1080), (512, 512)):
        assert zone.contains_pixel(0.2 * width, 0.2 * height, width, height)
        assert not zone.contains_pixel(0.6 * width, 0.3 * height, width, height)
        assert zone.contains_pixel(0.4 * width, 0.3 * height, width, height)


def test_ground_point_is_bottom_centre_or_paws() -> None:
    box = (100.0, 50.0, 300.0, 350.0)
    assert ground_point(box, 640, 480) == pytest.approx((200 / 640, 350 / 480))
    # paws win over the box; they are averaged
    assert ground_point(box, 640, 480, [(150, 400), (250, 420)]) == pytest.approx((200 / 640, 410 / 480))
    # clamped into the frame when the box runs past the edge
    assert ground_point((600, 400, 700, 500), 640, 480) == (1.0, 1.0)
    named = {"left_front_paw": (10.0, 20.0, 0.9), "right_front_paw": (30.0, 20.0, 0.1), "nose": (0.0, 0.0, 1.0)}
    assert paw_points(named) == [(10.0, 20.0)]


def test_paws_from_the_pose_stage_decide_the_ground_point() -> None:
    import numpy as np

    from edge.vision.pose import Pose
    from edge.vision.tracking import Track

    track = Track(1, (100.0, 50.0, 300.0, 350.0), 0.9, 0.0, 0.0)
    assert paws_of(track) is None                                  # no pose: the box decides
    names = ("nose", "front_left_paw", "front_right_paw", "rear_left_paw", "rear_right_paw")
    track.pose = Pose(np.array([[120, 60, 0.9], [140, 300, 0.9], [160, 302, 0.8], [260, 298, 0.9],
                                [280, 300, 0.05]]), 0.9, names)   # type: ignore[attr-defined]
    paws = paws_of(track)
    assert paws == [(140.0, 300.0), (160.0, 302.0), (260.0, 298.0)]   # the hidden paw is left out
    # the dog's paws stand on a rug whose top edge is above the box bottom: inside by paws, not by box
    rug = Zone("rug", ((0.0, 290 / 480), (1.0, 290 / 480), (1.0, 320 / 480), (0.0, 320 / 480)))
    assert rug.contains(ground_point(track.box, 640, 480, paws))
    assert not rug.contains(ground_point(track.box, 640, 480))


def zone_dict(name: str = "sofa", points=None, **extra) -> dict:
    return {"name": name, "points": [list(p) for p in (points or L_SHAPE)], **extra}


def test_valid_request_parses_with_roles_and_dwell() -> None:
    zones = parse_zones([zone_dict(dwell_alert_seconds=30), zone_dict("Door mat", [(0, 0), (1, 0), (0.5, 0.2)],
                                                                     roles=["return"], color="#ff8800")])
    assert zones[0].dwell_alert_seconds == 30 and zones[0].roles == frozenset()
    assert zones[1].roles == frozenset({"return"}) and zones[1].color == "#ff8800"
    assert parse_zones([]) == ()   # an empty list deletes every zone
    # {"x","y"} points are accepted too
    assert parse_zones([{"name": "bowl", "points": [{"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.1},
                                                    {"x": 0.2, "y": 0.2}]}])[0].points[1] == (0.2, 0.1)


OK = zone_dict("ok", [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2)])


@pytest.mark.parametrize(("request_zones", "names", "index", "field"), [
    ([zone_dict(points=[(0.1, 0.1), (0.2, 0.2)])], "2 points", 0, "points"),
    ([zone_dict(points=[(i / 40, (i % 2) / 2) for i in range(33)])], "33 points", 0, "points"),
    ([OK, zone_dict(points=[(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])], "crosses itself", 1, "points"),
    ([zone_dict(points=[(0.1, 0.1), (1.5, 0.1), (0.5, 0.5)])], "outside 0..1", 0, "points"),
    ([zone_dict(points=[(10, 10), (300, 10), (300, 200)])], "normalised", 0, "points"),          # pixels sent
    ([zone_dict(name="")], "1 to 40 characters", 0, "name"),
    ([OK, zone_dict(name="x" * 41)], "1 to 40 characters", 1, "name"),
    ([zone_dict(name="sofa/../../etc")], "1 to 40 characters", 0, "name"),
    ([OK, zone_dict(), zone_dict("SOFA")], "used twice", 2, "name"),     # the second of the two
    ([zone_dict(f"z{i}", [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2)]) for i in range(17)], "at most 16", None, None),
    ([zone_dict(dwell_alert_seconds=-5)], "dwell_alert_seconds", 0, "dwell_alert_seconds"),
    ([zone_dict(roles=["Return!"])], "roles", 0, "roles"),
    ([zone_dict(color="red")], "color", 0, "color"),
    ([zone_dict(points=[(0.1, 0.1), (0.1, 0.1), (0.5, 0.5)])], "same point", 0, "points"),
    ([zone_dict(points=[(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)])], "no area", 0, "points"),
    ([OK, "sofa"], "must be an object", 1, None),
    ("sofa", "must be a list", None, None),
])
def test_invalid_requests_name_the_problem_the_zone_and_its_field(request_zones, names: str, index, field) -> None:
    with pytest.raises(ZoneError, match=names) as refused:
        parse_zones(request_zones)
    assert (refused.value.index, refused.value.field) == (index, field)


def test_a_refused_zone_list_answers_with_the_zone_and_field_beside_the_message() -> None:
    bad = [OK, zone_dict(points=[(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])]
    with pytest.raises(CommandError) as refused:
        parse_command(orjson.dumps({"type": "set_zones", "id": "z", "zones": bad}))
    message = messages.error(refused.value.code, refused.value.message, refused.value.request_id, refused.value.extra)
    assert message.data == {"code": "invalid_zones", "id": "z", "zone": {"index": 1, "field": "points"},
                            "message": "zone 'sofa': polygon crosses itself (edge 0 meets edge 2); "
                                       "draw the outline without crossing lines"}
    check_ws(messages.encode(message, "testdog"))   # the published schema declares the field


SQUARE = Zone("mat", ((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)), dwell_alert_seconds=5.0)
IN, OUT = (0.5, 0.5), (0.1, 0.1)


def run(tracker: ZoneTracker, points: list, start: float = 0.0, step: float = 0.1) -> list:
    changes = []
    for i, p in enumerate(points):
        t = start + i * step
        changes += tracker.update([] if p is None else [(7, p)], t, 1000.0 + t)
    return changes


def test_one_frame_crossing_fires_nothing() -> None:
    tracker = ZoneTracker([SQUARE], inertia=3)
    assert run(tracker, [OUT, OUT, IN, OUT, OUT, IN, IN, OUT, OUT]) == []
    assert tracker.occupied() == []


def test_enter_and_exit_after_inertia_with_time_from_the_real_crossing() -> None:
    tracker = ZoneTracker([SQUARE], inertia=3)
    changes = run(tracker, [OUT, OUT, IN, IN, IN, IN, IN, OUT, IN, IN, OUT, OUT, OUT, OUT])
    kinds = [(c.kind, c.zone) for c in changes]
    assert kinds == [("enter", "mat"), ("exit", "mat")]
    enter, leave = changes
    # entered at frame 2 (t=0.2), noticed at frame 4; left at frame 10 (t=1.0): 0.8 s spent
    assert enter.data["entered_at"] == pytest.approx(1000.2)
    assert enter.data["track_id"] == 7
    assert leave.data["seconds"] == pytest.approx(0.8)
    assert leave.data["exited_at"] == pytest.approx(1001.0)
    assert leave.data["reason"] == "left"


def test_missed_frames_are_no_evidence_but_a_lost_dog_leaves() -> None:
    tracker = ZoneTracker([SQUARE], inertia=2, lost_seconds=3.0)
    changes = run(tracker, [IN, IN, None, None, IN, None])
    assert [c.kind for c in changes] == ["enter"]
    # nothing seen for 3 s after the last sighting at t=0.4: the stay ends at t=0.4
    changes = tracker.update([], 3.5, 1003.5)
    assert changes[0].kind == "exit" and changes[0].data["reason"] == "dog_lost"
    assert changes[0].data["seconds"] == pytest.approx(0.4)


def test_dwell_fires_once_per_stay() -> None:
    tracker = ZoneTracker([SQUARE], inertia=2)
    changes = run(tracker, [IN] * 80)                      # 8 s inside, dwell alert at 5 s
    assert [c.kind for c in changes] == ["enter", "dwell"]
    assert changes[1].data["seconds"] == pytest.approx(5.0)
    changes = run(tracker, [OUT, OUT] + [IN] * 60, start=8.0)
    assert [c.kind for c in changes] == ["exit", "enter", "dwell"]


def test_removed_zone_ends_its_stay() -> None:
    tracker = ZoneTracker([SQUARE], inertia=1)
    run(tracker, [IN, IN])
    changes = tracker.set_zones([], 2.0, 1002.0)
    assert [(c.kind, c.data["reason"]) for c in changes] == [("exit", "removed")]
