"""Run QEMU, copy its serial console to the terminal and a log file, and check expectations.

A smoke test passes when every expected text has appeared on the console. It fails when
the time runs out, the kernel panics, a text marked as a failure appears, or QEMU exits
first. The error then carries the last lines of the console. QEMU is always stopped before
`watch_console` returns.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.errors import Cancelled, MobyAsmError
from moby_asm.fileio import WriteFailed
from moby_asm.tools.command import ToolMissing, stop_process

PANIC = re.compile(r"Kernel panic - not syncing[^\r\n]*")
TAIL_LINES = 30
INSTALL_HINT = "install QEMU, for example the Debian package qemu-system-x86 (or qemu-system-arm for arm64)"
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r")


def strip_controls(data: bytes) -> bytes:
    """Return console output without terminal control sequences and carriage returns."""
    return _ESCAPES.sub(b"", data)


class ControlFilter:
    """Removes terminal control sequences from a byte stream, also when one is split between two reads."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        start = data.rfind(b"\x1b")
        # A sequence ends with a letter; an escape with no letter after it yet waits for the next read.
        if start >= 0 and not re.search(rb"[A-Za-z]", data[start + 1:]):
            data, self._pending = data[:start], data[start:]
        else:
            self._pending = b""
        return strip_controls(data)


class BootFailed(MobyAsmError):
    """The boot did not meet its expectations; `tail` contains the last console lines."""

    def __init__(self, reason: str, tail: str, log: Path):
        self.reason = reason
        self.tail = tail
        self.log = log
        super().__init__(f"{reason}\nlast console lines (the whole console is in {log}):\n{tail}")


@dataclass
class BootResult:
    """The outcome of a boot: seconds until every expectation was met (or QEMU exited), and the log file."""

    seconds: float
    log: Path
    met: list[str] = field(default_factory=list)


@dataclass
class _Console:
    expect: list[str]
    fail_on: list[str] = field(default_factory=list)
    text: str = ""
    scanned: int = 0
    met: list[str] = field(default_factory=list)

    def add(self, data: bytes) -> None:
        self.text += strip_controls(data).decode("utf-8", "replace")
        self.met = [item for item in self.expect if item in self.text]

    def failure(self) -> str | None:
        """Return why the boot failed when a line since the last call shows a panic or a `fail_on` text."""
        start = self.text.rfind("\n", 0, self.scanned) + 1
        self.scanned = len(self.text)
        for line in self.text[start:].splitlines():
            panic = PANIC.search(line)
            if panic:
                return f"the kernel panicked: {panic.group(0).strip()}"
            found = next((text for text in self.fail_on if text in line), None)
            if found is not None:
                return f"the console showed {found!r}: {line.strip()}"
        return None

    def tail(self) -> str:
        return "\n".join(self.text.splitlines()[-TAIL_LINES:])

    @property
    def missing(self) -> list[str]:
        return [item for item in self.expect if item not in self.met]


def watch_console(command: list[str], log: Path, expect: list[str], timeout: float | None,
                  show: Callable[[bytes], None], interactive: bool = False,
                  fail_on: list[str] | None = None) -> BootResult:
    """Run `command`, passing console output to `show` and `log`; return once expectations are met or QEMU exits.

    Raise BootFailed on a kernel panic, on a line holding a text of `fail_on`, on timeout
    with expectations missing, or when QEMU exits before they are met.
    """
    if shutil.which(command[0]) is None:
        raise ToolMissing(command[0], INSTALL_HINT)
    console = _Console(list(expect), list(fail_on or ()))
    started = time.monotonic()
    with _open_log(log) as log_file:
        # An interactive QEMU stays in the terminal's foreground process group, where it may read
        # the keyboard. A smoke test's QEMU gets a process group of its own, so stopping it ends the whole group.
        process = subprocess.Popen(command, stdin=None if interactive else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   process_group=None if interactive else 0)
        try:
            _follow(process, console, log_file, show, started, timeout, log)
        except KeyboardInterrupt:
            raise Cancelled("the boot was interrupted; QEMU was stopped") from None
        finally:
            stop_process(process)
            process.stdout.close()
    return BootResult(time.monotonic() - started, log, console.met)


def _open_log(log: Path):
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        return open(log, "wb")
    except OSError as error:
        raise WriteFailed(log, error.strerror or str(error)) from error


def _follow(process: subprocess.Popen, console: _Console, log_file, show, started: float,
            timeout: float | None, log: Path) -> None:
    descriptor = process.stdout.fileno()
    while True:
        if timeout is not None and time.monotonic() - started > timeout:
            if not console.expect:
                return
            raise BootFailed(_timed_out(console, timeout), console.tail(), log)
        ready, _, _ = select.select([descriptor], [], [], 0.2)
        data = os.read(descriptor, 65536) if ready else b""
        if ready and not data:
            _check_exit(process, console, log)
            return
        if data:
            log_file.write(data)
            log_file.flush()
            console.add(data)
            show(data)
            failure = console.failure()
            if failure:
                raise BootFailed(failure, console.tail(), log)
            if console.expect and not console.missing:
                return


def _check_exit(process: subprocess.Popen, console: _Console, log: Path) -> None:
    code = process.wait()
    if console.missing:
        raise BootFailed(f"QEMU exited (code {code}) before the console showed "
                         f"{', '.join(map(repr, console.missing))}", console.tail(), log)
    if code != 0:
        raise BootFailed(f"QEMU exited with code {code}", console.tail(), log)


def _timed_out(console: _Console, timeout: float) -> str:
    return (f"after {timeout:g} s the console had not shown {', '.join(map(repr, console.missing))}; "
            "the boot hung or the machine is slow: raise --timeout if the log shows progress")
