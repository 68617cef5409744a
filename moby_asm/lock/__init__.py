"""The lock file: the resolved selection, its boot order and a checksum of its inputs."""

from moby_asm.lock.lockfile import (
    LOCK_FILE,
    LockMismatch,
    compare_locks,
    locked_versions,
    read_lock,
    render_lock,
    write_lock,
)

__all__ = ["LOCK_FILE", "LockMismatch", "compare_locks", "locked_versions", "read_lock", "render_lock", "write_lock"]
