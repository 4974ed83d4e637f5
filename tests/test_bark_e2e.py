"""End to end: a running device with a file audio source publishes the bark episode on WebSocket and MQTT,
and a missing microphone is reported while video keeps streaming."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.helpers import MqttCollector, events, ws_collect, ws_connect

pytestmark = pytest.mark.e2e

BARK_CLIP = "audio/bark_esc50_4-191687-A-0.wav"


def test_bark_clip_gives_one_bark_event_on_websocket_and_mqtt(start_device, mosquitto, media: Path) -> None:
    subscriber = MqttCollector(mosquitto.host, mosquitto.port, "dogmonitor/testdog/#")
    try:
        device = start_device({"DOGMON_AUDIO_SOURCE": str(media / BARK_CLIP), "DOGMON_AUDIO_LOOP": "0",
                               "DOGMON_MQTT_URL": mosquitto.url})
        started = time.monotonic()
        with ws_connect(device.ws_url) as ws:
            got = ws_collect(ws, lambda m: bool(events(m, "audio_offline")), timeout=30)
        elapsed = time.monotonic() - started
        first = got[0]
        assert first["type"] == "connection"
        assert first["data"]["audio"]["source"].endswith("bark_esc50_4-191687-A-0.wav")
        barks = events(got, "bark")
        assert len(barks) == 1, [m.get("event_type") for m in events(got)]
        bark = barks[0]["data"]
        assert bark["peak_score"] >= 0.5 and bark["barks"] >= 2 and bark["dominant"] == "bark"
        assert 3.5 <= bark["duration_s"] <= 5.0
        assert abs(bark["start"] - (barks[0]["ts"] - 5.0)) < 1.5  # the episode began when the clip did
        # The clip plays in real time: the event cannot come before its 5 s of audio were heard.
        assert elapsed >= 4.5
        assert not events(got, "continuous_barking") and not events(got, "howl")
        online = events(got, "audio_online")
        offline = events(got, "audio_offline")[0]
        assert (not online or online[0]["seq"] < barks[0]["seq"]) and offline["data"]["reason"] == "end of file"
        audio_telemetry = [m["data"]["audio"] for m in got if m["type"] == "telemetry"]
        assert any(t["episode_active"] and t["scores"]["bark"] >= 0.3 and t["level_dbfs"] > -60
                   for t in audio_telemetry)  # telemetry shows the live scores and level while barking

        subscriber.wait_for(lambda s: any(e["event_type"] == "bark" for e in s.json_on("/events")), 15,
                            "bark on MQTT")
        mqtt_barks = [e for e in subscriber.json_on("/events") if e["event_type"] == "bark"]
        assert {e["seq"] for e in mqtt_barks} == {barks[0]["seq"]}
        assert mqtt_barks[0]["data"] == bark

        def bark_state_settled(s: MqttCollector) -> bool:
            states = s.json_on("/state")
            return bool(states) and (states[-1].get("bark") or {}).get("last") is not None

        subscriber.wait_for(bark_state_settled, 10, "bark state on MQTT")
        state = subscriber.json_on("/state")[-1]["bark"]
        assert state["active"] is False and state["last"]["type"] == "bark"
        assert state["last"]["peak_score"] == bark["peak_score"]
        assert any((s.get("bark") or {}).get("active") for s in subscriber.json_on("/state"))  # live while barking
    finally:
        subscriber.close()


def _telemetry_after_detections(messages: list[dict]) -> bool:
    """A telemetry message sent after ten detection overlays: its rates describe a pipeline that is running."""
    detections = [i for i, m in enumerate(messages) if m.get("overlay_type") == "detection"]
    return len(detections) >= 10 and any(m["type"] == "telemetry" for m in messages[detections[9]:])


def test_missing_microphone_reports_audio_offline_and_video_keeps_streaming(start_device) -> None:
    device = start_device({"DOGMON_AUDIO_SOURCE": "alsa:hw:9,0"})  # no such card
    with ws_connect(device.ws_url + "?since=0") as ws:  # the report came at start-up: replay it
        got = ws_collect(ws, lambda m: bool(events(m, "audio_offline")), timeout=20)
        offline = events(got, "audio_offline")[0]
        after = ws_collect(ws, _telemetry_after_detections, timeout=30)
    assert offline["data"]["source"] == "alsa:plughw:9,0"
    assert offline["data"]["retry_in"] > 0 and offline["data"]["reason"]
    assert not events(after, "audio_online")
    telemetry = [m for m in after if m["type"] == "telemetry"][-1]["data"]
    assert telemetry["audio"]["online"] is False
    assert telemetry["pipeline"]["inference_fps"] > 1  # the camera pipeline never waited on audio
    assert telemetry["audio"]["reconnects"] >= 1  # still retrying in the background
    health = orjson.loads(urllib.request.urlopen(device.http_url + "/healthz", timeout=5).read())
    assert health["status"] == "degraded" and "microphone offline" in health["problems"]
    assert device.proc.poll() is None
