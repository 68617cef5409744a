"""Tar streams read from layer blobs: decompression, member iteration and ordered reading.

A layer is read twice: once to index its member headers and once to copy contents into
the output, going straight to each member's offset in the uncompressed stream. The
registry numbers the streams in the order the root filesystem uses them, so that the
second pass opens each stream once and only reads forward.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import tempfile
import zlib
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
    """Open `source` and yield its uncompressed tar bytes, detecting gzip by its magic bytes."""
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
def iter_members(source: StreamSource) -> Iterator[Iterator[tarfile.TarInfo]]:
    """Yield an iterator over the member headers of `source`, in order.

    Each header's `offset_data` is the position of its contents in the uncompressed
    stream. An empty blob has no members. Read errors raise InvalidLayer.
    """
    with open_tar_bytes(source) as data:
        yield _members(source, data)


def _members(source: StreamSource, data: BinaryIO) -> Iterator[tarfile.TarInfo]:
    try:
        archive = tarfile.open(fileobj=data, mode="r|")
    except tarfile.ReadError as error:
        if "empty file" in str(error):
            return
        raise _unreadable(source, error) from error
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise _unreadable(source, error) from error
    with archive:
        while True:
            try:
                member = archive.next()
            except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
                raise _unreadable(source, error) from error
            if member is None:
                return
            # The stream mode keeps every member it has read, but nothing here needs them again.
            archive.members.clear()
            yield member


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


class _Cursor:
    """The uncompressed bytes of one stream, read forward only. `position` counts from 0."""

    def __init__(self, source: StreamSource):
        self.source = source
        self._context = open_tar_bytes(source)
        self._data = self._context.__enter__()
        self.position = 0

    def skip_to(self, offset: int) -> None:
        if offset < self.position:
            raise BuildError(f"internal error: offset {offset} of {self.source.path} was requested after it was read")
        if offset > self.position:
            self._data.seek(offset)
            self.position = offset

    def read(self, size: int) -> bytes:
        data = self._data.read(size)
        self.position += len(data)
        if len(data) < size:
            raise BuildError(f"{self.source.path} ended early; was the content store changed during the build?")
        return data

    def close(self) -> None:
        self._context.__exit__(None, None, None)


class _MemberReader:
    """A file object over one member's contents that fills the holes of a sparse member with zeros."""

    def __init__(self, cursor: _Cursor, ref: MemberData):
        self._cursor = cursor
        self._chunks = list(ref.sparse) if ref.sparse is not None else [(0, ref.stored)]
        self._size = ref.size
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        """Return `size` bytes, fewer only at the end, because tarfile treats a short read as truncation."""
        remaining = self._size - self._position
        size = remaining if size < 0 else min(size, remaining)
        parts = []
        while size > 0:
            part = self._read_part(size)
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def _read_part(self, size: int) -> bytes:
        """Return up to `size` bytes from one stored chunk or one hole."""
        while self._chunks and self._chunks[0][0] + self._chunks[0][1] <= self._position:
            self._chunks.pop(0)
        if not self._chunks or self._chunks[0][0] > self._position:
            hole_end = self._chunks[0][0] if self._chunks else self._size
            return self._advance(b"\0" * min(size, hole_end - self._position))
        start, length = self._chunks[0]
        return self._advance(self._cursor.read(min(size, start + length - self._position)))

    def _advance(self, data: bytes) -> bytes:
        self._position += len(data)
        return data

    def __enter__(self) -> _MemberReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def extract_members(registry: StreamRegistry, members: list[MemberData], folder: Path) -> dict[MemberData, Path]:
    """Copy the contents of each of `members` into a new file in `folder` and return the files.

    Each stream is read once, up to the last of `members` in it.
    """
    reader = OrderedReader(registry, set(members), folder)
    try:
        for ref in sorted(set(members)):
            reader.read(ref).close()
        return dict(reader.spooled)
    finally:
        reader.close()


class OrderedReader:
    """Reader of member contents in the order in which the registered streams use them.

    `read` must be called with member references in increasing (stream, offset) order,
    except for members in `spool`: those are copied into `folder` when the reader passes
    them, so that they can be read at any later time. Hard links whose target was replaced
    read their contents this way.
    """

    def __init__(self, registry: StreamRegistry, spool: set[MemberData], folder: Path):
        self._registry = registry
        self._pending = sorted(spool)
        self.spooled: dict[MemberData, Path] = {}
        self._folder = folder
        self._stream = -1
        self._cursor: _Cursor | None = None

    def read(self, ref: MemberData) -> BinaryIO:
        """Return a file object with the contents of the member `ref`."""
        if ref not in self.spooled:
            self._move_to(ref.stream)
            self._spool_before(ref)
        if ref in self.spooled:
            return open(self.spooled[ref], "rb")
        assert self._cursor is not None
        self._cursor.skip_to(ref.offset)
        return _MemberReader(self._cursor, ref)  # type: ignore[return-value]

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def _move_to(self, stream: int) -> None:
        """Open `stream`, first spooling what the current and skipped streams must keep."""
        if stream < self._stream:
            raise BuildError(f"internal error: stream {stream} was requested after the reader passed it")
        while self._stream < stream:
            self._spool_before(MemberData(self._stream + 1, -1, 0, 0))
            self.close()
            self._stream += 1
            if self._stream == stream or (self._pending and self._pending[0].stream == self._stream):
                self._cursor = _Cursor(self._registry.source(self._stream))

    def _spool_before(self, limit: MemberData) -> None:
        """Copy every member still to be spooled that comes before or at `limit`."""
        while self._pending and self._pending[0] <= limit:
            ref = self._pending.pop(0)
            if ref.stream != self._stream or self._cursor is None:
                continue
            self._cursor.skip_to(ref.offset)
            self.spooled[ref] = self._copy(_MemberReader(self._cursor, ref))

    def _copy(self, contents: _MemberReader) -> Path:
        handle = tempfile.NamedTemporaryFile(dir=self._folder, prefix="member-", delete=False)
        with handle:
            shutil.copyfileobj(contents, handle, 1 << 20)  # type: ignore[misc]
        return Path(handle.name)
