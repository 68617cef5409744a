"""A writer of cpio archives in the `newc` format that the Linux kernel unpacks as initramfs.

Each entry is a 110-byte ASCII header (magic 070701 and 13 fields of 8 hex digits), the
name with a terminating NUL, padding to 4 bytes, the contents and padding to 4 bytes.
The archive ends with the entry TRAILER!!!. Inode numbers count from 1 in writing order,
so the same entries give the same bytes.
"""

from __future__ import annotations

import stat
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
MAX_FIELD = 0xFFFFFFFF

FILE_TYPES = {
    "file": stat.S_IFREG,
    "directory": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "char device": stat.S_IFCHR,
    "block device": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
}


class NewcWriter:
    """Writer of newc cpio entries to `target`. `close` writes the trailer but leaves `target` open."""

    def __init__(self, target: BinaryIO):
        self._target = target
        self._inode = 0
        self._offset = 0

    def add(
        self,
        name: str,
        file_type: str,
        mode: int,
        *,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
        size: int = 0,
        data: BinaryIO | None = None,
        rdevmajor: int = 0,
        rdevminor: int = 0,
    ) -> None:
        """Write one entry; `data` must hold `size` bytes (a symlink's data is its target).

        Raise ValueError when a number does not fit the format's 32-bit fields.
        """
        self._inode += 1
        fields = (
            self._inode,
            FILE_TYPES[file_type] | (mode & 0o7777),
            uid,
            gid,
            2 if file_type == "directory" else 1,
            min(max(mtime, 0), MAX_FIELD),
            size,
            0,
            0,
            rdevmajor,
            rdevminor,
        )
        encoded_name = name.encode("utf-8", "surrogateescape") + b"\0"
        self._write_header(fields, encoded_name, name)
        if size:
            self._copy(data, size, name)
        self._pad()

    def close(self) -> None:
        self._inode += 1
        fields = (self._inode, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        self._write_header(fields, TRAILER.encode() + b"\0", TRAILER)
        self._pad()

    def _write_header(self, fields: tuple[int, ...], encoded_name: bytes, name: str) -> None:
        for value in fields:
            if not 0 <= value <= MAX_FIELD:
                raise ValueError(f"{name!r}: the value {value} does not fit a cpio newc header")
        values = (*fields, len(encoded_name), 0)
        self._write(MAGIC + b"".join(b"%08X" % value for value in values) + encoded_name)
        self._pad()

    def _copy(self, data: BinaryIO | None, size: int, name: str) -> None:
        if data is None:
            raise ValueError(f"{name!r}: {size} bytes of contents are missing")
        remaining = size
        while remaining:
            chunk = data.read(min(remaining, 1 << 20))
            if not chunk:
                raise ValueError(f"{name!r}: the contents end {remaining} bytes early")
            self._write(chunk)
            remaining -= len(chunk)

    def _pad(self) -> None:
        self._write(b"\0" * (-self._offset % 4))

    def _write(self, data: bytes) -> None:
        self._target.write(data)
        self._offset += len(data)
