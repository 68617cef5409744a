"""Advisory file locks (flock) with a timeout, shared between the processes that use one store."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moby_asm.store.errors import StoreLocked

POLL_INTERVAL_SECONDS = 0.05


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float = 60.0) -> Iterator[None]:
    """Hold a shared or exclusive flock on `path` for the duration of the block.

    The lock file is created if needed and never removed, since removing it would let two
    processes lock two different files of the same name. Raise StoreLocked after `timeout`
    seconds. The lock belongs to this open file, so a second lock on the same file in one
    process waits like any other process would.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(descriptor, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, path, timeout)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _acquire(descriptor: int, operation: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreLocked(path, timeout) from None
            time.sleep(POLL_INTERVAL_SECONDS)
