"""Model manifests and the fetcher: every weight or demo file comes from a manifest in ``models/``.

A manifest (``models/*.json``) names its files, each with pinned sha256 values, a path inside a
local mirror folder (``DOGMON_MIRROR``, laid out like ``../shared``: ``models/`` and ``media/``) and
download URLs. :func:`fetch_all` copies from the mirror when one is given, else downloads, always
checks the sha256, and writes atomically (temporary file, fsync, rename), so a half-written model
never sits under its final name. Weights are never committed; only manifests are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from edge.util.fsutil import atomic_write

log = logging.getLogger(__name__)

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "models"  # the repository's models/ folder
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A file could not be fetched or verified; the message says which, from where and what to do."""


@dataclasses.dataclass(frozen=True)
class ManifestFile:
    name: str
    sha256: tuple[str, ...]
    urls: tuple[str, ...]
    mirror: str | None = None
    size: int | None = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    kind: str
    files: tuple[ManifestFile, ...]
    spec: dict[str, Any]
    path: Path

    @property
    def main_file(self) -> str:
        return self.files[0].name


def load_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = tuple(
            ManifestFile(
                name=f["name"],
                sha256=tuple(h.lower() for h in f["sha256"]),
                urls=tuple(f.get("urls", ())),
                mirror=f.get("mirror"),
                size=f.get("size"),
            )
            for f in raw["files"]
        )
        if not files or any("/" in f.name or f.name.startswith(".") for f in files):
            raise ValueError("files must be plain file names")
        return Manifest(name=raw["name"], kind=raw["kind"], files=files, spec=raw, path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise FetchError(f"manifest {path} is malformed ({exc}); it needs name, kind and files[]") from exc


def load_manifests(directory: Path = MANIFEST_DIR) -> list[Manifest]:
    return [load_manifest(p) for p in sorted(directory.glob("*.json"))]


def find_manifest(kind: str, directory: Path = MANIFEST_DIR) -> Manifest | None:
    return next((m for m in load_manifests(directory) if m.kind == kind), None)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_present(directory: Path, entry: ManifestFile) -> bool:
    target = directory / entry.name
    return target.is_file() and sha256_of(target) in entry.sha256


def _copy_from(source: BinaryIO) -> Callable[[BinaryIO], None]:
    """A writer for :func:`atomic_write` that copies ``source`` in chunks (never whole in memory)."""
    return lambda fh: shutil.copyfileobj(source, fh, CHUNK)


def _write_verified(entry: ManifestFile, directory: Path, origin: str,
                    copy_into: Callable[[BinaryIO], None]) -> Path:
    """Write to a temp file via ``copy_into(fh)``, check the hash, then rename into place."""
    directory.mkdir(parents=True, exist_ok=True)

    def check(tmp: Path) -> None:
        digest = sha256_of(tmp)
        if digest not in entry.sha256:
            raise FetchError(
                f"{entry.name} from {origin} has sha256 {digest}, expected one of {', '.join(entry.sha256)}; "
                "the file is corrupt or not the pinned one: fetch it again, or fix the mirror copy"
            )

    return atomic_write(directory / entry.name, copy_into, check=check)


def fetch_file(entry: ManifestFile, directory: Path, mirror: Path | None, timeout: float = 60.0) -> Path:
    """Put one verified file into ``directory``; skip it when the present copy already verifies."""
    if is_present(directory, entry):
        return directory / entry.name
    if mirror is not None:
        if entry.mirror is None:
            raise FetchError(f"{entry.name}: the manifest gives no mirror path; unset DOGMON_MIRROR to download")
        source = mirror / entry.mirror
        if not source.is_file():
            raise FetchError(
                f"{entry.name}: not found in the mirror at {source}; check DOGMON_MIRROR "
                "(it must hold models/ and media/ like ../shared) or unset it to download"
            )
        with source.open("rb") as src:
            return _write_verified(entry, directory, str(source), _copy_from(src))
    errors = []
    for url in entry.urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (pinned https URLs)
                return _write_verified(entry, directory, url, _copy_from(response))
        except FetchError as exc:
            errors.append(str(exc))
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise FetchError(
        f"{entry.name}: could not download ({'; '.join(errors) or 'no URL in manifest'}); "
        "check the network, or set DOGMON_MIRROR to a folder holding models/ and media/"
    )


def fetch_all(directory: Path, mirror: Path | None,
              manifests: list[Manifest] | None = None) -> list[Path]:
    paths = []
    for manifest in manifests if manifests is not None else load_manifests():
        for entry in manifest.files:
            path = fetch_file(entry, directory, mirror)
            log.info("%s: %s verified", manifest.name, path)
            paths.append(path)
    return paths
