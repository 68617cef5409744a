"""Read a blocking stream from another thread, so that the reader can give up when asked to stop.

A docker SDK stream blocks until the engine sends the next message, which can take minutes
during a silent `RUN` step. The stream is read by a daemon thread; the caller polls for
items and raises Cancelled when the cancel event is set. The abandoned connection closes
when the process ends, and the engine then cancels the request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from moby_asm.errors import Cancelled

T = TypeVar("T")
_END = object()
POLL_SECONDS = 0.2


def cancellable(items: Iterable[T], cancel: threading.Event | None, what: str) -> Iterator[T]:
    """Yield the items of a blocking iterable; raise Cancelled as soon as `cancel` is set."""
    if cancel is None:
        yield from items
        return
    pending: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for item in items:
                pending.put((item, None))
        except BaseException as error:  # handed to the consumer, which raises it
            pending.put((_END, error))
            return
        pending.put((_END, None))

    threading.Thread(target=pump, name=f"stream {what}", daemon=True).start()
    while True:
        if cancel.is_set():
            raise Cancelled(f"stopped {what}")
        try:
            item, error = pending.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if error is not None:
            raise error
        if item is _END:
            return
        yield item
