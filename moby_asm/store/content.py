"""The content store: an OCI image layout of verified blobs with references in index.json.

Layout (OCI image-spec, image-layout.md):

    oci-layout              {"imageLayoutVersion": "1.0.0"}
    index.json              one descriptor per reference, named by the annotation
                            org.opencontainers.image.ref.name
    blobs/sha256/<hex>      content, named by its sha256

Other OCI tools (skopeo, umoci) can read the folder. Two lock files sit beside index.json.
`.index.lock` serialises read-modify-write updates of index.json. `.content.lock` is
held shared by anything that adds blobs or references, and exclusively by `prune`. So a
prune never deletes a blob that a running pull has written but not tagged yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from moby_asm.fileio import atomic_write_text
from moby_asm.store.errors import BlobNotFound, DigestMismatch, ImageNotFound, InvalidStore
from moby_asm.store.locking import file_lock
from moby_asm.store.model import (
    OCI_INDEX,
    REF_NAME_ANNOTATION,
    Descriptor,
    DiskUsage,
    ImageContent,
    PruneResult,
    check_digest,
)

logger = logging.getLogger(__name__)

LAYOUT_VERSION = "1.0.0"
CHUNK_SIZE = 1 << 20
BLOB_MODE = 0o444
TEMPORARY_PREFIX = ".tmp-"
STAGING_PREFIX = ".staging-"
"""Folders in the store root where whole images are unpacked before their blobs are stored."""
DEFAULT_LOCK_TIMEOUT = 300.0
"""Seconds to wait for another process's lock; a pull of large layers can hold the shared lock for minutes."""

BlobSource = bytes | BinaryIO | Iterable[bytes]


