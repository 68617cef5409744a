"""Run one external command, logging it and keeping what a failure needs to be understood."""

from __future__ import annotations

import logging
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from moby_asm import errors
from moby_asm.errors import MobyAsmError

logger = logging.getLogger(__name__)

TERMINATE_GRACE_SECONDS = 5.0
"""How long a stopped program may take to exit after SIGTERM before it gets SIGKILL."""

POLL_SECONDS = 0.1
"""How often `stream_tool` checks its cancel event while it waits for output."""


class ToolMissing(MobyAsmError):
    """A required program is not installed; `hint` describes how to install it."""

    def __init__(self, program: str, hint: str):
        self.program = program
        self.hint = hint
        super().__init__(f"{program} is not installed or not on PATH; {hint}")


class ToolFailed(MobyAsmError):
    """A program exited with an error; the command, exit code and stderr are kept."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str):
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{shlex.join(self.command)} failed with exit code {returncode}: {stderr.strip()}")


class Cancelled(errors.Cancelled):
    """A program stopped because its caller set the cancel event, with its command line in `command`."""

    def __init__(self, command: Sequence[str]):
        self.command = list(command)
        super().__init__(f"{shlex.join(self.command)} was cancelled and has been stopped")


def run_tool(command: Sequence[str], *, input: bytes | None = None, hint: str = "", timeout: float | None = None) -> bytes:
    """Run `command` and return its standard output; raise ToolMissing or ToolFailed."""
    if shutil.which(command[0]) is None:
        raise ToolMissing(command[0], hint or "install it and try again")
    logger.debug("running %s", shlex.join(command))
    completed = subprocess.run(list(command), input=input, capture_output=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise ToolFailed(command, completed.returncode, completed.stderr.decode("utf-8", "replace"))
    return completed.stdout


def stream_tool(command: Sequence[str], *, on_line: Callable[[str], None], cancel: threading.Event | None = None,
                hint: str = "", tail: int = 40) -> None:
    """Run `command`, passing each line of its combined stdout and stderr to `on_line` as it arrives.

    Raises ToolMissing when the program is not on PATH, and ToolFailed with the last `tail`
    lines as its stderr when it exits with an error. When `cancel` is set, or `on_line` or
    a KeyboardInterrupt raises, the program and the processes it started are stopped
    (SIGTERM, then SIGKILL after TERMINATE_GRACE_SECONDS) before Cancelled or the original
    exception is raised. `on_line` is called in the calling thread.
    """
    process = _start(command, hint)
    last_lines: deque[str] = deque(maxlen=tail)
    try:
        for line in _read_lines(process, command, cancel):
            last_lines.append(line)
            on_line(line)
        returncode = _wait(process, command, cancel)
    except BaseException:
        stop_process(process)
        raise
    if returncode != 0:
        raise ToolFailed(command, returncode, "\n".join(last_lines))


def _start(command: Sequence[str], hint: str) -> subprocess.Popen:
    if shutil.which(command[0]) is None:
        raise ToolMissing(command[0], hint or "install it and try again")
    logger.debug("running %s", shlex.join(command))
    # The program gets its own process group so that stopping it also stops the
    # processes it started, which would otherwise keep the output pipe open.
    try:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                                process_group=0)
    except FileNotFoundError as error:
        raise ToolMissing(command[0], hint or "install it and try again") from error


def _read_lines(process: subprocess.Popen, command: Sequence[str], cancel: threading.Event | None) -> Iterator[str]:
    """Yield the output lines without their line ends, polling `cancel` while a reader thread waits for them.

    The reader thread alone reads and closes the pipe. A process that left the program's
    process group can keep the pipe open after a stop, and closing it from this thread
    would then block until that process exits.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        with process.stdout:
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, name=f"output of {command[0]}", daemon=True).start()
    while True:
        _check_cancel(command, cancel)
        try:
            line = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if line is None:
            return
        yield line


def _wait(process: subprocess.Popen, command: Sequence[str], cancel: threading.Event | None) -> int:
    while True:
        _check_cancel(command, cancel)
        try:
            return process.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue


def _check_cancel(command: Sequence[str], cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(command)


def stop_process(process: subprocess.Popen) -> None:
    """Stop the program (with its process group when it leads one): SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is not None:
        return
    logger.info("stopping %s (pid %d)", process.args[0], process.pid)
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=TERMINATE_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("%s (pid %d) did not exit %g s after SIGTERM; sending SIGKILL",
                       process.args[0], process.pid, TERMINATE_GRACE_SECONDS)
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, signal_number: int) -> None:
    """Signal the program's process group, or only the program when it shares its caller's group."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal_number)
        else:
            process.send_signal(signal_number)
    except ProcessLookupError:
        pass
