"""Errors of the content store, each with the values a caller needs to act on it.

MobyAsmError
└── StoreError
    ├── InvalidDigest       also an InputError: a digest string that is not sha256:<64 hex>
    ├── InvalidPlatform     also an InputError: a platform that is not OS/ARCH[/VARIANT]
    ├── BlobNotFound
    ├── DigestMismatch      content does not match its digest or size
    ├── ImageNotFound       no image for a reference and platform
    ├── InvalidStore        a layout file that cannot be read
    └── StoreLocked         a lock was not acquired in time
"""

from __future__ import annotations

from pathlib import Path

from moby_asm.errors import InputError, MobyAsmError


class StoreError(MobyAsmError):
    """An operation on the content store failed."""


class InvalidDigest(StoreError, InputError):
    """A digest is not of the form `sha256:` followed by 64 lowercase hex digits."""

    def __init__(self, digest: str):
        self.digest = digest
        super().__init__(f"invalid digest {digest!r}: expected 'sha256:' followed by 64 lowercase hex digits")


class InvalidPlatform(StoreError, InputError):
    """A platform string is not of the form OS/ARCHITECTURE[/VARIANT], such as linux/arm64/v8."""

    def __init__(self, platform: str):
        self.platform = platform
        super().__init__(f"invalid platform {platform!r}: expected OS/ARCHITECTURE[/VARIANT], such as linux/amd64")


class BlobNotFound(StoreError):
    """The store has no blob with this digest."""

    def __init__(self, digest: str, root: Path):
        self.digest = digest
        self.root = root
        super().__init__(f"blob {digest} is not in the content store {root}")


class DigestMismatch(StoreError):
    """Content does not match the digest or size it was announced with.

    `reference` and `host` are set when the content came from a registry.
    """

    def __init__(
        self,
        expected: str,
        actual: str,
        *,
        expected_size: int | None = None,
        actual_size: int | None = None,
        reference: str | None = None,
        host: str | None = None,
    ):
        self.expected = expected
        self.actual = actual
        self.expected_size = expected_size
        self.actual_size = actual_size
        self.reference = reference
        self.host = host
        super().__init__(self._message())

    def _message(self) -> str:
        source = f" of {self.reference} from {self.host}" if self.reference and self.host else ""
        if self.expected_size is not None and self.actual_size is not None and self.expected_size != self.actual_size:
            found = f"{self.actual_size} bytes instead of {self.expected_size}"
        else:
            found = f"digest {self.actual}"
        return (
            f"content{source} expected as {self.expected} has {found}; "
            "it was not stored (the source is corrupted or was changed during transfer)"
        )


class ImageNotFound(StoreError):
    """No image for `reference` and `platform` is stored (or, from a registry, exists)."""

    def __init__(self, reference: str, platform: str | None, reason: str):
        self.reference = reference
        self.platform = platform
        self.reason = reason
        target = f"{reference} for {platform}" if platform else reference
        super().__init__(f"image {target} not found: {reason}")


class InvalidStore(StoreError):
    """A file of the OCI image layout is missing or cannot be parsed."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"invalid content store file {path}: {reason}; remove the store folder to start afresh")


class StoreLocked(StoreError):
    """Another process held a lock of the store for longer than `timeout` seconds."""

    def __init__(self, path: Path, timeout: float):
        self.path = path
        self.timeout = timeout
        super().__init__(
            f"the content store lock {path} is held by another process after waiting {timeout:g} s; "
            "wait for the other moby-asm command to finish and try again"
        )
