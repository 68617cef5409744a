"""Run one external command, logging it and keeping what a failure needs to be understood."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from moby_asm.errors import MobyAsmError

logger = logging.getLogger(__name__)


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


def run_tool(command: Sequence[str], *, input: bytes | None = None, hint: str = "", timeout: float | None = None) -> bytes:
    """Run `command` and return its standard output; raise ToolMissing or ToolFailed."""
    if shutil.which(command[0]) is None:
        raise ToolMissing(command[0], hint or "install it and try again")
    logger.debug("running %s", shlex.join(command))
    completed = subprocess.run(list(command), input=input, capture_output=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise ToolFailed(command, completed.returncode, completed.stderr.decode("utf-8", "replace"))
    return completed.stdout
