"""Shapes shared by several messages (box, frame, zone, state, analytics …), as named JSON Schemas.

Owns :data:`SHAPES`: ``name -> schema``, published under ``#/components/schemas/<name>`` and referred
to with :func:`~edge.protocol.schema.ref`. The limits come from the modules that enforce them
(zones from :mod:`edge.behaviour.zones`), never retyped here.
"""

from __future__ import annotations

from edge.protocol import zones
from edge.protocol.schema import (
    Schema,
    array,
    boolean,
    integer,
    mapping,
    nullable,
    number,
    obj,
    ref,
    string,
)

# The vocal classes a bark episode reports scores for (the audio stage maps them to YAMNet's indices).
VOCAL_CLASS_NAMES = ("bark", "howl", "growling", "whimper")

POSTURE_VALUES = ("sit", "stand", "lie", "unknown")
MEDIA_KINDS = ("snapshot", "snapshot_overlay", "snapshot_thumb", "clip", "clip_poster", "highlights", "timelapse")
ACTIVITY_LEVELS = ("resting", "low", "moderate", "high")

_normalised = {"type": "number", "minimum": 0, "maximum": 1}
_point_pair = array(_normalised, "[x, y], normalised to the frame (0..1)", 2, 2)
_point_object = obj({"x": _normalised, "y": _normalised}, "{x, y}, normalised to the frame (0..1)")

ZONE_INPUT = obj({
    "name": string("1 to 40 letters, digits, spaces, '_' or '-'; unique, case-insensitive",
                   pattern=f"^{zones.NAME_PATTERN.pattern}$"),
    "points": array({"oneOf": [_point_pair, _point_object]},
                    "the polygon; no repeated neighbours, not on one line, not crossing itself",
                    zones.MIN_POINTS, zones.MAX_POINTS),
    "dwell_alert_seconds": nullable(number("zone_dwell fires once per stay after this long")
                                    | {"minimum": 1, "maximum": zones.MAX_DWELL_SECONDS}),
    "roles": array(string(pattern=f"^{zones.ROLE_PATTERN.pattern}$"),
                   "flags; 'return' marks where fetch_return counts", max_items=zones.MAX_ROLES),
    "color": string("#rrggbb", pattern=f"^{zones.COLOR_PATTERN.pattern}$"),
}, "one zone as a client sends it", optional=("dwell_alert_seconds", "roles", "color"))

