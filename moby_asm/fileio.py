"""Atomic file writes: readers see the old content or the new, never a mix."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from moby_asm.errors import MobyAsmError


class WriteFailed(MobyAsmError):
    """A file could not be written; the previous content, if any, is unchanged."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}; the previous file, if any, is unchanged")


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    try:
        _atomic_write(path, data, mode)
    except OSError as error:
        raise WriteFailed(path, error.strerror or str(error)) from error


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100


def exchange_folders(first: Path, second: Path) -> bool:
    """Swap two folders in one step with Linux's renameat2(RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot exchange
        return False
    raise OSError(error, os.strerror(error), str(second))


def replace_folder(staging: Path, target: Path) -> None:
    """Put the complete folder `staging` in place of `target`; readers see one or the other.

    Where the kernel cannot exchange two names in one step, the old folder is renamed
    aside first, so a reader may briefly find no folder at all.
    """
    if not target.exists():
        os.replace(staging, target)
        return
    if exchange_folders(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, retired / "previous")
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired / "previous", target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


STALE_AFTER_SECONDS = 3600
"""Age after which a staging folder counts as left behind; younger ones may belong to a running process."""


def remove_stale_staging(parent: Path, name: str) -> None:
    """Remove staging folders that an interrupted run left beside `parent / name` over an hour ago."""
    import time

    cutoff = time.time() - STALE_AFTER_SECONDS
    try:
        leftovers = [p for p in parent.iterdir()
                     if p.name.startswith(f".{name}.") and p.is_dir() and p.stat().st_mtime < cutoff]
    except OSError:
        return
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)
