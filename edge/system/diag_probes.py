"""The checks ``dogmonitor diag`` runs over the network: the running device (``/healthz`` and its telemetry),
its WebSocket as a tablet sees it, the camera as the device reports it, and the MQTT broker.

Safe while the service runs: the broker check uses its own client id and publishes one message on a
private topic; nothing else is written.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.request
import uuid
from typing import Any

from edge.config import Config
from edge.system.diag_checks import FAIL, PASS, WARN, Check
from edge.web.local import local_device


def device_url(config: Config) -> str:
    return local_device(config).address


def auth_headers(config: Config) -> dict[str, str] | None:
    from edge.web.pairing import local_token

    token = local_token(config.ws_token, config.data_dir)  # configured, or the one the device made
    return {"Authorization": f"Bearer {token}"} if token else None


def _tls_advice(config: Config) -> str:
    if config.tls_cert is not None:
        return (f"DOGMON_TLS_CERT ({config.tls_cert}) must name the host diag dials and chain to a CA this "
                "machine trusts")
    return (f"the device serves a certificate its own CA ({config.data_dir}/tls/ca.crt) does not vouch for: "
            "is another process on this port, or DOGMON_DATA_DIR not the running device's?")


def check_device(config: Config, wait_telemetry: float) -> Check:
    """/healthz, then the WebSocket: a ``connection`` message and one ``telemetry`` message."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    device = local_device(config)
    headers = auth_headers(config)
    health_url = device.http("/healthz")
    try:
        request = urllib.request.Request(health_url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=2, context=device.client_ssl(health_url)) as response:
            health = json.loads(response.read())
    except OSError as exc:
        unverified = exc if isinstance(exc, ssl.SSLCertVerificationError) else getattr(exc, "reason", None)
        if isinstance(unverified, ssl.SSLCertVerificationError):
            return Check("device", FAIL, f"{health_url}: the certificate does not verify "
                         f"({unverified.verify_message})", _tls_advice(config))
        return Check("device", FAIL, f"no answer on {health_url} ({exc})",
                     "the device is not running: sudo systemctl start dogmonitor (or `dogmonitor run`); "
                     "logs: journalctl -u dogmonitor -n 50")
    data: dict[str, Any] = {"health": health}
    ws_url = device.ws()
    try:
        with connect(ws_url, additional_headers=headers, open_timeout=3, ssl=device.client_ssl(ws_url)) as ws:
            deadline = time.monotonic() + wait_telemetry
            while time.monotonic() < deadline and "telemetry" not in data:
                message = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
                if message.get("type") in ("connection", "telemetry") and message["type"] not in data:
                    data[message["type"]] = message.get("data", {})
    except InvalidStatus as exc:
        return Check("device", FAIL, f"WebSocket refused ({exc.response.status_code})",
                     "DOGMON_WS_TOKEN in this env file differs from the running device's", data)
    except (OSError, TimeoutError) as exc:
        if "connection" not in data:
            return Check("device", FAIL, f"WebSocket {ws_url} did not answer ({exc})",
                         "restart the service: sudo systemctl restart dogmonitor", data)
    if "connection" not in data:
        return Check("device", FAIL, "no connection message on the WebSocket", "restart the service", data)
    version = data["connection"].get("software_version")
    problems = health.get("problems", [])
    detail = (f"v{version} up {health.get('uptime_s', 0):.0f}s, {health.get('clients', 0)} client(s), "
              f"last event #{health.get('last_seq')}")
    if "telemetry" not in data:
        return Check("device", WARN, detail + f"; no telemetry within {wait_telemetry:.0f}s",
                     "DOGMON_TELEMETRY_INTERVAL may be long; otherwise the device loop is stuck", data)
    if problems:
        return Check("device", WARN, detail + "; problems: " + ", ".join(problems),
                     "see the camera/broker checks below", data)
    return Check("device", PASS, detail, data=data)


