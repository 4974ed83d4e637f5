"""The other devices of the home, as the broker tells of them: :class:`PeerRegistry` (pure, no I/O).

Owns what is known of each peer and when it is believed: a device is a peer only once its retained
``info`` carries a signature of the home secret (:mod:`edge.util.homesig`); before that, what it
publishes (availability, state, telemetry) is kept aside, bounded, and shown once the info verifies;
events of unverified devices are never relayed. Its availability (``online``/``offline``, the last will)
says whether it is up; its retained ``state`` and ``telemetry`` give dog presence, posture, zones and
health; fields this version does not know are kept in ``state`` as they came and otherwise ignored.
A peer that is offline and has said nothing for ``max_age`` is forgotten (stale retained data), and so
is a device whose info is cleared (an empty retained message). Each method returns whether the list
:meth:`PeerRegistry.peers` shows changed, so the caller pushes it only then.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import orjson

from edge.util.homesig import verify

MAX_AGE = 24 * 3600.0       # an offline peer silent this long is forgotten
UNVERIFIED_AGE = 600.0      # data of a device without a good info is dropped after this long
MAX_DEVICES = 256           # devices remembered at once (peers and unverified); the oldest unverified go first
RECENT_SEQS = 512           # per peer: seqs already relayed (QoS 1 may deliver an event twice)
LEAVES = ("info", "availability", "state", "telemetry", "events")


@dataclasses.dataclass
class Peer:
    device_id: str
    name: str = ""
    version: str = ""
    urls: list[str] = dataclasses.field(default_factory=list)
    info_ts: float | None = None
    verified: bool = False
    online: bool | None = None
    last_seen: float | None = None
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    health: str | None = None
    seen_seqs: set[int] = dataclasses.field(default_factory=set)
    seq_order: deque[int] = dataclasses.field(default_factory=deque)

    def view(self, broker_up: bool) -> dict[str, Any]:
        return {"device_id": self.device_id, "name": self.name, "version": self.version, "urls": list(self.urls),
                "online": self.online if broker_up else None, "last_seen": self.last_seen,
                "state": self.state, "health": self.health}

    def new_seq(self, seq: int) -> bool:
        if seq in self.seen_seqs:
            return False
        self.seen_seqs.add(seq)
        self.seq_order.append(seq)
        while len(self.seq_order) > RECENT_SEQS:
            self.seen_seqs.discard(self.seq_order.popleft())
        return True


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _ts(body: dict[str, Any]) -> float | None:
    ts = body.get("ts")
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None


def _seen(peer: Peer, when: float | None) -> None:
    if when is not None:
        peer.last_seen = max(peer.last_seen or 0.0, when)


def health_of(telemetry: dict[str, Any]) -> str | None:
    """``ok`` / ``degraded`` from a telemetry envelope's data: its ``health`` when it says, else camera and store."""
    said = telemetry.get("health")
    if said in ("ok", "degraded"):
        return str(said)
    camera, store = telemetry.get("camera"), telemetry.get("store")
    if not isinstance(camera, dict) and not isinstance(store, dict):
        return None
    bad = (isinstance(camera, dict) and camera.get("online") is False) or (
        isinstance(store, dict) and store.get("ok") is False)
    return "degraded" if bad else "ok"


