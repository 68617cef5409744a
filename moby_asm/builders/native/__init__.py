"""The native builder: builds LinuxKit outputs from pulled images without a Docker daemon or root.

It assembles the root filesystem in LinuxKit's layout (see `layout`), writes it once as
a tar stream into a scratch folder inside the output folder, and makes every requested
format from that tar (see `outputs` and `imagearchive`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from moby_asm.builders.base import BuildJob, BuildOutput
from moby_asm.builders.errors import InvalidBuildConfig, UnsupportedFormat
from moby_asm.builders.native.imagearchive import write_docker_archive, write_oci_archive
from moby_asm.builders.native.layout import Assembler
from moby_asm.builders.native.outputs import (
    InitrdParts,
    atomic_output,
    publish,
    split_initrd,
    write_kernel_initrd,
    write_kernel_initrd_tar,
)
from moby_asm.builders.native.tarwriter import WrittenTar, write_tree
from moby_asm.reporter import Reporter

FORMATS = ("tar", "kernel+initrd", "tar-kernel-initrd", "docker", "oci")


class NativeBuilder:
    """Builder of the `tar`, `kernel+initrd`, `tar-kernel-initrd`, `docker` and `oci` outputs, in-process."""

    name = "native"
    formats = FORMATS

    def build(self, job: BuildJob, reporter: Reporter) -> list[BuildOutput]:
        """Write every format of `job.formats` into `job.output_dir` and return the files written."""
        self._check(job)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".moby-asm-native-", dir=job.output_dir))
        try:
            return _Build(job, scratch, reporter).run()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _check(self, job: BuildJob) -> None:
        for format in job.formats:
            if format not in self.formats:
                raise UnsupportedFormat(self.name, format, self.formats)
        if not job.name or "/" in job.name or job.name in (".", ".."):
            raise InvalidBuildConfig("name", f"the assembly name {job.name!r} must be one file name, without '/'")


class _Build:
    """One run of the native builder; `scratch` is removed by the caller afterwards."""

    def __init__(self, job: BuildJob, scratch: Path, reporter: Reporter):
        self.job = job
        self.scratch = scratch
        self.reporter = reporter
        self.base = job.output_dir / job.name
        self.rootfs = scratch / "rootfs.tar"
        self._initrd: InitrdParts | None = None

    def run(self) -> list[BuildOutput]:
        rootfs = Assembler(self.job, self.scratch, self.reporter).assemble()
        self.reporter.step(f"writing the root filesystem: {len(rootfs.tree)} entries")
        with open(self.rootfs, "wb") as target:
            written = write_tree(rootfs.tree, rootfs.registry, target, self.scratch)
        results: list[BuildOutput] = []
        formats = list(dict.fromkeys(self.job.formats))
        for format in formats:
            if format != "tar":
                self.reporter.step(f"writing the {format} output")
                self._write(format, written, results)
        if "tar" in formats:
            # The tar is renamed into place last, because the other formats read it.
            publish(self.rootfs, self.base.with_name(f"{self.base.name}.tar"))
            results.append(
                BuildOutput("tar", self.base.with_name(f"{self.base.name}.tar"), written.size, written.digest)
            )
        return sorted(results, key=lambda output: formats.index(output.format))

    def _write(self, format: str, written: WrittenTar, results: list[BuildOutput]) -> None:
        if format == "kernel+initrd":
            write_kernel_initrd(self._initrd_parts(), self.base, results)
        elif format == "tar-kernel-initrd":
            write_kernel_initrd_tar(self._initrd_parts(), self.base, results)
        elif format == "docker":
            with atomic_output(self.base.with_name(f"{self.base.name}-docker.tar"), format, results) as target:
                write_docker_archive(target, self.rootfs, written, self.job.name, self.job.platform)  # type: ignore[arg-type]
        elif format == "oci":
            with atomic_output(self.base.with_name(f"{self.base.name}-oci.tar"), format, results) as target:
                write_oci_archive(target, self.rootfs, written, self.scratch, self.job.platform)  # type: ignore[arg-type]

    def _initrd_parts(self) -> InitrdParts:
        if self._initrd is None:
            self._initrd = split_initrd(self.rootfs, self.scratch)
            if self._initrd.kernel is None:
                self.reporter.warning("the config has no kernel, so the initrd outputs have no kernel file")
        return self._initrd
