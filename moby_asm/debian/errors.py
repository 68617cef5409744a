"""Errors of Debian sources: each names the file and the mirror it came from."""

from __future__ import annotations

from moby_asm.errors import MobyAsmError


class ArchiveError(MobyAsmError):
    """A mirror could not be reached or served a file that failed verification; nothing of it was kept."""


class BadSignature(ArchiveError):
    """A Release file's OpenPGP signature did not verify against the keyrings."""


class HashMismatch(ArchiveError):
    """A downloaded index or package differs from the hash that the signed Release or the lock lists."""


class NotCached(ArchiveError):
    """An offline run needs an index or package that the content store does not hold."""
