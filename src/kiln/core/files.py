"""Writing files so that a crash leaves the old content or the new, never a torn one.

Used by every store that keeps a small file of its own (the install secret, certificates, the
audit log's head anchor and archive segments): one implementation of the fsync dance.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

POSIX = os.name == "posix"
# Refuse to follow a symlink planted where a private file should be.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600), replacing it atomically."""
    atomic_write(path, text.encode("utf-8"), mode=0o600)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` with permission bits `mode`; readers see the old or new file whole.

    The data goes to a fresh temporary file beside `path` (created with `mode` from the start,
    so it is never briefly readable by others), is fsynced, then renamed over `path`; the
    directory is fsynced so the rename survives a power loss.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_BINARY, mode)
    try:
        try:
            if POSIX:
                os.fchmod(fd, mode)  # the umask may have removed bits we want, e.g. 0644
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` (mode 0600) unless it exists; False if it already did.

    A hard link of a complete, fsynced temporary file gives "create if absent" and "complete or
    absent" at once, which O_EXCL on the final name alone cannot (a crash would leave it empty).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_BINARY, 0o600)
    try:
        try:
            if POSIX:
                os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    if not POSIX:
        return  # Windows cannot open a directory for fsync; NTFS journals the rename.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
