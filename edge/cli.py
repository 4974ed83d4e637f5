"""Command line: ``dogmonitor [--env FILE] {run,fetch-models,check-config,watch,diag,pair} [--env FILE]``.

Exit codes: 0 success, 1 runtime failure (with a line saying what to do), 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from pathlib import Path

from edge.config import DEFAULT_ENV_FILES, Config, ConfigError, load_config

EXIT_CONFIG = 2


def _setup_logging(level: str) -> None:
    from edge.util.masking import RedactingFilter

    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # on the handler, so records of every logger pass it
        handler.addFilter(RedactingFilter())
    if logging.getLogger().level > logging.DEBUG:
        # uvicorn logs every WebSocket accepted at INFO; our own lines say what matters (refusals per spell)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.env) if args.env else None)


def _log_config_warnings(config: Config) -> None:
    for warning in config.warnings:
        logging.getLogger("dogmonitor").warning("%s", warning)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.core.models import FetchError
    from edge.device import StartupError, run_device

    config = _config(args)
    _setup_logging(config.log_level)
    _log_config_warnings(config)
    try:
        return asyncio.run(run_device(config))
    except (StartupError, FetchError) as exc:
        logging.getLogger("dogmonitor").error("%s", exc)
        return 1
    except OSError as exc:  # e.g. the port was taken between the start-up check and the server's bind
        if exc.errno == errno.EADDRINUSE:
            logging.getLogger("dogmonitor").error("cannot start: port %s is already in use: another dogmonitor is "
                                                  "probably running; set DOGMON_WS_PORT to a free port", config.ws_port)
        else:
            logging.getLogger("dogmonitor").error("cannot start: %s", exc)
        return 1


def cmd_fetch_models(args: argparse.Namespace) -> int:
    from edge.core.models import FetchError, fetch_all, load_manifests

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
    env_file = Path(args.env) if args.env else None
    try:
        config = load_config(env_file)
    except ConfigError as exc:
        shown = env_file or next((p for p in DEFAULT_ENV_FILES if p.is_file()), None)
        print(f"# env file: {shown or 'none found (defaults and the environment only)'}")
        for warning in exc.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for error in exc.errors:
            print(f"dogmonitor: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"# env file: {config.env_file or 'none found (defaults and the environment only)'}; "
          "the process environment overrides it")
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    width = max(len(k) for k in config.describe())
    for key, value in config.describe().items():
        print(f"{key:<{width}} = {value}")
    missing = missing_source_file(config.source)
    if missing is not None:
        # Not a parse error: the device starts and keeps retrying (a file may appear later), but a check says so.
        print(f"dogmonitor: DOGMON_SOURCE={config.source!r}: {missing}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def missing_source_file(source: str) -> str | None:
    """Why a file-path ``DOGMON_SOURCE`` cannot be opened now (None: not a file path, or it is there)."""
    if source == "demo" or source.isdigit() or source.startswith(("gst:", "/dev/")) or "://" in source:
        return None  # the demo (fetched at start), a camera, a pipeline or a stream: checked by `diag`
    path = Path(source).expanduser()
    if not path.exists():
        return f"no such file ({path.resolve()}); the device would start and keep retrying it"
    if not path.is_file():
        return f"not a file ({path.resolve()})"
    return None


def cmd_watch(args: argparse.Namespace) -> int:
    from edge.watch import Watch
    from edge.web.local import LocalDevice, local_device

    url = args.url
    token = os.environ.get("DOGMON_WS_TOKEN", "")
    try:
        config = _config(args)
        device = local_device(config)
        if url is None:
            from edge.web.pairing import local_token

            token = token or local_token(config.ws_token, config.data_dir)
    except ConfigError:
        device = LocalDevice("127.0.0.1", 8765, False, None)
    url = url or device.ws()
    headers = {"Authorization": f"Bearer {token}"} if token and token != "open" else None
    try:
        return Watch(url, headers, show_all=args.all, ssl=lambda: device.client_ssl(url)).run()
    except KeyboardInterrupt:
        return 0


def cmd_pair(args: argparse.Namespace) -> int:
    """A new one-time pairing code, written where the device reads it (its data dir), and the URL to open."""
    from edge.web.local import web_scheme
    from edge.web.origins import DeviceNames
    from edge.web.pairing import Pairing, pairing_lines

    config = _config(args)
    if config.ws_token == "open":
        print("auth is off (DOGMON_WS_TOKEN=open): nothing to pair; open the page directly", file=sys.stderr)
        return 1
    names = DeviceNames(config.ws_host, lambda: config.ws_port, config.ws_origins, schemes=(web_scheme(config),))
    try:
        lines = pairing_lines(names.urls(), Pairing(config.data_dir), True, qr=True)
    except OSError as exc:
        print(f"dogmonitor: cannot write a pairing code to {config.data_dir}: {exc} (run as the device's user)",
              file=sys.stderr)
        return 1
    print("\n".join(lines[:-1]))  # the code and its QR code (the last line says to run this command)
    return 0


ENV_HELP = "env file (default ./device.env, then /etc/dogmonitor/device.env; /dev/null: none)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dogmonitor", description="Watch a dog with a camera; tell the household.")
    parser.add_argument("--env", help=ENV_HELP)
    # Every subcommand takes --env too (before or after its name); SUPPRESS keeps a subcommand without it
    # from overwriting the value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", default=argparse.SUPPRESS, help=ENV_HELP)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", parents=[common], help="run the device process (default)").set_defaults(func=cmd_run)
    sub.add_parser("fetch-models", parents=[common], help="fetch and verify models and demo media").set_defaults(
        func=cmd_fetch_models)
    sub.add_parser("check-config", parents=[common], help="print the effective configuration; exit 2 if invalid"
                   ).set_defaults(func=cmd_check_config)
    watch = sub.add_parser("watch", parents=[common], help="print a running device's live messages")
    watch.add_argument("url", nargs="?", help="ws://HOST:PORT/ws/ui or wss://… (default: from the config; wss is "
                       "verified with the device's own CA, DOGMON_DATA_DIR/tls/ca.crt)")
    watch.add_argument("--all", action="store_true",
                       help="print every overlay, not only a line when what is in view changes")
    watch.set_defaults(func=cmd_watch)
    diag = sub.add_parser("diag", parents=[common], help="check config, camera, models, broker, service and "
                          "system; exit 0 nothing wrong with the device, 1 device problems, 2 config invalid")
    diag.add_argument("--json", action="store_true", help="machine-readable report")
    diag.add_argument("--service", default="dogmonitor.service", help="systemd unit to inspect")
    diag.set_defaults(func=cmd_diag)
    sub.add_parser("pair", parents=[common], help="print a new one-time pairing code and the URL to open it at "
                   "(the running device reads it from DOGMON_DATA_DIR)").set_defaults(func=cmd_pair)
    return parser


def cmd_diag(args: argparse.Namespace) -> int:
    from edge.system.diag import main as diag_main

    logging.basicConfig(level="ERROR", stream=sys.stderr)  # the report is the output; library chatter is not
    return diag_main(Path(args.env) if args.env else None, args.json, args.service)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_run)
    try:
        return func(args)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(f"dogmonitor: warning: {warning}", file=sys.stderr)
        for error in exc.errors:
            print(f"dogmonitor: {error}", file=sys.stderr)
        return EXIT_CONFIG
