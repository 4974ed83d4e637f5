"""Every event type the device sends, with its ``data`` fields: :data:`EVENTS`.

Owns what each event says. The names are :class:`~edge.protocol.messages.EventType`'s (the public contract);
this table adds the group and a label for people (both served to the tablet by :func:`catalogue`),
whether it is a dog event (mirrored to Home Assistant's ``ha_event``), when it is sent, and the schema
of ``data`` as the code emits it. An event type without an entry here (or
an entry without an event type) is refused at import.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edge.protocol.messages import EventType
from edge.protocol.schema import (
    Schema,
    array,
    boolean,
    const,
    integer,
    nullable,
    number,
    obj,
    ref,
    string,
)
from edge.protocol.shapes import SHAPES


@dataclasses.dataclass(frozen=True)
class EventSpec:
    type: EventType
    group: str          # a key of GROUPS
    label: str          # what a person calls it (the tablet's timeline title when the data adds nothing)
    summary: str        # when it is sent
    data: Schema
    dog: bool = False   # about the dog: offered by Home Assistant's event entity


# group -> what a person calls it (the tablet's timeline filter), in the order a person looks for them
GROUPS: dict[str, str] = {
    "presence": "Arrivals and departures", "posture": "Posture", "zone": "Zones", "bark": "Barking",
    "fetch": "Fetch", "unusual": "Unusual for her", "media": "Snapshots, clips, bookmarks", "camera": "Camera",
    "audio": "Microphone",
    "broker": "Broker", "device": "Device problems", "test": "Test events",
}
POSTURE_LABELS = {"sit": "Sat down", "stand": "Stood up", "lie": "Lay down"}

_track = integer("dog track id")
_source = string("camera or audio source as configured (credentials hidden)")


def _posture(kind: str) -> EventSpec:
    return EventSpec(EventType(kind), "posture", POSTURE_LABELS[kind], f"the dog's posture became '{kind}' and held "
                     "DOGMON_POSTURE_MIN_SECONDS", obj({
                         "track_id": _track,
                         "posture": const(kind, "the new posture"),
                         "confidence": nullable(number("0..1")),
                         "source": string("evidence", enum=("keypoints", "box")),
                         "previous": nullable(string("posture before (null for a new track)")),
                         "previous_seconds": nullable(number("how long the previous posture lasted")),
                         "since": number("wall time the new posture began"),
                         "held_seconds": number("how long it held before the event fired"),
                         "box": ref("Box"),
                     }), dog=True)


_episode = SHAPES["BarkEpisode"]
_day_video = {
    "media_id": string(), "url": string("/media/{media_id}"), "day": string("YYYY-MM-DD, device local time"),
    "duration": number("seconds"), "bytes": integer(), "width": integer(), "height": integer(),
    "codec": string("h264 (mp4v only when PyAV cannot encode H.264 here)"), "content_type": string("video/mp4"),
    "cpu_seconds": number("CPU time the low-priority builder spent on it")}
_CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(EventType.DOG_DETECTED, "presence", "Dog arrived", "a dog track is confirmed (3 consistent frames)", obj({
        "track_id": _track, "confidence": number("best detector score of the track"),
        "box": ref("Box"), "frame": ref("Frame")}), dog=True),
    EventSpec(EventType.DOG_LEFT, "presence", "Dog left", "no dog seen for DOGMON_ABSENCE_SECONDS", obj({
        "last_track_id": nullable(integer("the last confirmed track")),
        "present_seconds": number("how long the dog was present"),
        "absent_seconds": number("how long it has been gone")}), dog=True),
    _posture("sit"), _posture("stand"), _posture("lie"),
    EventSpec(EventType.ZONE_ENTER, "zone", "Entered a zone", "the dog's ground point entered a zone", obj({
        "zone": string("zone name"), "track_id": nullable(_track),
        "entered_at": number("wall time of the first frame inside"),
        "point": array(number(), "ground contact [x, y], normalised", 2, 2),
        "roles": array(string(), "the zone's role flags")}), dog=True),
    EventSpec(EventType.ZONE_EXIT, "zone", "Left a zone", "the dog left a zone (or the zone was removed)", obj({
        "zone": string("zone name"), "track_id": nullable(_track), "seconds": number("time spent inside"),
        "entered_at": nullable(number("wall time the stay began")), "exited_at": number("wall time it ended"),
        "reason": string("why it ended", enum=("left", "dog_lost", "removed"))}), dog=True),
    EventSpec(EventType.ZONE_DWELL, "zone", "Stayed in a zone",
              "a stay reached the zone's dwell_alert_seconds (once per stay)", obj({
        "zone": string("zone name"), "track_id": nullable(_track), "seconds": number("time inside so far"),
        "dwell_alert_seconds": number("the zone's alert"),
        "entered_at": nullable(number("wall time the stay began"))}), dog=True),
    EventSpec(EventType.FETCH_RETURN, "fetch", "Brought a toy back",
              "a dog carrying a toy reached a return zone or came closer", obj({
        "track_id": _track, "toy": string("the toy's COCO label ('sports ball', 'frisbee')"),
        "carry_seconds": number("carry start to return"), "carry_started_at": number("wall time the carry began"),
        "reason": string("what counted", enum=("return_zone", "growth")),
        "zone": nullable(string("the return zone reached")),
        "growth": number("box area now / at the carry's start")}), dog=True),
    EventSpec(EventType.BARK, "bark", "Barked",
              "a barking episode ended (barks or growls dominated)", _episode, dog=True),
    EventSpec(EventType.CONTINUOUS_BARKING, "bark", "Barking on and on",
              "a barking episode outlasted DOGMON_BARK_CONTINUOUS_SECONDS "
              "(once per episode, while it goes on)", {
                  **_episode, "properties": {**_episode["properties"], "ongoing": const(True, "always true")},
                  "required": [*_episode["required"], "ongoing"]}, dog=True),
    EventSpec(EventType.HOWL, "bark", "Howled", "a barking episode ended (howls dominated)", _episode, dog=True),
    EventSpec(EventType.WHIMPER, "bark", "Whimpered",
              "a barking episode ended (whimpers dominated)", _episode, dog=True),
    EventSpec(EventType.AUDIO_OFFLINE, "audio", "Microphone offline",
              "the microphone or audio file stopped delivering", obj({
        "source": _source, "reason": string("arecord's or the reader's reason"),
        "retry_in": number("seconds until the next attempt")}, optional=("retry_in",))),
    EventSpec(EventType.AUDIO_ONLINE, "audio", "Microphone online", "sound flows (again)", obj({"source": _source})),
    EventSpec(EventType.CAMERA_OFFLINE, "camera", "Camera offline",
              "the camera cannot be opened, stopped or stalled", obj({
        "source": _source, "reason": string("what happened"),
        "retry_in": number("seconds until the next attempt"),
        "stalled_seconds": number("no frame for this long (reason 'stalled')")},
        optional=("retry_in", "stalled_seconds"))),
    EventSpec(EventType.CAMERA_ONLINE, "camera", "Camera online", "frames arrive (again)", obj({
        "source": _source, "width": integer(), "height": integer(), "fps": number("the source's frame rate")})),
    EventSpec(EventType.BROKER_OFFLINE, "broker", "Broker offline",
              "the MQTT broker is unreachable, refused us or went away", obj({
        "broker": string("host:port"), "reason": string("paho's reason"),
        "effect": string("what happens meanwhile")})),
    EventSpec(EventType.BROKER_ONLINE, "broker", "Broker online",
              "the MQTT broker is back", obj({"broker": string("host:port")})),
    EventSpec(EventType.SNAPSHOT_SAVED, "media", "Snapshot",
              "a snapshot is complete on disk (for DOGMON_SNAPSHOT_EVENTS "
              "or on request)", ref("SnapshotSaved")),
    EventSpec(EventType.CLIP_SAVED, "media", "Clip", "a clip is complete on disk", obj({
        "media_id": string(), "url": string("/media/{media_id}"), "start": number("first frame (unix s)"),
        "duration": number("seconds"), "end": number("unix s"),
        "event_seq": nullable(integer("the trigger's seq")), "event_type": string("the trigger's type or 'bookmark'"),
        "events": array(integer(), "every event seq the clip covers"),
        "label": nullable(string("bookmark labels joined with ' | '")), "labels": array(string(), "bookmark labels"),
        "pre_roll": number("seconds from the first frame to the trigger"),
        "bytes": integer(), "width": integer(), "height": integer(), "fps": number(),
        "codec": string("h264, or mp4v when PyAV cannot encode H.264 here"),
        "encoder": string("h264_v4l2m2m, libx264 or mp4v"), "audio": boolean("the clip carries the microphone (AAC)"),
        "poster_media_id": nullable(string("poster frame JPEG (the trigger's frame)")),
        "poster_url": nullable(string("/media/{poster_media_id}")),
        "content_type": string("video/mp4")})),
    EventSpec(EventType.BOOKMARK_CREATED, "media", "Bookmark",
              "a client asked for a bookmark (a clip_saved follows)", obj({
        "label": string("the label (may be empty)"), "origin": nullable(string("transport: ws, mqtt or rest")),
        "clip": string("reminder that a clip_saved follows")})),
    EventSpec(EventType.UNUSUAL_ACTIVITY, "unusual", "Unusual for her",
              "at the end of an hour, a figure of the day so far is outside the range of the last 4 same weekdays "
              "(silent for the first week; rule in docs/behaviour.md)", ref("Unusual"), dog=True),
    EventSpec(EventType.HIGHLIGHTS_SAVED, "media", "Highlight reel",
              "the day's highlight reel is complete on disk (at DOGMON_HIGHLIGHTS_AT or on make_highlights)", obj({
        **_day_video, "moments": array(obj({
            "kind": string("what happened", enum=("arrival", "bookmark", "barking", "fetch", "zone")),
            "at": number("unix s"), "seq": integer("the event"),
            "label": nullable(string("bookmark label or zone name"))}), "the moments shown, in order"),
        "left_out": integer("moments with a clip that did not fit in DOGMON_HIGHLIGHTS_MAX_SECONDS"),
        "copied": integer("cuts copied from their clips without re-encoding"),
        "reencoded": integer("cuts re-encoded (a clip of another size or encoder)")})),
    EventSpec(EventType.TIMELAPSE_SAVED, "media", "Time-lapse",
              "the day's time-lapse is complete on disk (at DOGMON_HIGHLIGHTS_AT or on make_highlights)", obj({
        **_day_video, "frames": integer("frames shown"), "fps": number(),
        "first": number("the first frame's time (unix s)"), "last": number("the last frame's time (unix s)"),
        "interval": number("DOGMON_TIMELAPSE_SECONDS when the frames were taken"),
        "heatmap": boolean("the day's heat map is blended in")})),
    EventSpec(EventType.ERROR, "device", "Problem", "a part of the device failed in a way the user should know", obj({
        "component": string("store or media"), "detail": string("what failed"),
        "effect": string("what that means"), "disk_full": boolean("media only: the disk is full"),
        "unstored": integer("store only, once it is writable again: events of the spell sent live without a seq"),
        "from_ts": number("store only: the first of them"), "to_ts": number("store only: the last of them")},
        optional=("disk_full", "unstored", "from_ts", "to_ts"))),
    EventSpec(EventType.TEST, "test", "Test event",
              "emit_test_event (only with DOGMON_TEST_EVENTS=1): what the client sent",
              obj({"origin": nullable(string("transport: ws, mqtt or rest"))}, closed=False)),
)

EVENTS: dict[str, EventSpec] = {str(spec.type): spec for spec in _CATALOGUE}

_missing = {str(t) for t in EventType} ^ EVENTS.keys()
if _missing or len(EVENTS) != len(_CATALOGUE):
    raise RuntimeError(f"edge.protocol.events and EventType disagree about {sorted(_missing)}")
if {spec.group for spec in _CATALOGUE} - GROUPS.keys():
    raise RuntimeError(f"event groups without a label: {sorted({s.group for s in _CATALOGUE} - GROUPS.keys())}")


def event_types(*, group: str | None = None, dog: bool | None = None) -> tuple[str, ...]:
    """Event type names, in declaration order, filtered by group and by being a dog event."""
    return tuple(name for name, spec in EVENTS.items()
                 if (group is None or spec.group == group) and (dog is None or spec.dog == dog))


def catalogue() -> dict[str, Any]:
    """Groups and labels for people, as ``GET /api/protocol/events`` serves them to the tablet:
    ``{"groups": [{"name", "label", "events": [type …]}], "events": {type: {"group", "label", "dog"}}}``."""
    return {"groups": [{"name": name, "label": label, "events": list(event_types(group=name))}
                       for name, label in GROUPS.items()],
            "events": {name: {"group": spec.group, "label": spec.label, "dog": spec.dog}
                       for name, spec in EVENTS.items()}}