def check_websocket(config: Config, timeout: float = 3.0) -> Check:
    """Connect to ``/ws/ui`` as a tablet does, with this env file's token, and read the ``connection`` message."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    device = local_device(config)
    url = device.ws()
    started = time.monotonic()
    try:
        with connect(url, additional_headers=auth_headers(config), open_timeout=timeout,
                     ssl=device.client_ssl(url)) as ws:
            first = json.loads(ws.recv(timeout=timeout))
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            return Check("websocket", FAIL, f"{url} refused the token (401)",
                         "DOGMON_WS_TOKEN in this env file differs from the running device's")
        if status == 503:
            return Check("websocket", WARN, f"{url} refused: too many clients (503)",
                         "DOGMON_WS_MAX_CLIENTS tablets are connected already: close one or raise the limit")
        return Check("websocket", FAIL, f"{url} refused the connection ({status})", "check the device's log")
    except ssl.SSLCertVerificationError as exc:
        return Check("websocket", FAIL, f"{url}: the certificate does not verify ({exc.verify_message})",
                     _tls_advice(config))
    except (OSError, TimeoutError, ValueError) as exc:
        return Check("websocket", FAIL, f"{url} did not answer ({exc})",
                     "is the device running (sudo systemctl status dogmonitor)? check DOGMON_WS_HOST and "
                     "DOGMON_WS_PORT")
    ms = (time.monotonic() - started) * 1000
    if not isinstance(first, dict) or first.get("type") != "connection":
        kind = first.get("type") if isinstance(first, dict) else type(first).__name__
        return Check("websocket", FAIL, f"{url}: the first message is {kind!r}, not 'connection'",
                     "something else answers on this port, or the device is stuck: restart the service")
    data = first.get("data") or {}
    device_id = data.get("device_id")
    detail = f"{url}: connection message in {ms:.0f} ms (device {device_id}, v{data.get('software_version')})"
    if device_id != config.device_id:
        return Check("websocket", WARN, detail,
                     f"another device answers here, not {config.device_id}: check DOGMON_WS_PORT and "
                     "DOGMON_DEVICE_ID in this env file")
    return Check("websocket", PASS, detail, data={"connect_ms": round(ms, 1)})


def camera_from_device(device: Check) -> Check:
    telemetry = device.data.get("telemetry", {})
    camera = telemetry.get("camera") or {}
    pipeline = telemetry.get("pipeline") or {}
    frame = device.data.get("connection", {}).get("frame", {})
    detail = (f"{camera.get('source')}: {frame.get('w')}x{frame.get('h')}, capture {pipeline.get('capture_fps')} fps, "
              f"inference {pipeline.get('inference_fps')} fps, {camera.get('reconnects', 0)} reconnect(s) "
              "(from the running device)")
    if not camera.get("online"):
        reason = camera.get("reason") or ""
        if reason.startswith("no such file"):
            return Check("camera", FAIL, f"{camera.get('source')}: OFFLINE, {reason} (from the running device)",
                         "DOGMON_SOURCE names a file that does not exist: correct the path "
                         "(demo: run `dogmonitor fetch-models`)")
        return Check("camera", FAIL, detail.replace(": ", ": OFFLINE, ", 1) + (f"; {reason}" if reason else ""),
                     "check the cable/URL and DOGMON_SOURCE; `ls /dev/video*`; is the user in group video?")
    return Check("camera", PASS, detail)


def check_broker(config: Config, timeout: float = 3.0) -> Check:
    """Connect with our own client id, subscribe, publish, time the round trip; read availability."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    target = config.mqtt
    if target is None:
        return Check("broker", PASS, "MQTT off (DOGMON_MQTT_URL empty)")
    where = f"{target.host}:{target.port}"
    base = f"{config.mqtt_prefix}/{config.device_id}"
    probe = f"{base}/diag/{uuid.uuid4().hex[:12]}"
    connected, got, ready = threading.Event(), threading.Event(), threading.Event()
    state: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        state["reason"] = str(reason)
        if not reason.is_failure:
            client.subscribe([(probe, 1), (f"{base}/availability", 1)])
        connected.set()

    def on_subscribe(*args: Any) -> None:
        ready.set()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == probe:
            state["rtt"] = time.monotonic() - state["sent"]
            got.set()
        else:
            state["availability"] = message.payload.decode(errors="replace")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dogmonitor-diag-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        import ssl
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    deadline = time.monotonic() + timeout
    try:
        client.connect(target.host, target.port, keepalive=10)
    except OSError as exc:
        return Check("broker", FAIL, f"cannot reach {where}: {exc}",
                     "is the broker running (systemctl status mosquitto)? check DOGMON_MQTT_URL and the firewall")
    client.loop_start()
    try:
        if not connected.wait(max(0.1, deadline - time.monotonic())):
            return Check("broker", FAIL, f"{where} accepted TCP but did not answer MQTT CONNECT",
                         "is that port really an MQTT broker (TLS needs mqtts://)?")
        if "rtt" not in state and state.get("reason", "Success") != "Success":
            advice = ("check the user and password in DOGMON_MQTT_URL" if "auth" in state["reason"].lower()
                      or "password" in state["reason"].lower() else "check the broker's log")
            return Check("broker", FAIL, f"{where} refused the connection: {state['reason']}", advice)
        ready.wait(max(0.1, deadline - time.monotonic()))
        state["sent"] = time.monotonic()
        client.publish(probe, b"diag", qos=1)
        if not got.wait(max(0.1, deadline - time.monotonic())):
            return Check("broker", FAIL, f"{where}: connected but our own message did not come back",
                         "the broker's ACLs may forbid this prefix; check the broker's log")
        time.sleep(0.05)  # the retained availability arrives right after SUBACK
    finally:
        client.disconnect()
        client.loop_stop()
    availability = state.get("availability", "none")
    detail = f"{where}: round trip {state['rtt'] * 1000:.1f} ms; {base}/availability={availability}"
    return Check("broker", PASS, detail, data={"rtt_ms": round(state["rtt"] * 1000, 2),
                                               "availability": availability})
