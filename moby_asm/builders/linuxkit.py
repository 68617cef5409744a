"""The `linuxkit` builder: runs `linuxkit build` on the rendered config for the formats only it makes.

Each format is built by its own `linuxkit build` run into a hidden scratch folder inside
the output folder. The files move to the output folder only after the run succeeded, so a
failed or cancelled run leaves the outputs of an earlier build as they were.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import threading
from pathlib import Path

from moby_asm import errors
from moby_asm.builders.base import BuildOutput
from moby_asm.compose.plan import NATIVE_FORMATS
from moby_asm.errors import MobyAsmError
from moby_asm.reporter import Reporter
from moby_asm.tools.command import ToolFailed, stream_tool

INSTALL_HINT = ("install the linuxkit command from the LinuxKit project's releases and put it on PATH; "
                f"without it, the native builder makes {', '.join(NATIVE_FORMATS)}")
SCRATCH_PREFIX = ".moby-asm-linuxkit-"
OUTPUT_TAIL_LINES = 40
"""Lines of linuxkit's output kept for the error message of a failed run."""


class LinuxKitFailed(MobyAsmError):
    """A `linuxkit build` run that failed for one format, with its last output lines in `output`."""

    def __init__(self, output_format: str, command: list[str], reason: str, output: str):
        self.format = output_format
        self.command = command
        self.output = output
        message = f"linuxkit could not build {output_format}: {shlex.join(command)} {reason}"
        if output.strip():
            message += f". Its last output lines:\n{output.rstrip()}"
        super().__init__(message)


class LinuxKitBuilder:
    """Delegates to `linuxkit build`, one run per format, and collects the files it writes."""

    name = "linuxkit"

    def build_config(self, config: Path, name: str, formats: list[str], output_dir: Path, reporter: Reporter,
                     cancel: threading.Event | None = None, use_docker: bool = False) -> list[BuildOutput]:
        """Build each format of `formats` from the LinuxKit config file `config` into `output_dir`.

        Every output line of linuxkit goes to `reporter.step`, prefixed with the format.
        With `use_docker`, linuxkit takes images from the local Docker Engine before its
        own cache. Raises LinuxKitFailed, ToolMissing, or moby_asm.errors.Cancelled once
        `cancel` is set.
        """
        outputs = []
        output_dir.mkdir(parents=True, exist_ok=True)
        for output_format in formats:
            if cancel is not None and cancel.is_set():
                raise errors.Cancelled(f"the build was stopped before linuxkit built {output_format}")
            command = _command(config, name, output_format, use_docker)
            outputs += _build_format(command, output_format, output_dir, reporter, cancel)
        return outputs


def _command(config: Path, name: str, output_format: str, use_docker: bool) -> list[str]:
    command = ["linuxkit", "build", "--format", output_format, "--name", name]
    if use_docker:
        command.append("--docker")
    return command + [str(config)]


def _build_format(command: list[str], output_format: str, output_dir: Path, reporter: Reporter,
                  cancel: threading.Event | None) -> list[BuildOutput]:
    reporter.step(f"{output_format}: {shlex.join(command)}")
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=output_dir))
    try:
        _run(command, scratch, output_format, reporter, cancel)
        return _collect(scratch, output_dir, output_format, command)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(command: list[str], scratch: Path, output_format: str, reporter: Reporter,
         cancel: threading.Event | None) -> None:
    # --dir goes just before the config path, so that messages show the command without the scratch folder.
    with_dir = [*command[:-1], "--dir", str(scratch), command[-1]]
    try:
        stream_tool(with_dir, on_line=lambda line: _report_line(reporter, output_format, line), cancel=cancel,
                    hint=INSTALL_HINT, tail=OUTPUT_TAIL_LINES)
    except ToolFailed as error:
        raise LinuxKitFailed(output_format, command, f"exited with code {error.returncode}", error.stderr) from error


def _report_line(reporter: Reporter, output_format: str, line: str) -> None:
    if line.strip():
        reporter.step(f"{output_format}: {line}")


def _collect(scratch: Path, output_dir: Path, output_format: str, command: list[str]) -> list[BuildOutput]:
    written = sorted(path for path in scratch.iterdir() if path.is_file())
    if not written:
        raise LinuxKitFailed(output_format, command, "exited with code 0 but wrote no file", "")
    outputs = []
    for path in written:
        target = output_dir / path.name
        path.replace(target)
        outputs.append(BuildOutput(output_format, target, target.stat().st_size, _sha256(target)))
    return outputs


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
