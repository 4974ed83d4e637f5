"""``python -m edge.config --docs``: print docs/configuration.md as generated from the keys."""

from __future__ import annotations

import argparse
import sys

from edge.config.docs import config_markdown


def main(argv: list[str] | None = None) -> int:
    """``python -m edge.config --docs``: print docs/configuration.md as generated from KEYS."""
    parser = argparse.ArgumentParser(prog="python -m edge.config", description=main.__doc__)
    parser.add_argument("--docs", action="store_true", required=True, help="print docs/configuration.md")
    parser.parse_args(argv)
    sys.stdout.write(config_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