SHAPES: dict[str, Schema] = {
    "Frame": obj({"w": integer("width in pixels"), "h": integer("height in pixels")}, "source frame size"),
    "Box": obj({
        "x": number("left, source pixels"), "y": number("top, source pixels"),
        "w": number("width, pixels"), "h": number("height, pixels"),
        "label": string("COCO class ('dog', 'sports ball' …)"), "confidence": number("detector score 0..1"),
        "track_id": nullable(integer("dog track id (null for other objects)")),
    }, "a box in source-frame pixels"),
    "ZoneInput": ZONE_INPUT,
    "Zone": obj({
        "name": string("zone name"),
        "points": array(array(number(), max_items=2, min_items=2), "[[x, y], …] normalised"),
        "dwell_alert_seconds": nullable(number("dwell alert")),
        "roles": array(string(), "role flags"),
        "color": string("#rrggbb"),
    }, "a stored zone", optional=("color",)),
    "ZoneView": obj({
        "name": string("zone name"),
        "points": array(array(number(), max_items=2, min_items=2), "[[x, y], …] normalised"),
        "dwell_alert_seconds": nullable(number("dwell alert")),
        "roles": array(string(), "role flags"),
        "color": string("#rrggbb"),
        "occupied": boolean("the dog is in it now"),
        "since": nullable(number("wall time the current stay began")),
    }, "a zone with its occupancy", optional=("color",)),
    "Activity": obj({"movement_per_minute": number("ground-point travel over the last 60 s, frame units"),
                     "level": string("activity level", enum=ACTIVITY_LEVELS)}, "the dog's recent movement"),
    "BarkState": obj({
        "active": boolean("a barking episode is going on"),
        "since": nullable(number("when it began")),
        "last": nullable(obj({"type": string("bark, howl or whimper"), "start": number(), "duration_s": number(),
                              "peak_score": number(), "barks": integer()}, "the last finished episode")),
    }, "bark detection state"),
    "State": obj({
        "presence": boolean("a dog is present"),
        "present_since": nullable(number("wall time presence began")),
        "absent_since": nullable(number("wall time the dog last left (null until it has)")),
        "track_count": integer("confirmed dog tracks (coasting ones included)"),
        "camera_online": nullable(boolean("camera delivers frames (null before the first report)")),
        "last_event": nullable(obj({"type": string("event type"), "seq": nullable(integer()), "ts": number()},
                                   "the newest event")),
        "posture": nullable(string("posture of the longest-tracked dog", enum=POSTURE_VALUES)),
        "posture_since": nullable(number("when that posture began")),
        "posture_source": nullable(string("evidence: keypoints or box", enum=("keypoints", "box"))),
        "zones_occupied": array(string(), "names of the zones the dog is in"),
        "activity": ref("Activity"),
        "bark": ref("BarkState"),
        "audio_online": nullable(boolean("microphone delivers sound (with DOGMON_AUDIO_SOURCE)")),
    }, "the device's current state", optional=("posture", "posture_since", "posture_source", "zones_occupied",
                                               "activity", "bark", "audio_online")),
    "AnalyticsDay": obj({
        "day": string("device-local day, YYYY-MM-DD"),
        "posture_seconds": mapping(number(), "seconds per posture"),
        "posture_minutes": mapping(number(), "minutes per posture"),
        "zone_seconds": mapping(number(), "seconds per zone"),
        "zone_minutes": mapping(number(), "minutes per zone"),
        "zone_visits": mapping(integer(), "visits per zone (counted on the day they began)"),
        "activity_seconds": number("active seconds"),
        "activity_minutes": number("active minutes"),
        "event_counts": mapping(integer(), "events per event type"),
    }, "one day's figures"),
    "Unusual": obj({
        "metric": string("what", enum=("seen_minutes", "lying_minutes", "bark_episodes", "active_minutes",
                                        "zone_visits")),
        "label": string("what, for people"), "direction": string("more or less than usual", enum=("more", "less")),
        "value": number("how much: the day so far"), "unit": string("min, or empty for a count"),
        "usual_min": number("the lowest of the compared days"), "usual_max": number("the highest of them"),
        "usual_mean": number("their mean"), "weekday": string("the weekday compared"),
        "compared_days": array(string("YYYY-MM-DD"), "compared with these days (same weekday), oldest first"),
        "until_hour": integer("figures from midnight to the end of this hour (0-23)"),
        "text": string("one line for people"),
    }, "an unusual_activity event's data: what, how much, compared with what"),
    "DiaryEpisode": obj({
        "kind": string("what it is", enum=("seen", "away", "resting", "zone", "barking", "fetch", "bookmark")),
        "start": number("unix s"), "end": number("unix s (= start for a moment)"), "seconds": number("length"),
        "text": string("the line a person reads, times in device local time"),
        "figures": {"type": "object", "description": "the episode's numbers (barks, returns, zone, label …)"},
        "snapshot": nullable(obj({"media_id": nullable(string()), "url": nullable(string()),
                                  "thumb_url": nullable(string())}, "the episode's best snapshot")),
    }, "one episode of the dog's day"),
    "Diary": obj({
        "day": string("device-local day, YYYY-MM-DD"),
        "episodes": array(ref("DiaryEpisode"), "in the order of the day"),
        "totals": obj({
            "seen_seconds": number(), "zone_seconds": mapping(number(), "seconds per zone"),
            "posture_seconds": mapping(number(), "seconds per posture"), "barking_minutes": number(),
            "barks": integer("estimated barks"), "fetch_returns": integer(),
            "bookmarks": array(string(), "bookmark labels"),
        }, "the day's figures from the event log"),
        "media": obj({"highlights": nullable(obj({"media_id": nullable(string()), "url": nullable(string())})),
                      "timelapse": nullable(obj({"media_id": nullable(string()), "url": nullable(string())}))},
                     "the day's highlight reel and time-lapse, from highlights_saved / timelapse_saved events"),
        "unusual": array({"type": "object", "description": "an unusual_activity event's data with its ts and seq"},
                         "the day's unusual_activity events"),
        "final": boolean("a finished day, stored once after midnight (false: today so far)"),
        "computed_at": number("unix s"),
        "baseline": obj({"learning_days_left": integer("0 once the rule speaks"), "rule": string()},
                        "unusual for her: how far the learning is"),
    }, "one day of the dog's diary", optional=("baseline",)),
    "Heatmap": obj({
        "cols": integer("grid columns"), "rows": integer("grid rows"),
        "window_seconds": number("how far back it looks"),
        "max_seconds": number("largest cell"), "total_seconds": number("sum of all cells"),
        "seconds": array(number(), "row-major seconds the dog's ground point spent in each cell"),
    }, "where the dog spent its time"),
    "BarkEpisode": obj({
        "start": number("wall time of the first barking window"),
        "duration_s": number("episode length"),
        "peak_score": number("highest score of the dominant class"),
        "barks": integer("loudness onsets: an estimate of the number of barks"),
        "windows": integer("YAMNet windows that counted"),
        "dominant": string("class with the largest summed score", enum=tuple(VOCAL_CLASS_NAMES)),
        "peaks": obj({name: number() for name in VOCAL_CLASS_NAMES}, "peak score per class"),
        "source": string("audio source"),
    }, "a barking episode"),
    "SnapshotSaved": obj({
        "media_id": string("clean JPEG id"), "url": string("/media/{media_id}"),
        "overlay_media_id": string("JPEG with boxes, zones (and keypoints) drawn"),
        "overlay_url": string("/media/{overlay_media_id}"),
        "thumb_media_id": string("small JPEG (about 320 px wide, at most 25 KB) for timelines"),
        "thumb_url": string("/media/{thumb_media_id}"), "thumb_bytes": integer(),
        "event_seq": nullable(integer("seq of the event it illustrates (null when requested)")),
        "event_type": string("that event's type, or 'request'"),
        "track_id": nullable(integer("the dog of a dog_detected snapshot")),
        "bytes": integer(), "overlay_bytes": integer(), "width": integer(), "height": integer(),
        "captured": number("capture time (unix s)"), "content_type": string("image/jpeg"),
    }, "a snapshot on disk"),
    "MediaItem": obj({
        "media_id": string(), "kind": string(enum=MEDIA_KINDS), "created": number("unix s"),
        "bytes": integer(), "content_type": string(), "url": string("/media/{media_id}"),
        "width": integer(), "height": integer(),
        "start": number("clip start; the day's start for highlights and timelapse (unix s)"),
        "duration": number("clip length (s)"), "event_seq": integer("triggering event"),
        "label": string("bookmark labels; the day (YYYY-MM-DD) of a highlights or timelapse video"),
        "overlay_media_id": string("a snapshot's drawn copy"),
        "thumb_media_id": string("a snapshot's thumbnail"), "poster_media_id": string("a clip's poster frame"),
    }, "one stored snapshot, clip, thumbnail or poster",
        optional=("width", "height", "start", "duration", "event_seq", "label", "overlay_media_id", "thumb_media_id",
                  "poster_media_id")),
    "PoseModel": obj({"name": string(), "family": string(), "keypoint_names": array(string()),
                      "skeleton": array(array(integer(), min_items=2, max_items=2)), "licence": string()},
                     "the installed pose model"),
    "Posture": obj({"track_id": integer(), "posture": string(enum=POSTURE_VALUES),
                    "since": nullable(number()), "source": nullable(string()), "confidence": nullable(number())},
                   "one dog's current posture", closed=False),
    "Peer": obj({
        "device_id": string("the peer's DOGMON_DEVICE_ID"), "name": string("its DOGMON_DEVICE_NAME"),
        "version": string("its software version"),
        "urls": array(string(), "its own base URLs (http://host:port/); reach it through /peer/{device_id}/…"),
        "online": nullable(boolean("its availability on the broker; null while unknown (no broker, not yet said)")),
        "last_seen": nullable(number("when anything last came from it (unix s)")),
        "state": {"type": "object", "description": "its retained state (dog presence, posture, zones …), as it "
                                                   "published it: fields of newer versions may be there"},
        "health": nullable(string("from its telemetry", enum=("ok", "degraded"))),
    }, "another device of the home, learnt from the broker (signed with DOGMON_HOME_SECRET)"),
}
