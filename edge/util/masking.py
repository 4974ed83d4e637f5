"""Masking of credentials in values that are shown: the one helper for check-config, logs, messages and diag.

Owns :func:`mask_credentials` and :class:`RedactingFilter` (every log line passes it, at every level:
request lines with ``?token=``, ``Authorization: Bearer`` and session cookies in debug output).

A configured value can carry a secret as URL userinfo
(``rtsp://user:pass@cam/…``, ``mqtt://user:pass@broker``), as a secret-named query parameter
(``…?password=…``, ``?token=…``) or as a secret-named GStreamer property (``user-pw=…``). Every
URL inside the text is parsed with :mod:`urllib.parse` and its whole userinfo is replaced by ``***``.
A password typed with a raw ``@`` or ``/`` (which should be percent-encoded, but people type it
anyway) makes urllib end the authority too early, so everything up to the **last** ``@`` of the URL
counts as userinfo: masking a little too much is better than showing the tail of a password.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://(\S*)")
_SECRET_NAMES = r"dogmon_session|password|passwd|pass|pwd|user-pw|token|secret|api[_-]?key|key|auth|signature|sig"
_SECRET_PARAM = re.compile(rf"(?i)(?<![A-Za-z0-9_-])({_SECRET_NAMES})=([^&\s!;'\"]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\",;]+")


def _mask_url(scheme: str, rest: str) -> str:
    if "@" in rest:
        rest = f"{MASK}@" + rest.rpartition("@")[2]
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:  # e.g. an unbalanced IPv6 bracket: keep the text, the params are still masked below
        return f"{scheme}://{rest}"
    return urlunsplit(parts)


def mask_credentials(text: str) -> str:
    """``text`` with every URL's userinfo and every secret-named ``name=value`` replaced by ``***``."""
    if not text:
        return text
    masked = _URL.sub(lambda m: _mask_url(m.group(1), m.group(2)), text)
    masked = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", masked)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={MASK}", masked)


class RedactingFilter(logging.Filter):
    """A handler filter: the formatted message with every credential masked (records from any logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's problem to report, not ours
            return True
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