class PeerRegistry:
    def __init__(self, secret: str, self_id: str, prefix: str, max_age: float = MAX_AGE) -> None:
        self.secret, self.self_id, self.prefix, self.max_age = secret, self_id, prefix, max_age
        self.devices: dict[str, Peer] = {}
        self.rejected = 0        # info messages whose signature did not verify
        self.relayed = 0
        self.duplicates = 0

    # --- topics ---
    def parse_topic(self, topic: str) -> tuple[str, str] | None:
        """``(device_id, leaf)`` of a peer topic under the prefix; None for ours, others and other leaves."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        device, _, leaf = topic[len(head):].partition("/")
        if not device or device == self.self_id or leaf not in LEAVES:
            return None
        return device, leaf

    def handle(self, topic: str, payload: bytes, now: float,
               retained: bool = False) -> tuple[bool, dict[str, Any] | None]:
        """One broker message: (whether the list changed, the peer's event envelope to relay or None).

        ``retained``: replayed by the broker at subscribe time, so it says nothing of now; the peer counts
        as seen at the time the message carries (a peer that died days ago is not made fresh by it)."""
        parsed = self.parse_topic(topic)
        if parsed is None:
            return False, None
        device, leaf = parsed
        if leaf == "events":
            return False, self.event(device, payload, now)
        changed = {"info": self.info, "availability": self.availability, "state": self.state,
                   "telemetry": self.telemetry}[leaf](device, payload, None if retained else now)
        return changed, None

    # --- what each topic says ---
    def _peer(self, device: str) -> Peer:
        peer = self.devices.get(device)
        if peer is None:
            peer = self.devices[device] = Peer(device)
            if len(self.devices) > MAX_DEVICES:
                unverified = [p for p in self.devices.values() if not p.verified and p is not peer]
                victim = min(unverified or [p for p in self.devices.values() if p is not peer],
                             key=lambda p: p.last_seen or 0.0)
                del self.devices[victim.device_id]
        return peer

    def info(self, device: str, payload: bytes, now: float | None) -> bool:
        """``now``: when it arrived, None when the broker replayed it retained (so is the rest)."""
        if not payload:  # cleared: the device was removed from the home
            gone = self.devices.pop(device, None)
            return gone is not None and gone.verified
        body = _json_object(payload)
        if body is None or body.get("device_id") != device or not verify(self.secret, body):
            self.rejected += 1
            return False
        urls = body.get("urls")
        ts = body.get("ts")
        peer = self._peer(device)
        before = peer.view(True)
        was = peer.verified
        peer.verified = True
        peer.name = str(body.get("name") or device)[:64]
        peer.version = str(body.get("version") or "")[:40]
        peer.urls = [u for u in urls if isinstance(u, str) and u.startswith(("http://", "https://"))][:8] \
            if isinstance(urls, list) else []
        peer.info_ts = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None
        _seen(peer, now if now is not None else peer.info_ts)
        return not was or {**peer.view(True), "last_seen": None} != {**before, "last_seen": None}

    def availability(self, device: str, payload: bytes, now: float | None) -> bool:
        online = {b"online": True, b"offline": False}.get(payload.strip())
        peer = self._peer(device)
        _seen(peer, now)
        changed = peer.online != online
        peer.online = online
        return changed and peer.verified

    def state(self, device: str, payload: bytes, now: float | None) -> bool:
        body = _json_object(payload)
        if body is None:
            return False
        state = {k: v for k, v in body.items() if k not in ("device_id", "ts")}
        peer = self._peer(device)
        _seen(peer, now if now is not None else _ts(body))
        changed = peer.state != state
        peer.state = state
        return changed and peer.verified

    def telemetry(self, device: str, payload: bytes, now: float | None) -> bool:
        body = _json_object(payload)
        data = body.get("data") if body is not None else None
        if body is None or not isinstance(data, dict):
            return False
        peer = self._peer(device)
        _seen(peer, now if now is not None else _ts(body))
        health = health_of(data)
        changed = peer.health != health
        peer.health = health
        return changed and peer.verified

    def event(self, device: str, payload: bytes, now: float) -> dict[str, Any] | None:
        """The event envelope to relay: from a verified peer, its own, with a seq not relayed before."""
        peer = self.devices.get(device)
        if peer is None or not peer.verified:
            return None
        body = _json_object(payload)
        if body is None or body.get("type") != "event" or body.get("device_id") != device:
            return None
        seq = body.get("seq")
        peer.last_seen = now
        if not isinstance(seq, int) or isinstance(seq, bool) or not peer.new_seq(seq):
            self.duplicates += 1
            return None
        self.relayed += 1
        return body

    # --- ageing and views ---
    def age(self, now: float) -> bool:
        """Forget offline peers silent for ``max_age`` and unverified devices after a while; True if one was listed."""
        listed_gone = False
        for device, peer in list(self.devices.items()):
            newest = max(peer.last_seen or 0.0, peer.info_ts or 0.0)
            if peer.verified and peer.online is not True and now - newest > self.max_age:
                del self.devices[device]
                listed_gone = True
            elif not peer.verified and now - (peer.last_seen or 0.0) > UNVERIFIED_AGE:
                del self.devices[device]
        return listed_gone

    def get(self, device: str) -> Peer | None:
        """A verified peer, or None."""
        peer = self.devices.get(device)
        return peer if peer is not None and peer.verified else None

    def peers(self, broker_up: bool = True) -> list[dict[str, Any]]:
        """Every verified peer, by name; ``online`` is null while the broker is not reachable."""
        return [p.view(broker_up) for p in sorted(self.devices.values(), key=lambda p: (p.name, p.device_id))
                if p.verified]
