"""The `linuxkit` builder: runs `linuxkit build` on the rendered config for the formats only it makes."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from moby_asm.builders.base import BuildOutput
from moby_asm.compose.plan import NATIVE_FORMATS
from moby_asm.reporter import Reporter
from moby_asm.tools import run_tool

INSTALL_HINT = ("install the linuxkit command from the LinuxKit project's releases and put it on PATH; "
                f"without it, the native builder makes {', '.join(NATIVE_FORMATS)}")


class LinuxKitBuilder:
    """Delegates to `linuxkit build`, one run per format, and collects the files it writes."""

    name = "linuxkit"

    def build_config(self, config: Path, name: str, formats: list[str], output_dir: Path,
                     reporter: Reporter) -> list[BuildOutput]:
        outputs = []
        output_dir.mkdir(parents=True, exist_ok=True)
        for output_format in formats:
            reporter.step(f"linuxkit build --format {output_format}")
            scratch = Path(tempfile.mkdtemp(prefix=".linuxkit.", dir=output_dir))
            try:
                run_tool(["linuxkit", "build", "--format", output_format, "--name", name, "--dir", str(scratch),
                          str(config)], hint=INSTALL_HINT)
                outputs += _collect(scratch, output_dir, output_format)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return outputs


def _collect(scratch: Path, output_dir: Path, output_format: str) -> list[BuildOutput]:
    outputs = []
    for path in sorted(p for p in scratch.iterdir() if p.is_file()):
        target = output_dir / path.name
        path.replace(target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        outputs.append(BuildOutput(output_format, target, target.stat().st_size, f"sha256:{digest}"))
    return outputs
