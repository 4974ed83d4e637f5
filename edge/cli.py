"""Command line: ``dogmonitor [--env FILE] {run,fetch-models,check-config,watch,diag}``.

Exit codes: 0 success, 1 runtime failure (with a line saying what to do), 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from edge.config import Config, ConfigError, load_config

EXIT_CONFIG = 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.env) if args.env else None)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.app import StartupError, run_device
    from edge.models import FetchError

    config = _config(args)
    _setup_logging(config.log_level)
    try:
        return asyncio.run(run_device(config))
    except (StartupError, FetchError) as exc:
        logging.getLogger("dogmonitor").error("%s", exc)
        return 1
    except OSError as exc:  # e.g. port in use
        logging.getLogger("dogmonitor").error("cannot start: %s", exc)
        return 1


def cmd_fetch_models(args: argparse.Namespace) -> int:
    from edge.models import FetchError, fetch_all, load_manifests

    config = _config(args)
    _setup_logging(config.log_level)
    manifests = load_manifests()
    try:
        for path in fetch_all(config.model_dir, config.mirror, [m for m in manifests if not m.spec.get("optional")]):
            print(f"ok  {path}")
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Optional models (e.g. YAMNet for bark detection, which has no download URL) must not fail the others.
    for manifest in (m for m in manifests if m.spec.get("optional")):
        try:
            for path in fetch_all(config.model_dir, config.mirror, [manifest]):
                print(f"ok  {path}")
        except FetchError as exc:
            print(f"skipped (optional, needed when {manifest.spec.get('needed_when', 'its feature is on')}): {exc}",
                  file=sys.stderr)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    width = max(len(k) for k in config.describe())
    for key, value in config.describe().items():
        print(f"{key:<{width}} = {value}")
    return 0


def format_message(msg: dict[str, Any]) -> str | None:
    """One readable line per message for ``watch``; None to skip (e.g. frequent overlays)."""
    stamp = datetime.datetime.fromtimestamp(msg.get("ts", time.time())).strftime("%H:%M:%S")
    kind = msg.get("type")
    data = msg.get("data", {})
    if kind == "event":
        details = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("box", "frame"))
        box = data.get("box")
        where = f" box=({box['x']:.0f},{box['y']:.0f} {box['w']:.0f}x{box['h']:.0f})" if box else ""
        return f"{stamp} EVENT #{msg.get('seq')} {msg.get('event_type')} {details}{where}"
    if kind == "overlay":
        boxes = data.get("boxes", [])
        labels = ", ".join(f"{b['label']}#{b['track_id']} {b['confidence']:.2f}" for b in boxes) or "nothing"
        return f"{stamp} overlay {msg.get('overlay_type')}: {labels}"
    if kind == "telemetry":
        pipe = data.get("pipeline", {})
        return (f"{stamp} telemetry cpu={data.get('cpu_percent')}% temp={data.get('cpu_temperature_c')} "
                f"inference={pipe.get('inference_fps')}fps dropped={pipe.get('dropped_frames')} "
                f"clients={data.get('websocket', {}).get('clients')}")
    if kind == "connection":
        state = data.get("state", {})
        return (f"{stamp} connected to {data.get('device_id')} v{data.get('software_version')} "
                f"frame={data.get('frame')} dog_present={state.get('presence')} last_seq={data.get('last_seq')}")
    if kind == "analytics":
        counts = ", ".join(f"{k} {v}" for k, v in sorted(data.get("event_counts", {}).items()))
        return (f"{stamp} analytics {data.get('day')}: activity {data.get('activity_minutes')} min, "
                f"posture min {data.get('posture_minutes') or '-'}, zone min {data.get('zone_minutes') or '-'}, "
                f"events: {counts or 'none'}")
    if kind in ("error", "reply", "gap"):
        return f"{stamp} {kind}: " + " ".join(f"{k}={v}" for k, v in data.items())
    return f"{stamp} {kind}: {data}"


def cmd_watch(args: argparse.Namespace) -> int:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from edge.messages import decode

    url = args.url
    token = os.environ.get("DOGMON_WS_TOKEN", "")
    if url is None:
        try:
            config = _config(args)
            token = token or config.ws_token
            host = "127.0.0.1" if config.ws_host in ("0.0.0.0", "::") else config.ws_host
            url = f"ws://{host}:{config.ws_port}/ws/ui"
        except ConfigError:
            url = "ws://127.0.0.1:8765/ws/ui"
    headers = {"Authorization": f"Bearer {token}"} if token else None
    last_overlay = 0.0
    try:
        with connect(url, additional_headers=headers, open_timeout=5) as ws:
            for raw in ws:
                msg = decode(raw)
                if msg.get("type") == "overlay" and not args.all:
                    if time.monotonic() - last_overlay < 1.0:
                        continue
                    last_overlay = time.monotonic()
                line = format_message(msg)
                if line:
                    print(line, flush=True)
    except InvalidStatus as exc:
        print(f"error: {url} refused the connection ({exc.response.status_code}); "
              "set DOGMON_WS_TOKEN if the device requires a token", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach {url}: {exc}; is the device running (dogmonitor run)?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dogmonitor", description="Watch a dog with a camera; tell the household.")
    parser.add_argument("--env", help="env file (default ./device.env, then /etc/dogmonitor/device.env)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the device process (default)").set_defaults(func=cmd_run)
    sub.add_parser("fetch-models", help="fetch and verify models and demo media").set_defaults(func=cmd_fetch_models)
    sub.add_parser("check-config", help="print the effective configuration; exit 2 if invalid").set_defaults(
        func=cmd_check_config)
    watch = sub.add_parser("watch", help="print a running device's live messages")
    watch.add_argument("url", nargs="?", help="ws://HOST:PORT/ws/ui (default: from the config)")
    watch.add_argument("--all", action="store_true", help="print every overlay, not one a second")
    watch.set_defaults(func=cmd_watch)
    diag = sub.add_parser("diag", help="check config, camera, models, broker, service and system; "
                                       "exit 0 pass, 1 warn, 2 fail")
    diag.add_argument("--json", action="store_true", help="machine-readable report")
    diag.add_argument("--service", default="dogmonitor.service", help="systemd unit to inspect")
    diag.set_defaults(func=cmd_diag)
    return parser


def cmd_diag(args: argparse.Namespace) -> int:
    from edge.diag import main as diag_main

    logging.basicConfig(level="ERROR", stream=sys.stderr)  # the report is the output; library chatter is not
    return diag_main(Path(args.env) if args.env else None, args.json, args.service)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_run)
    try:
        return func(args)
    except ConfigError as exc:
        print(f"dogmonitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
