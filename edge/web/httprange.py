"""HTTP ``Range`` for media downloads: one byte range per request, parsed as pure logic.

Safari will not play a ``<video>`` from a server that ignores ``Range``, so ``/media/<id>`` answers
a single range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) with 206 and the slice. A request for
several ranges at once is answered with the whole file (200), which RFC 9110 allows.
"""

from __future__ import annotations

import re

RANGE = re.compile(r"bytes=(\d*)-(\d*)")
MAX_DIGITS = 18  # no file has more bytes than this; a longer number (int() refuses > 4300 digits) is a 416


class Unsatisfiable(ValueError):
    """The range lies outside the file: answer 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive ``(first, last)`` byte positions to send, or None for the whole file."""
    if not header:
        return None
    match = RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges or another unit: the whole file
    first, last = match.groups()
    if len(first) > MAX_DIGITS:
        raise Unsatisfiable(header[:40])
    last = last if len(last) <= MAX_DIGITS else str(10**MAX_DIGITS)  # "to the end", however far
    if not first and not last:
        return None
    if not first:  # the last n bytes
        count = int(last)
        if count == 0:
            raise Unsatisfiable(header)
        return max(0, size - count), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or start > end:
        raise Unsatisfiable(header)
    return start, end

