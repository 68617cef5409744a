"""Write a tree of entries as one PAX tar stream, copying contents from their sources.

Every entry carries LinuxKit's PAX records naming its image and config section, and the
extended attributes its layer gave it. The stream depends only on the tree, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from moby_asm.builders.errors import BuildError
from moby_asm.builders.native.entries import (
    PAX_LOCATION,
    PAX_SOURCE,
    BytesData,
    DataSource,
    Entry,
    FileData,
    Kind,
    MemberData,
)
from moby_asm.builders.native.streams import OrderedReader, StreamRegistry
from moby_asm.builders.native.tree import FileTree

_TAR_TYPES = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIRECTORY: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
    Kind.CHAR_DEVICE: tarfile.CHRTYPE,
    Kind.BLOCK_DEVICE: tarfile.BLKTYPE,
    Kind.FIFO: tarfile.FIFOTYPE,
}


class HashingWriter:
    """A write-only file object that counts and hashes (sha256) what passes to `target`."""

    def __init__(self, target: BinaryIO):
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._target.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._target.flush()

    @property
    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


@dataclass(frozen=True)
class WrittenTar:
    size: int
    digest: str


def write_tree(tree: FileTree, registry: StreamRegistry, target: BinaryIO, scratch: Path) -> WrittenTar:
    """Write every entry of `tree` in order to `target` as a tar stream and return its size and digest.

    Members that a hard link still needs after its target was replaced are copied into `scratch`.
    """
    entries = tree.ordered()
    spooled = {
        entry.link_target.data
        for entry in entries
        if _is_detached_link(tree, entry) and isinstance(entry.link_target.data, MemberData)  # type: ignore[union-attr]
    }
    reader = OrderedReader(registry, spooled, scratch)
    output = HashingWriter(target)
    try:
        with tarfile.open(fileobj=output, mode="w", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
            for entry in entries:
                _write_entry(archive, tree, entry, reader)
    finally:
        reader.close()
    return WrittenTar(output.size, output.digest)


def _is_detached_link(tree: FileTree, entry: Entry) -> bool:
    """Return whether `entry` is a hard link whose target path now has other contents."""
    return entry.kind is Kind.HARDLINK and tree.get(entry.linkname) is not entry.link_entry


def _write_entry(archive: tarfile.TarFile, tree: FileTree, entry: Entry, reader: OrderedReader) -> None:
    content = entry
    if _is_detached_link(tree, entry):
        # The target was replaced or deleted after the link was made: write a copy of it.
        assert entry.link_target is not None
        content = entry.link_target
    info = _tar_info(entry, content)
    if content.kind is not Kind.FILE:
        archive.addfile(info)
        return
    with _open_data(content.data, reader, content.path) as data:
        try:
            archive.addfile(info, data)
        except (OSError, EOFError, zlib.error) as error:
            raise BuildError(f"cannot copy the contents of {entry.path!r} ({error})") from error


def _tar_info(entry: Entry, content: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.type = _TAR_TYPES[content.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname, info.gname = entry.uname, entry.gname
    info.mtime = entry.mtime
    info.linkname = content.linkname
    if content.kind is Kind.FILE:
        info.size = content.size
    if content.kind in (Kind.CHAR_DEVICE, Kind.BLOCK_DEVICE):
        info.devmajor, info.devminor = content.devmajor, content.devminor
    records = {PAX_LOCATION: entry.origin.location, PAX_SOURCE: entry.origin.source, **content.xattrs}
    info.pax_headers = {key: value for key, value in sorted(records.items()) if value}
    return info


def _open_data(data: DataSource | None, reader: OrderedReader, path: str) -> BinaryIO:
    if isinstance(data, BytesData):
        return io.BytesIO(data.content)
    if isinstance(data, FileData):
        handle = open(data.path, "rb")
        if os.fstat(handle.fileno()).st_size != data.size:
            handle.close()
            raise BuildError(f"{data.path} changed size during the build; build again")
        return handle
    if isinstance(data, MemberData):
        return reader.read(data)
    raise BuildError(f"internal error: the file {path!r} has no contents")
