"""A SHA-256 over a folder tree: every entry by name and mode, files by content, links by target.

Used for Docker build contexts and template folders. A digest is kept for the process
while no entry's mode, size or modification time changes, so repeated calls during one
command hash each tree once.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

Entry = tuple[str, Path, os.stat_result]
_DIGESTS: dict[tuple, str] = {}


def tree_digest(root: Path, salt: str = "", extra_files: Sequence[Path] = ()) -> str:
    """Return the hex SHA-256 over the tree at `root`, `salt` and the contents of `extra_files`.

    Folders count too, empty ones included; symbolic links are not followed. An unreadable
    entry raises OSError with its file name.
    """
    entries = tree_entries(root)
    key = (str(root), salt, tuple((name, _signature(status)) for name, _, status in entries),
           tuple((str(path), _signature(path.stat())) for path in extra_files))
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for name, path, status in entries:
            digest.update(f"{name}\0{status.st_mode:o}\0".encode())
            if stat.S_ISLNK(status.st_mode):
                digest.update(os.readlink(path).encode() + b"\0")
            elif stat.S_ISREG(status.st_mode):
                digest.update(file_digest(path))
        for path in extra_files:
            digest.update(b"extra\0" + file_digest(path))
        digest.update(salt.encode())
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def tree_entries(root: Path) -> list[Entry]:
    """List every entry under `root`, itself included, by relative name, sorted, without following links."""
    def fail(error: OSError) -> None:
        raise error

    entries = []
    for folder, folders, files in os.walk(root, onerror=fail):
        folders.sort()
        base = Path(folder)
        entries.append((base.relative_to(root).as_posix() + "/", base, os.lstat(base)))
        for name in sorted(files + [f for f in folders if (base / f).is_symlink()]):
            path = base / name
            entries.append((path.relative_to(root).as_posix(), path, os.lstat(path)))
    return entries


def file_digest(path: Path) -> bytes:
    """Return the raw SHA-256 of a file's contents, read in chunks."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").digest()


def _signature(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_mode, status.st_size, status.st_mtime_ns
