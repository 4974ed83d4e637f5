"""The home's peer list from broker messages (PeerRegistry) and the home secret's signatures, as pure logic."""

from __future__ import annotations

import orjson
import pytest

from edge.core.commands import CommandError
from edge.transports.mqtt.commands import check_home_sig
from edge.transports.mqtt.registry import MAX_AGE, PeerRegistry
from edge.util.homesig import peer_token, sign_command, signed, verify

pytestmark = pytest.mark.unit

SECRET = "correct horse battery staple"
T0 = 1_700_000_000.0


def info(device: str = "kitchen", secret: str = SECRET, ts: float = T0, **extra: object) -> bytes:
    return orjson.dumps(signed(secret, {"device_id": device, "name": device.title(), "version": "0.1.0",
                                        "urls": [f"http://{device}.lan:8765/"], "ts": ts, **extra}))


def registry() -> PeerRegistry:
    return PeerRegistry(SECRET, "garden", "dogmonitor")


def feed(reg: PeerRegistry, device: str, leaf: str, payload: bytes, now: float = T0,
         retained: bool = False) -> tuple[bool, dict | None]:
    return reg.handle(f"dogmonitor/{device}/{leaf}", payload, now, retained)


def test_a_peer_joins_with_its_state_and_health_and_leaves_by_its_last_will() -> None:
    reg = registry()
    # What a starting device sends, in its order: availability and state come before its info.
    assert feed(reg, "kitchen", "availability", b"online") == (False, None)
    assert feed(reg, "kitchen", "state", orjson.dumps({"device_id": "kitchen", "ts": T0, "presence": True,
                                                       "posture": "sit"})) == (False, None)
    assert reg.peers() == []  # nothing is listed before its signed info
    assert feed(reg, "kitchen", "info", info())[0] is True
    [peer] = reg.peers()
    assert peer == {"device_id": "kitchen", "name": "Kitchen", "version": "0.1.0",
                    "urls": ["http://kitchen.lan:8765/"], "online": True, "last_seen": T0,
                    "state": {"presence": True, "posture": "sit"}, "health": None}
    telemetry = {"type": "telemetry", "device_id": "kitchen", "ts": T0 + 1,
                 "data": {"camera": {"online": False}, "store": {"ok": True}}}
    assert feed(reg, "kitchen", "telemetry", orjson.dumps(telemetry), T0 + 1)[0] is True
    assert reg.peers()[0]["health"] == "degraded"
    telemetry["data"] = {"health": "ok", "camera": {"online": True}}
    assert feed(reg, "kitchen", "telemetry", orjson.dumps(telemetry), T0 + 2)[0] is True
    assert feed(reg, "kitchen", "telemetry", orjson.dumps(telemetry), T0 + 3)[0] is False  # no change, no push
    # SIGKILL: the broker publishes the last will; the change is reported at once.
    assert feed(reg, "kitchen", "availability", b"offline", T0 + 4)[0] is True
    assert reg.peers()[0]["online"] is False
    assert reg.peers(broker_up=False)[0]["online"] is None  # our broker is down: unknown, not offline
    assert feed(reg, "kitchen", "availability", b"online", T0 + 9)[0] is True
    assert reg.peers()[0]["online"] is True


def test_a_bad_signature_is_never_listed_and_its_events_are_never_relayed() -> None:
    reg = registry()
    assert feed(reg, "intruder", "info", info("intruder", secret="another home's secret!!"))[0] is False
    assert feed(reg, "intruder", "availability", b"online")[0] is False
    event = orjson.dumps({"v": 1, "type": "event", "event_type": "dog_detected", "device_id": "intruder",
                          "ts": T0, "seq": 1, "data": {}})
    assert feed(reg, "intruder", "events", event) == (False, None)
    # A good info with one field changed after signing does not verify either.
    tampered = orjson.loads(info("kitchen"))
    tampered["urls"] = ["http://evil.example:80/"]
    assert feed(reg, "kitchen", "info", orjson.dumps(tampered))[0] is False
    # Nor one claiming another device's id on its own topic.
    assert feed(reg, "kitchen", "info", info("garden2"))[0] is False
    assert reg.peers() == [] and reg.rejected == 3
    assert reg.get("intruder") is None and reg.get("kitchen") is None


