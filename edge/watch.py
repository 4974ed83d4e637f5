"""``dogmonitor watch``: a running device's messages as readable lines, across device restarts.

Owns the watch loop and its line format. While the device is not up it waits and retries (0.5 s
doubling to 5 s) and says so once; when the device goes away it says so, and again when it is back.
On each connect it asks for stored events with ``get_events``: the last few on the first connect,
the ones it missed (after the last seq it printed) on a reconnect; live events that arrive meanwhile
are held back so every event is printed once, in order. Detection overlays are not printed one per
frame: a line when what is in view changes (``in view: dog#1 0.85`` → ``in view: nothing``), where a
frame without a dog box while the device says a dog is present (``dog_detected`` … ``dog_left``: the
tracker still holds it, e.g. between detector runs) keeps showing the last dog seen (:class:`ViewLine`);
``--all`` prints every overlay.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from ssl import SSLCertVerificationError, SSLContext
from typing import Any

import orjson

from edge.protocol.messages import decode, event_summary
from edge.util.masking import mask_credentials
from edge.util.retry import Backoff

BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 5.0  # a person is watching: retry sooner than the camera does
RECENT_ID = "watch-recent-events"
MISSED_LIMIT = 200


def _stamp(msg: dict[str, Any]) -> str:
    return datetime.datetime.fromtimestamp(msg.get("ts", time.time())).strftime("%H:%M:%S")


def format_event(msg: dict[str, Any]) -> str:
    return f"{_stamp(msg)} EVENT {event_summary(str(msg.get('event_type')), msg.get('seq'), msg.get('data', {}))}"


def in_view(data: dict[str, Any]) -> str:
    """What a detection overlay shows, as a comparable text (``dog#1 0.85, cat#2 0.40`` or ``nothing``)."""
    boxes = sorted(data.get("boxes", []), key=lambda b: (b.get("track_id") is None, b.get("track_id") or 0))
    return ", ".join(f"{b['label']}#{b['track_id']}" for b in boxes) or "nothing"


class ViewLine:
    """What is in view, from detection overlays and presence; :meth:`overlay` gives a line when it changes."""

    def __init__(self) -> None:
        self.present = False       # a dog is present (connection state, then dog_detected / dog_left)
        self.view: str | None = None
        self.shows_dog = False     # the last line printed named a dog

    def reset(self, present: bool) -> None:
        self.present, self.view, self.shows_dog = present, None, False

    def event(self, msg: dict[str, Any]) -> str | None:
        """Follow presence; when the dog left while a dog was shown, the line saying nothing is in view now
        (the next frames without a dog would say it later, after the event line)."""
        event_type = msg.get("event_type")
        if event_type == "dog_detected":
            self.present = True
        elif event_type == "dog_left":
            self.present = False
            if self.shows_dog:
                self.view, self.shows_dog = in_view({"boxes": []}), False
                return f"{_stamp(msg)} in view: nothing"
        return None

    def overlay(self, msg: dict[str, Any]) -> str | None:
        boxes = msg.get("data", {}).get("boxes", [])
        dogs = any(b.get("label") == "dog" for b in boxes)
        if not dogs and self.present and self.shows_dog:
            return None  # the dog is still there (no detection on this frame): keep the last dog shown
        view = in_view({"boxes": boxes})
        if view == self.view:
            return None
        self.view, self.shows_dog = view, dogs
        scores = ", ".join(f"{b['label']}#{b['track_id']} {b['confidence']:.2f}" for b in boxes)
        return f"{_stamp(msg)} in view: {scores or 'nothing'}"


def format_message(msg: dict[str, Any]) -> str | None:
    """One readable line per message; None to skip."""
    stamp = _stamp(msg)
    kind = msg.get("type")
    data = msg.get("data", {})
    if kind == "event":
        return format_event(msg)
    if kind == "overlay":
        if msg.get("overlay_type") == "detection":
            boxes = data.get("boxes", [])
            labels = ", ".join(f"{b['label']}#{b['track_id']} {b['confidence']:.2f}" for b in boxes) or "nothing"
            return f"{stamp} overlay detection: {labels}"
        return f"{stamp} overlay {msg.get('overlay_type')}"
    if kind == "telemetry":
        pipe = data.get("pipeline", {})
        camera = data.get("camera") or {}
        camera_text = "" if camera.get("online") else f" camera=OFFLINE({camera.get('reason') or '?'})"
        return (f"{stamp} telemetry cpu={data.get('cpu_percent')}% temp={data.get('cpu_temperature_c')} "
                f"inference={pipe.get('inference_fps')}fps dropped={pipe.get('dropped_frames')} "
                f"clients={data.get('websocket', {}).get('clients')}{camera_text}")
    if kind == "connection":
        state = data.get("state", {})
        postures = data.get("postures") or []  # one {track_id, posture, …} per dog in view
        posture = ", ".join(f"#{p.get('track_id')} {p.get('posture')}" for p in postures) or "-"
        return (f"{stamp} connected to {data.get('device_id')} v{data.get('software_version')} "
                f"frame={data.get('frame')} source={data.get('source')} dog_present={state.get('presence')} "
                f"posture={posture} last_seq={data.get('last_seq')}")
    if kind == "analytics":
        counts = ", ".join(f"{k} {v}" for k, v in sorted(data.get("event_counts", {}).items()))
        return (f"{stamp} analytics {data.get('day')}: activity {data.get('activity_minutes')} min, "
                f"posture min {data.get('posture_minutes') or '-'}, zone min {data.get('zone_minutes') or '-'}, "
                f"events: {counts or 'none'}")
    if kind in ("error", "reply", "gap"):
        return f"{stamp} {kind}: " + " ".join(f"{k}={v}" for k, v in data.items())
    return f"{stamp} {kind}: {data}"


class Watch:
    """The reconnecting watch loop; ``say`` gets each line (print by default)."""

    def __init__(self, url: str, headers: dict[str, str] | None, show_all: bool = False, recent: int = 5,
                 say: Callable[[str], None] | None = None,
                 ssl: Callable[[], SSLContext | None] = lambda: None) -> None:
        self.url, self.headers, self.show_all, self.recent = url, headers, show_all, recent
        self.ssl = ssl  # per attempt: verifies a wss:// device (its own CA, made at its first start); None for ws://
        self.say = say or (lambda line: print(line, flush=True))
        self.shown_url = mask_credentials(url)
        self.last_seq: int | None = None  # the last event seq printed
        self.view = ViewLine()  # what the last printed detection overlay showed

    def note(self, text: str) -> None:
        self.say(f"{datetime.datetime.now().strftime('%H:%M:%S')} -- {text}")

    def run(self) -> int:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        backoff, waiting_said, connected_before = Backoff(BACKOFF_INITIAL, BACKOFF_MAX), False, False
        while True:
            try:
                with connect(self.url, additional_headers=self.headers, open_timeout=5, ssl=self.ssl()) as ws:
                    if connected_before:
                        self.note("device is back")
                    connected_before, waiting_said = True, False
                    backoff.reset()
                    self.view.reset(False)
                    reason = self.session(ws)
                self.note(f"device went away ({reason}); waiting for it to come back")
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self.say(f"error: {self.shown_url} refused the connection ({status}); "
                             "set DOGMON_WS_TOKEN if the device requires a token")
                    return 1
                if not waiting_said:  # e.g. 503: full or starting
                    self.note(f"device at {self.shown_url} answered {status}; retrying")
                    waiting_said = True
            except ConnectionClosed as exc:
                self.note(f"device went away ({exc}); waiting for it to come back")
            except SSLCertVerificationError as exc:
                # Never retried without verifying: the answer is a device this machine cannot trust.
                self.say(f"error: {self.shown_url}: the certificate does not verify ({exc.verify_message}); "
                         "watch trusts the device's own CA (DOGMON_DATA_DIR/tls/ca.crt): run it with the "
                         "device's env file")
                return 1
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                if not waiting_said:
                    what = "is not up yet" if not connected_before else "is still away"
                    self.note(f"device at {self.shown_url} {what} ({exc.__class__.__name__}: {exc}); "
                              "waiting and retrying (Ctrl-C to stop)")
                    waiting_said = True
            time.sleep(backoff.failed())

    def session(self, ws: Any) -> str:
        """Print one connection's messages until it closes; return why it ended."""
        from websockets.exceptions import ConnectionClosed

        held: list[dict[str, Any]] | None = None  # live events held back until the stored ones are printed
        try:
            for raw in ws:
                msg = decode(raw)
                kind = msg.get("type")
                if kind == "connection":
                    self.view.reset(bool(msg.get("data", {}).get("state", {}).get("presence")))
                    self.say(format_message(msg) or "")
                    held = []
                    self._ask_for_stored(ws, int(msg.get("data", {}).get("last_seq") or 0))
                elif kind == "reply" and msg.get("data", {}).get("id") == RECENT_ID:
                    self._print_stored(msg["data"])
                    for event in held or []:
                        self._print_event(event)
                    held = None
                elif kind == "error" and msg.get("data", {}).get("id") == RECENT_ID:
                    self.note(f"cannot read stored events: {msg['data'].get('message')}")
                    for event in held or []:
                        self._print_event(event)
                    held = None
                elif kind == "event":
                    left = self.view.event(msg)
                    if left is not None:
                        self.say(left)
                    if held is not None:
                        held.append(msg)
                    else:
                        self._print_event(msg)
                elif kind == "overlay" and not self.show_all:
                    self._print_overlay_change(msg)
                else:
                    line = format_message(msg)
                    if line:
                        self.say(line)
        except ConnectionClosed as exc:
            return str(exc)
        close = ws.close_code
        return f"closed {close}" if close is not None else "closed"

    def _ask_for_stored(self, ws: Any, device_last_seq: int) -> None:
        if self.last_seq is not None and self.last_seq <= device_last_seq:
            since, limit = self.last_seq, MISSED_LIMIT  # a reconnect: what we missed
        else:  # the first connect, or a device whose log is new: the last few
            since, limit = max(0, device_last_seq - self.recent), self.recent
            self.last_seq = None
        ws.send(orjson.dumps({"type": "get_events", "id": RECENT_ID, "since": since, "limit": limit}))

    def _print_stored(self, reply: dict[str, Any]) -> None:
        stored = [e for e in reply.get("events", []) if self.last_seq is None or e.get("seq", 0) > self.last_seq]
        if not stored:
            return
        self.note(f"{'events while away' if self.last_seq is not None else 'last events'} ({len(stored)}):")
        for event in stored:
            self._print_event(event)
        if len(stored) >= MISSED_LIMIT:
            self.note(f"… more events are stored: get_events with since={self.last_seq}")

    def _print_event(self, msg: dict[str, Any]) -> None:
        seq = msg.get("seq")
        if isinstance(seq, int):
            if self.last_seq is not None and seq <= self.last_seq:
                return  # printed already (stored and live overlap)
            self.last_seq = seq
        self.say(format_event(msg))

    def _print_overlay_change(self, msg: dict[str, Any]) -> None:
        kind = msg.get("overlay_type")
        data = msg.get("data", {})
        if kind == "detection":
            line = self.view.overlay(msg)
            if line is not None:
                self.say(line)
        elif kind == "zones":
            zones = data.get("zones", [])
            occupied = [z.get("name") for z in zones if z.get("occupied")]
            self.say(f"{_stamp(msg)} zones: {len(zones)}, occupied: {', '.join(occupied) or 'none'}")
