"""Entries of the root filesystem before they are written, and where their contents come from."""

from __future__ import annotations

import enum
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

FIXED_MTIME = 1492533000
"""2017-04-18 16:30:00 UTC, the modification time LinuxKit gives every entry it generates."""

PAX_SOURCE = "LINUXKIT.source"
PAX_LOCATION = "LINUXKIT.location"
"""PAX records with which LinuxKit marks the image and config section of each tar entry."""


class Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR_DEVICE = "char device"
    BLOCK_DEVICE = "block device"
    FIFO = "fifo"


@dataclass(frozen=True)
class BytesData:
    """Contents held in memory."""

    content: bytes


@dataclass(frozen=True)
class FileData:
    """Contents of a file on the build machine, `size` bytes long when it was planned."""

    path: Path
    size: int


@dataclass(frozen=True, order=True)
class MemberData:
    """Contents of a member of the registered tar stream number `stream`.

    The `stored` bytes at `offset` of the uncompressed stream hold the contents, which are
    `size` bytes long. For a sparse member, `sparse` lists the (offset, length) chunks of
    the contents that are stored; the rest is zeros.
    """

    stream: int
    offset: int
    stored: int
    size: int
    sparse: tuple[tuple[int, int], ...] | None = None


DataSource = BytesData | FileData | MemberData


@dataclass(frozen=True)
class Origin:
    """The image (or `linuxkit.files`) and config section, such as `onboot[0]`, an entry comes from."""

    source: str
    location: str


@dataclass(eq=False)
class Entry:
    """One path of the root filesystem: tar header fields and the source of its contents.

    `path` is relative, normalised and has no trailing slash. Entries compare by identity,
    because hard links refer to the exact entry they were made from. For a hard link,
    `link_entry` is the entry found at `linkname` when the link was read, and `link_target`
    is the entry that stores the shared contents. When a later layer replaces or deletes
    the target, the link is written as a copy of `link_target`. `seq` orders entries for
    writing. An `implicit` directory was created because an entry below it had no parent.
    """

    path: str
    kind: Kind
    mode: int
    origin: Origin
    uid: int = 0
    gid: int = 0
    mtime: int = FIXED_MTIME
    size: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    uname: str = ""
    gname: str = ""
    xattrs: dict[str, str] = field(default_factory=dict)
    data: DataSource | None = None
    link_entry: Entry | None = None
    link_target: Entry | None = None
    seq: int = -1
    implicit: bool = False

    @property
    def is_directory(self) -> bool:
        return self.kind is Kind.DIRECTORY


def directory(path: str, origin: Origin, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, Kind.DIRECTORY, mode, origin, uid=uid, gid=gid)


def regular_file(path: str, content: bytes, origin: Origin, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, Kind.FILE, mode, origin, uid=uid, gid=gid, size=len(content), data=BytesData(content))


def symlink(path: str, target: str, origin: Origin, mode: int = 0o777, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, Kind.SYMLINK, mode, origin, uid=uid, gid=gid, linkname=target)


class UnsafePath(ValueError):
    """A path that leaves the root it is relative to."""


def normalise_path(name: str) -> str:
    """Return `name` relative to the root, without `.` parts, repeated or trailing slashes.

    Leading slashes are dropped, so absolute names stay inside the root, and `a/../b`
    becomes `b`. Raise UnsafePath when `..` would leave the root. The root itself is ''.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePath(name)
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def join_path(prefix: str, path: str) -> str:
    """Join two normalised relative paths, either of which may be '' for the root."""
    if not prefix:
        return path
    if not path:
        return prefix
    return posixpath.join(prefix, path)