def test_unknown_fields_of_newer_versions_are_kept_out_of_the_way() -> None:
    reg = registry()
    assert feed(reg, "kitchen", "info", info(version="9.0.0", features=["lidar"], room={"floor": 2}))[0]
    feed(reg, "kitchen", "state", orjson.dumps({"device_id": "kitchen", "ts": T0, "presence": False,
                                                "tail_wag_hz": 3.5}))
    [peer] = reg.peers()
    assert set(peer) == {"device_id", "name", "version", "urls", "online", "last_seen", "state", "health"}
    assert peer["version"] == "9.0.0" and peer["state"]["tail_wag_hz"] == 3.5
    assert feed(reg, "kitchen", "telemetry", b'{"type":"telemetry","data":{"quantum":1}}')[0] is False
    assert reg.peers()[0]["health"] is None
    assert feed(reg, "kitchen", "state", b"not json")[0] is False  # garbage leaves the state as it was
    assert reg.peers()[0]["state"]["presence"] is False


def test_events_are_relayed_once_each_from_verified_peers_only() -> None:
    reg = registry()
    feed(reg, "kitchen", "info", info())

    def event(seq: int, device: str = "kitchen") -> bytes:
        return orjson.dumps({"v": 1, "type": "event", "event_type": "dog_detected", "device_id": device,
                             "ts": T0 + seq, "seq": seq, "data": {"track_id": 1}})

    _, relayed = feed(reg, "kitchen", "events", event(7))
    assert relayed is not None and relayed["seq"] == 7 and relayed["device_id"] == "kitchen"
    assert feed(reg, "kitchen", "events", event(7)) == (False, None)  # QoS 1 delivered it twice
    assert feed(reg, "kitchen", "events", event(8, device="garden")) == (False, None)  # not its own
    assert feed(reg, "kitchen", "events", event(8))[1] is not None
    assert reg.relayed == 2 and reg.duplicates == 1
    # This device's own topics and unrelated leaves are not peers' business.
    assert reg.parse_topic("dogmonitor/garden/events") is None
    assert reg.parse_topic("dogmonitor/kitchen/overlay") is None
    assert reg.parse_topic("other/kitchen/info") is None


def test_stale_retained_peers_age_out_and_live_ones_stay() -> None:
    reg = registry()
    long_ago = T0 - 3 * 86400
    # Retained at subscribe time: a device that died three days ago (its will said offline).
    feed(reg, "shed", "info", info("shed", ts=long_ago), T0, retained=True)
    feed(reg, "shed", "availability", b"offline", T0, retained=True)
    # One that is up and has been for days: its info is old but it is online.
    feed(reg, "kitchen", "info", info("kitchen", ts=long_ago), T0, retained=True)
    feed(reg, "kitchen", "availability", b"online", T0, retained=True)
    assert {p["device_id"] for p in reg.peers()} == {"shed", "kitchen"}
    assert reg.peers()[1]["last_seen"] == long_ago  # retained data does not make "shed" look fresh
    assert reg.age(T0) is True
    assert [p["device_id"] for p in reg.peers()] == ["kitchen"]
    # The kitchen goes offline; it is kept for a day, then forgotten.
    feed(reg, "kitchen", "availability", b"offline", T0 + 10)
    assert reg.age(T0 + MAX_AGE - 1) is False and reg.peers()
    assert reg.age(T0 + MAX_AGE + 11) is True and reg.peers() == []
    # An empty retained info removes a device at once.
    feed(reg, "porch", "info", info("porch"))
    assert feed(reg, "porch", "info", b"")[0] is True and reg.peers() == []


def test_home_signatures() -> None:
    body = signed(SECRET, {"device_id": "a", "ts": 1.5, "urls": []})
    assert verify(SECRET, body) and not verify("x" * 16, body) and not verify("", body)
    assert peer_token(SECRET) != peer_token(SECRET + "!") and len(peer_token(SECRET)) == 64
    cmd = sign_command(SECRET, "set_zones", {"id": "r1", "zones": []}, now=T0)
    with pytest.raises(CommandError) as refused:  # signed long ago: a replayed copy
        check_home_sig("set_zones", orjson.dumps(cmd), SECRET)
    assert refused.value.code == "unauthorized" and refused.value.request_id == "r1"
    fresh = sign_command(SECRET, "set_zones", {"id": "r2", "zones": []})
    check_home_sig("set_zones", orjson.dumps(fresh), SECRET)  # good: no exception
    with pytest.raises(CommandError):  # the same signature on another command
        check_home_sig("snapshot", orjson.dumps(fresh), SECRET)
    with pytest.raises(CommandError):  # another home
        check_home_sig("set_zones", orjson.dumps(fresh), "another home's secret!!")
    check_home_sig("snapshot", b'{"id": 3}', SECRET)  # without home_sig: judged as before (broker ACL)