class ContentStore:
    """Verified blobs and named references in an OCI image layout at `root`."""

    def __init__(self, root: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self._blobs = self.root / "blobs" / "sha256"
        self._index = self.root / "index.json"
        self._create_layout()

    @classmethod
    def open(cls, root: Path | None = None) -> ContentStore:
        """Open (creating if needed) the store at `root`, else at `store/` in the moby-asm cache folder.

        The cache folder is `$MOBY_ASM_CACHE_DIR` when set, else the platform's user cache folder.
        """
        if root is None:
            from moby_asm.catalog.index import cache_root

            root = cache_root() / "store"
        return cls(root)

    def _create_layout(self) -> None:
        self._blobs.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            atomic_write_text(layout, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}) + "\n")
        if not self._index.exists():
            with self._index_lock():
                if not self._index.exists():
                    self._write_index([])

    # Blobs

    def has_blob(self, digest: str) -> bool:
        return self._blob_file(digest).is_file()

    def blob_path(self, digest: str) -> Path:
        """Return the path of a blob. Its content was verified against the digest when it was written."""
        path = self._blob_file(digest)
        if not path.is_file():
            raise BlobNotFound(digest, self.root)
        return path

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def read_json(self, digest: str) -> Any:
        """Return the parsed JSON of a blob; raise InvalidStore if it is not JSON."""
        path = self.blob_path(digest)
        try:
            return json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidStore(path, f"not valid JSON: {error}") from error

    def write_blob(
        self,
        data: BlobSource,
        digest: str | None = None,
        size: int | None = None,
        *,
        media_type: str = "application/octet-stream",
    ) -> Descriptor:
        """Store a blob from bytes, a binary file or an iterable of byte chunks, and return its descriptor.

        The data streams into a temporary file in blobs/sha256 and is renamed into place
        only after its sha256 (and `size`, when given) match. A mismatch raises
        DigestMismatch, and any error removes the temporary file, so this method never
        leaves a blob file whose content differs from its name. A blob already stored is
        not read again from `data`.
        """
        if digest is not None and self.has_blob(check_digest(digest)):
            return self._existing_blob(digest, size, media_type)
        with self.adding_content():
            descriptor, temporary = self._write_temporary(data, digest, size, media_type)
            try:
                os.replace(temporary, self._blob_file(descriptor.digest))
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            _fsync_folder(self._blobs)
        logger.debug("stored blob %s (%d bytes)", descriptor.digest, descriptor.size)
        return descriptor

    def verify_blob(self, digest: str) -> None:
        """Hash a stored blob again; remove it and raise DigestMismatch if it was changed on disk."""
        path = self.blob_path(digest)
        hasher = hashlib.sha256()
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
        actual = f"sha256:{hasher.hexdigest()}"
        if actual != digest:
            path.unlink(missing_ok=True)
            raise DigestMismatch(digest, actual)

    def _blob_file(self, digest: str) -> Path:
        return self._blobs / check_digest(digest).removeprefix("sha256:")

    def _existing_blob(self, digest: str, size: int | None, media_type: str) -> Descriptor:
        stored_size = self._blob_file(digest).stat().st_size
        if size is not None and size != stored_size:
            raise DigestMismatch(digest, digest, expected_size=size, actual_size=stored_size)
        return Descriptor(media_type, digest, stored_size)

    def _write_temporary(
        self, data: BlobSource, digest: str | None, size: int | None, media_type: str
    ) -> tuple[Descriptor, Path]:
        descriptor_number, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=self._blobs)
        temporary = Path(name)
        try:
            with os.fdopen(descriptor_number, "wb") as stream:
                actual, written = _copy_hashing(data, stream, digest, size)
                stream.flush()
                os.fsync(stream.fileno())
            _check_content(digest, size, actual, written)
            os.chmod(temporary, BLOB_MODE)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return Descriptor(media_type, actual, written), temporary

    # References

    def tag(self, reference: str, descriptor: Descriptor) -> None:
        """Record `reference` for a stored manifest or index, replacing its previous descriptor."""
        if not self.has_blob(descriptor.digest):
            raise BlobNotFound(descriptor.digest, self.root)
        entry = descriptor.to_dict()
        entry["annotations"] = {**descriptor.annotations, REF_NAME_ANNOTATION: reference}

        def update(manifests: list[dict]) -> list[dict]:
            return [*(m for m in manifests if _reference_of(m) != reference), entry]

        with self.adding_content():
            self._update_index(update)
        logger.debug("tagged %s as %s", descriptor.digest, reference)

    def untag(self, reference: str) -> bool:
        """Remove `reference` from index.json and return whether it was there; blobs stay until `prune`."""
        found = False

        def update(manifests: list[dict]) -> list[dict]:
            nonlocal found
            remaining = [m for m in manifests if _reference_of(m) != reference]
            found = len(remaining) != len(manifests)
            return remaining

        self._update_index(update)
        return found

    def resolve(self, reference: str) -> Descriptor | None:
        for name, descriptor in self.iter_images():
            if name == reference:
                return descriptor
        return None

    def iter_images(self) -> Iterator[tuple[str, Descriptor]]:
        """Yield (reference, descriptor) for each named entry of index.json, sorted by reference."""
        named = [(_reference_of(entry), entry) for entry in self._read_index()]
        for name, entry in sorted((pair for pair in named if pair[0] is not None), key=lambda pair: pair[0]):
            yield name, self._entry_descriptor(entry)

    def index_descriptors(self) -> list[Descriptor]:
        """Return every entry of index.json, named or not; these are the roots that `prune` keeps."""
        return [self._entry_descriptor(entry) for entry in self._read_index()]

    def image(self, reference: str, platform: str) -> ImageContent:
        """Return the stored image of `reference` for `platform`; raise ImageNotFound if any part is missing."""
        descriptor = self.resolve(reference)
        if descriptor is None:
            raise ImageNotFound(reference, platform, f"no such reference in the content store {self.root}")
        from moby_asm.store.images import load_image

        return load_image(self, reference, descriptor, platform)

    def describe_manifest(self, digest: str) -> Descriptor:
        """Return a descriptor for a stored manifest or index, with the media type read from its JSON."""
        from moby_asm.store.images import manifest_media_type

        data = self.read_json(digest)
        return Descriptor(manifest_media_type(data), digest, self.blob_path(digest).stat().st_size)

    # Maintenance

    def prune(self, keep: set[str] | None = None) -> PruneResult:
        """Remove the references not in `keep` (all stay when None), then every blob none of them reaches."""
        from moby_asm.store.cleanup import prune

        return prune(self, keep)

    def disk_usage(self) -> DiskUsage:
        from moby_asm.store.cleanup import disk_usage

        return disk_usage(self)

    @contextmanager
    def adding_content(self) -> Iterator[None]:
        """Hold the shared content lock, so that `prune` waits until blobs written in the block are tagged."""
        with file_lock(self.root / ".content.lock", shared=True, timeout=self.lock_timeout):
            yield

    @contextmanager
    def removing_content(self) -> Iterator[None]:
        """Hold the content lock exclusively: no other process adds blobs or references meanwhile."""
        with file_lock(self.root / ".content.lock", timeout=self.lock_timeout):
            yield

    def iter_blob_files(self) -> Iterator[Path]:
        """Yield the files in blobs/sha256, including temporary files of writes in progress."""
        yield from sorted(self._blobs.iterdir())

    # index.json

    def _index_lock(self):
        return file_lock(self.root / ".index.lock", timeout=self.lock_timeout)

    def _update_index(self, update: Callable[[list[dict]], list[dict]]) -> None:
        with self._index_lock():
            self._write_index(update(self._read_index()))

    def _read_index(self) -> list[dict]:
        try:
            data = json.loads(self._index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidStore(self._index, f"not valid JSON: {error}") from error
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
            raise InvalidStore(self._index, "expected an object with a 'manifests' list of descriptors")
        return manifests

    def _write_index(self, manifests: list[dict]) -> None:
        # Sorted entries and keys make index.json depend only on its content, not on the order of pulls.
        ordered = sorted(manifests, key=lambda m: (_reference_of(m) or "", m.get("digest", "")))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ordered}
        atomic_write_text(self._index, json.dumps(index, indent=2, sort_keys=True) + "\n")

    def _entry_descriptor(self, entry: dict) -> Descriptor:
        try:
            return Descriptor.from_dict(entry)
        except ValueError as error:
            raise InvalidStore(self._index, str(error)) from error


def _fsync_folder(folder: Path) -> None:
    # A rename survives a crash only once the folder entry is on disk.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _reference_of(entry: dict) -> str | None:
    annotations = entry.get("annotations")
    return annotations.get(REF_NAME_ANNOTATION) if isinstance(annotations, dict) else None


def _iter_chunks(data: BlobSource) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(CHUNK_SIZE):
            yield chunk
    else:
        yield from data


def _copy_hashing(data: BlobSource, stream: BinaryIO, digest: str | None, size: int | None) -> tuple[str, int]:
    """Copy `data` to `stream`; return its digest and length, stopping early once it exceeds `size`."""
    hasher = hashlib.sha256()
    written = 0
    for chunk in _iter_chunks(data):
        written += len(chunk)
        if size is not None and written > size:
            raise DigestMismatch(digest or "(unknown)", "(not computed)", expected_size=size, actual_size=written)
        hasher.update(chunk)
        stream.write(chunk)
    return f"sha256:{hasher.hexdigest()}", written


def _check_content(digest: str | None, size: int | None, actual: str, written: int) -> None:
    if (digest is not None and actual != digest) or (size is not None and written != size):
        raise DigestMismatch(digest or actual, actual, expected_size=size, actual_size=written)
