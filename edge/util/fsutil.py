"""Files that must survive power loss and stay private: atomic writes, folder fsync, 0700/0600 modes.

Owns the one way the device writes a file it keeps (zones, media, the seq floor, fetched models):
write a temporary file beside the target, fsync it, rename it over the target, fsync the folder. A
reader, or a power cut, sees the old file or the new one, never half of it. Everything the device
keeps is private to its user whatever the process umask: folders 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PART_SUFFIX = ".part"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700; an existing folder we own is tightened too."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    with contextlib.suppress(PermissionError):  # not ours (e.g. a mount point): leave its mode alone
        if path.stat().st_mode & 0o777 != PRIVATE_DIR:
            os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> None:
    """Make an existing file 0600 (files made before modes were enforced, or by a library)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o777 != PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None], *,
                 check: Callable[[Path], None] | None = None, sync_dir: bool = True) -> Path:
    """Write ``data`` (bytes, or a function writing into the open file) to ``path`` atomically, mode 0600.

    ``check(tmp_path)`` runs after the data is on disk and before the rename; raising there leaves the
    old ``path`` untouched (used to verify a download's hash). The temporary file is removed on any failure.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE)
            if isinstance(data, bytes | bytearray | memoryview):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(tmp)
        _rename(tmp, path, sync_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def commit_file(part: Path, final: Path, sync_dir: bool = True) -> None:
    """Give a file another writer produced (e.g. OpenCV's MP4) its final name: fsync, 0600, rename."""
    with open(part, "rb+") as handle:
        os.fchmod(handle.fileno(), PRIVATE_FILE)
        os.fsync(handle.fileno())
    _rename(part, final, sync_dir)


def _rename(done: Path, final: Path, sync_dir: bool) -> None:
    # The data is on disk (fsynced) before the rename, and the rename is on disk before we return.
    os.replace(done, final)
    if sync_dir:
        fsync_dir(final.parent)
