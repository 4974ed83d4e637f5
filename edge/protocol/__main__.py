"""``python -m edge.protocol``: print the AsyncAPI document (``--docs``: the Markdown reference instead)."""

from __future__ import annotations

import argparse
import sys

import orjson

from edge.protocol.asyncapi import asyncapi_document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.protocol", description=__doc__)
    parser.add_argument("--docs", action="store_true", help="print docs/protocol.md as generated")
    args = parser.parse_args(argv)
    if args.docs:
        from edge.protocol.docs import protocol_markdown

        sys.stdout.write(protocol_markdown())
    else:
        sys.stdout.write(orjson.dumps(asyncapi_document(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
