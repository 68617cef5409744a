"""Output formats made from the root filesystem tar, each file written atomically.

A file is written under a temporary name in the output folder and renamed into place
when complete, so a reader sees the old file or the new one. Facts about the formats
from LinuxKit (src/cmd/linuxkit/moby/build/output.go and src/cmd/linuxkit/initrd, v1.x):

- `tar`: NAME.tar, the root filesystem.
- `kernel+initrd`: NAME-kernel, NAME-initrd.img and NAME-cmdline. The initrd is a gzip
  cpio (newc) archive of everything but the files below boot/, padded to 4 bytes, with
  boot/ucode.cpio (when the kernel section sets `ucode`) in front, uncompressed. Hard
  links become relative symlinks. Files for an empty kernel or cmdline are not written.
- `tar-kernel-initrd`: NAME-initrd.tar holding kernel, initrd.img (without the
  microcode), cmdline and ucode.cpio.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from moby_asm.builders.base import BuildOutput
from moby_asm.builders.errors import BuildError
from moby_asm.builders.native.cpio import NewcWriter
from moby_asm.builders.native.entries import FIXED_MTIME
from moby_asm.builders.native.tarwriter import HashingWriter

GZIP_LEVEL = 6
OUTPUT_MODE = 0o644

_CPIO_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "directory",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "symlink",
    tarfile.CHRTYPE: "char device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}


@contextmanager
def atomic_output(path: Path, format: str, results: list[BuildOutput]) -> Iterator[HashingWriter]:
    """Yield a writer for `path` that renames the finished file into place and appends its BuildOutput.

    If the block raises, the temporary file is removed and `path` is left as it was.
    """
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            writer = HashingWriter(handle)  # type: ignore[arg-type]
            yield writer
            handle.flush()
            os.fsync(handle.fileno())
        publish(Path(handle.name), path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    results.append(BuildOutput(format, path, writer.size, writer.digest))


def publish(temporary: Path, path: Path) -> None:
    """Give `temporary` the output file mode and rename it to `path`."""
    os.chmod(temporary, OUTPUT_MODE)
    os.replace(temporary, path)


def deterministic_gzip(target: BinaryIO) -> gzip.GzipFile:
    """Return a gzip writer whose header has no file name and modification time 0."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0, compresslevel=GZIP_LEVEL)


@dataclass
class InitrdParts:
    """The root filesystem split for booting: kernel, cmdline, microcode and the gzip cpio initrd."""

    kernel: Path | None
    cmdline: bytes
    ucode: Path | None
    initrd: Path


def split_initrd(rootfs: Path, scratch: Path) -> InitrdParts:
    """Read the root filesystem tar once and write the initrd of everything outside boot/."""
    kernel = ucode = None
    cmdline = b""
    initrd = scratch / "initrd.img"
    with tarfile.open(rootfs, "r:") as archive, open(initrd, "wb") as raw:
        with deterministic_gzip(raw) as compressed:
            writer = NewcWriter(compressed)  # type: ignore[arg-type]
            while (member := archive.next()) is not None:
                archive.members.clear()
                if member.name == "boot/kernel":
                    kernel = _copy_member(archive, member, scratch / "kernel")
                elif member.name == "boot/ucode.cpio":
                    ucode = _copy_member(archive, member, scratch / "ucode.cpio")
                elif member.name == "boot/cmdline":
                    cmdline = archive.extractfile(member).read()  # type: ignore[union-attr]
                elif not member.name.startswith("boot/"):
                    _add_to_cpio(writer, archive, member)
            writer.close()
        raw.write(b"\0" * (-raw.tell() % 4))
    return InitrdParts(kernel, cmdline, ucode, initrd)


def _copy_member(archive: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> Path:
    with archive.extractfile(member) as source, open(path, "wb") as target:  # type: ignore[union-attr]
        shutil.copyfileobj(source, target, 1 << 20)
    return path


def _add_to_cpio(writer: NewcWriter, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    file_type = _CPIO_TYPES.get(member.type)
    if file_type is None:
        raise BuildError(f"the root filesystem entry {member.name!r} has a tar type the initrd cannot hold")
    data: BinaryIO | None = None
    size = 0
    if file_type == "symlink":
        target = member.linkname
        if member.type == tarfile.LNKTYPE:
            target = posixpath.relpath("/" + member.linkname, "/" + posixpath.dirname(member.name))
        encoded = target.encode("utf-8", "surrogateescape")
        data, size = io.BytesIO(encoded), len(encoded)
    elif file_type == "file":
        data, size = archive.extractfile(member), member.size
    try:
        writer.add(
            member.name,
            file_type,
            member.mode,
            uid=member.uid,
            gid=member.gid,
            mtime=int(member.mtime),
            size=size,
            data=data,
            rdevmajor=member.devmajor,
            rdevminor=member.devminor,
        )
    except ValueError as error:
        raise BuildError(f"cannot write the initrd: {error}") from error


def write_kernel_initrd(parts: InitrdParts, base: Path, results: list[BuildOutput]) -> None:
    """Write NAME-kernel, NAME-initrd.img (microcode first) and NAME-cmdline, as LinuxKit does."""
    with atomic_output(base.with_name(f"{base.name}-initrd.img"), "kernel+initrd", results) as target:
        for part in (parts.ucode, parts.initrd):
            if part is not None:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, target, 1 << 20)  # type: ignore[misc]
    if parts.kernel is not None and parts.kernel.stat().st_size:
        with atomic_output(base.with_name(f"{base.name}-kernel"), "kernel+initrd", results) as target:
            with open(parts.kernel, "rb") as source:
                shutil.copyfileobj(source, target, 1 << 20)  # type: ignore[misc]
    if parts.cmdline:
        with atomic_output(base.with_name(f"{base.name}-cmdline"), "kernel+initrd", results) as target:
            target.write(parts.cmdline)


def write_kernel_initrd_tar(parts: InitrdParts, base: Path, results: list[BuildOutput]) -> None:
    """Write NAME-initrd.tar with kernel, initrd.img, cmdline and ucode.cpio, each when not empty."""
    members = [
        ("kernel", parts.kernel),
        ("initrd.img", parts.initrd),
        ("cmdline", parts.cmdline),
        ("ucode.cpio", parts.ucode),
    ]
    with atomic_output(base.with_name(f"{base.name}-initrd.tar"), "tar-kernel-initrd", results) as target:
        with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
            for name, content in members:
                _add_archive_member(archive, name, content)


def _add_archive_member(archive: tarfile.TarFile, name: str, content: Path | bytes | None) -> None:
    if content is None:
        return
    if isinstance(content, bytes):
        if content:
            add_bytes(archive, name, content)
        return
    size = content.stat().st_size
    if size:
        with open(content, "rb") as source:
            archive.addfile(archive_info(name, size), source)


def archive_info(name: str, size: int = 0, *, is_directory: bool = False) -> tarfile.TarInfo:
    """Return a header for a file (mode 0644) or directory (0755) owned by root, at the fixed time."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if is_directory else 0o644
    info.type = tarfile.DIRTYPE if is_directory else tarfile.REGTYPE
    return info


def add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    archive.addfile(archive_info(name, len(content)), io.BytesIO(content))
