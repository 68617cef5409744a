"""Tar streams read from layer blobs: decompression, member iteration and ordered reading.

A layer is read twice: once to index its members and once, in the same member order,
to copy their contents into the output. `StreamRegistry` numbers the streams in the order
the root filesystem uses them, so that the second pass opens each stream once and only
reads forward.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from moby_asm.builders.errors import BuildError, InvalidLayer, UnsupportedLayer
from moby_asm.builders.native.entries import MemberData

_MAGIC_BYTES = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


@dataclass(frozen=True)
class StreamSource:
    """A tar stream: a layer blob, or a plain tar file such as a kernel's `kernel.tar`.

    `image` and `name` (the layer digest or the file's name in the image) appear in errors.
    """

    path: Path
    image: str
    name: str


def detect_compression(head: bytes) -> str | None:
    """Return the compression that the first bytes of a blob show, or None for a plain tar."""
    for magic, name in _MAGIC_BYTES:
        if head.startswith(magic):
            return name
    return None


@contextmanager
def open_tar_bytes(source: StreamSource) -> Iterator[BinaryIO]:
    """Open `source` and yield its uncompressed tar bytes; gzip is detected by its magic bytes."""
    with open(source.path, "rb") as raw:
        compression = detect_compression(raw.read(6))
        raw.seek(0)
        if compression is None:
            yield raw
        elif compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                yield unpacked  # type: ignore[misc]
        else:
            raise UnsupportedLayer(source.image, source.name, compression)


@contextmanager
def iter_members(source: StreamSource) -> Iterator[Iterator[tuple[int, tarfile.TarInfo, tarfile.TarFile]]]:
    """Yield an iterator of (ordinal, member, archive) over the members of `source`, in order.

    The archive is a forward-only stream, so `archive.extractfile(member)` works only for
    the current member. An empty blob has no members. Read errors raise InvalidLayer.
    """
    with open_tar_bytes(source) as data:
        yield _members(source, data)


def _members(source: StreamSource, data: BinaryIO) -> Iterator[tuple[int, tarfile.TarInfo, tarfile.TarFile]]:
    try:
        archive = tarfile.open(fileobj=data, mode="r|")
    except tarfile.ReadError as error:
        if "empty file" in str(error):
            return
        raise _unreadable(source, error) from error
    with archive:
        ordinal = 0
        while True:
            try:
                member = archive.next()
            except (tarfile.TarError, EOFError, OSError) as error:
                raise _unreadable(source, error) from error
            if member is None:
                return
            # The stream mode keeps every member it has read; nothing here needs them again.
            archive.members.clear()
            yield ordinal, member, archive
            ordinal += 1


def _unreadable(source: StreamSource, error: Exception) -> InvalidLayer:
    return InvalidLayer(source.image, source.name, "<archive>", f"cannot be read as a tar archive ({error})")


class StreamRegistry:
    """The tar streams of one build, numbered in the order the root filesystem uses them."""

    def __init__(self) -> None:
        self._sources: list[StreamSource] = []

    def register(self, source: StreamSource) -> int:
        self._sources.append(source)
        return len(self._sources) - 1

    def source(self, stream: int) -> StreamSource:
        return self._sources[stream]

    def __len__(self) -> int:
        return len(self._sources)


def extract_members(registry: StreamRegistry, wanted: list[MemberData], folder: Path) -> dict[MemberData, Path]:
    """Copy the contents of each member in `wanted` into a new file in `folder`.

    Each stream is read once, up to the last member wanted from it.
    """
    copies: dict[MemberData, Path] = {}
    by_stream: dict[int, dict[int, MemberData]] = {}
    for ref in wanted:
        by_stream.setdefault(ref.stream, {})[ref.ordinal] = ref
    for stream, refs in sorted(by_stream.items()):
        last = max(refs)
        with iter_members(registry.source(stream)) as members:
            for ordinal, member, archive in members:
                if ordinal in refs:
                    copies[refs[ordinal]] = _copy_to_file(archive, member, folder)
                if ordinal >= last:
                    break
    return copies


def _copy_to_file(archive: tarfile.TarFile, member: tarfile.TarInfo, folder: Path) -> Path:
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="member-", delete=False)
    with handle, archive.extractfile(member) as contents:  # type: ignore[union-attr]
        shutil.copyfileobj(contents, handle)
    return Path(handle.name)


class OrderedReader:
    """Reads member contents in the order in which the registered streams use them.

    `read` must be called with member references in increasing (stream, ordinal) order,
    except for members in `spooled`: those are copied into `folder` when the reader passes
    them, so that they can be read at any later time. Hard links whose target was replaced
    read their contents this way.
    """

    def __init__(self, registry: StreamRegistry, spooled: set[MemberData], folder: Path):
        self._registry = registry
        self._spool_wanted = spooled
        self._spooled: dict[MemberData, Path] = {}
        self._folder = folder
        self._stream = -1
        self._members: Iterator[tuple[int, tarfile.TarInfo, tarfile.TarFile]] | None = None
        self._context = None
        self._position = -1

    def read(self, ref: MemberData) -> BinaryIO:
        """Return a file object with the contents of the member `ref`, valid until the next call."""
        if ref in self._spooled:
            return open(self._spooled[ref], "rb")
        if (ref.stream, ref.ordinal) <= (self._stream, self._position):
            raise BuildError(f"internal error: member {ref} was requested after the reader passed it")
        if ref.stream > self._stream:
            for stream in range(self._stream + 1, ref.stream):
                if self._has_pending_spool(stream):
                    self._open(stream)
            self._open(ref.stream)
        while True:
            ordinal, member, archive = self._next_member()
            here = MemberData(self._stream, ordinal)
            if here in self._spool_wanted:
                self._spooled[here] = _copy_to_file(archive, member, self._folder)
            if here == ref:
                if here in self._spooled:
                    return open(self._spooled[here], "rb")
                return archive.extractfile(member)  # type: ignore[return-value]

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def _open(self, stream: int) -> None:
        self._drain_spool()
        self.close()
        self._stream = stream
        self._position = -1
        self._context = iter_members(self._registry.source(stream))
        self._members = self._context.__enter__()

    def _has_pending_spool(self, stream: int) -> bool:
        return any(ref.stream == stream and ref not in self._spooled for ref in self._spool_wanted)

    def _drain_spool(self) -> None:
        """Read the current stream up to its last member that must be spooled."""
        pending = [ref for ref in self._spool_wanted if ref.stream == self._stream and ref not in self._spooled]
        if not pending:
            return
        last = max(ref.ordinal for ref in pending)
        while self._position < last:
            ordinal, member, archive = self._next_member()
            here = MemberData(self._stream, ordinal)
            if here in self._spool_wanted:
                self._spooled[here] = _copy_to_file(archive, member, self._folder)

    def _next_member(self) -> tuple[int, tarfile.TarInfo, tarfile.TarFile]:
        assert self._members is not None
        try:
            ordinal, member, archive = next(self._members)
        except StopIteration:
            source = self._registry.source(self._stream)
            raise BuildError(f"{source.path} ended early; was the content store changed during the build?") from None
        self._position = ordinal
        return ordinal, member, archive
