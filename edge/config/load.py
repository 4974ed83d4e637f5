"""Loading: ``device.env`` and the environment read into one :class:`~edge.config.keys.Config`; unknown-key
warnings; keys that are valid alone but not together."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.config.keys import DEFAULT_ENV_FILES, KEYS, KEYS_BY_NAME, SCRIPT_VARIABLES, Config
from edge.config.parse import ConfigError, ConfigErrors
from edge.util.net import is_loopback


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (``#`` comments, optional ``export`` and quotes), as systemd and sh do."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"{path}:{number}", line, "KEY=VALUE lines")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        values[name] = raw
    return values


def unknown_key_warnings(names: Mapping[str, str] | list[str], where: str) -> list[str]:
    """A warning for each ``DOGMON_*`` name that is not a key, naming the nearest known key."""
    out = []
    for name in names:
        if not name.startswith("DOGMON_") or name in KEYS_BY_NAME or name in SCRIPT_VARIABLES:
            continue
        nearest = difflib.get_close_matches(name, KEYS_BY_NAME, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]}?" if nearest else "see docs/configuration.md"
        out.append(f"unknown key {name} in {where} is ignored; {hint}")
    return out


def _readable_env_file(path: Path) -> bool:
    # Any readable non-directory counts, so /dev/null (an empty env) and process substitutions work.
    return path.exists() and not path.is_dir()


def load_config(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config; ``env_file`` None means the first of DEFAULT_ENV_FILES that exists.

    Every invalid value is reported at once (:class:`ConfigErrors`), not only the first.
    """
    environ = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    read_from: Path | None = None
    if env_file is not None:
        if not _readable_env_file(env_file):
            raise ConfigError("--env", str(env_file), "an existing env file")
        file_values, read_from = read_env_file(env_file), env_file
    else:
        for candidate in DEFAULT_ENV_FILES:
            if candidate.is_file():
                file_values, read_from = read_env_file(candidate), candidate
                break
    warnings = unknown_key_warnings(list(file_values), str(read_from)) + unknown_key_warnings(
        [n for n in environ if n not in file_values], "the environment")
    fields: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for key in KEYS:
        raw = environ.get(key.name, file_values.get(key.name, key.default))
        try:
            fields[key.field] = key.parse(raw)
        except ValueError as exc:
            errors.append(ConfigError(key.name, raw, str(exc)))
    if not errors:
        try:
            check_combinations(fields)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        error = errors[0] if len(errors) == 1 else ConfigErrors(errors)
        error.warnings = tuple(warnings)
        raise error
    return Config(**fields, env_file=read_from, warnings=tuple(warnings))


def check_combinations(fields: Mapping[str, Any]) -> None:
    """Keys that are valid alone but not together; the error names both keys."""
    if (fields["tls_cert"] is None) != (fields["tls_key"] is None):
        given, missing = ("DOGMON_TLS_CERT", "DOGMON_TLS_KEY") if fields["tls_key"] is None else \
            ("DOGMON_TLS_KEY", "DOGMON_TLS_CERT")
        raise ConfigError(missing, "", f"a path: {given} is set, and a certificate needs its key (and the key its "
                          "certificate)")
    if fields["ws_token"] == "open" and not is_loopback(fields["ws_host"]):
        # auth off on an address others can reach is an open camera: only for demos on one's own machine
        raise ConfigError("DOGMON_WS_TOKEN", "open", f"a token (or empty) with DOGMON_WS_HOST={fields['ws_host']}: "
                          "open is only allowed with a loopback DOGMON_WS_HOST such as 127.0.0.1")
    fps, absence = fields["detect_fps"], fields["absence_seconds"]
    if fps > 0 and absence < 2.0 / fps:
        # with fewer than two capped detector runs per absence period, one missed run would end presence
        raise ConfigError("DOGMON_DETECT_FPS", f"{fps:g}",
                          f"0 or at least {2.0 / absence:g} with DOGMON_ABSENCE_SECONDS={absence:g} "
                          "(two detector runs per absence period)")
