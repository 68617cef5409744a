"""Descriptors, media types and the values the content store returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from moby_asm.store.errors import InvalidDigest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """Return `digest` unchanged if it is a sha256 digest; raise InvalidDigest otherwise.

    Digests become file names under blobs/sha256, so this check also keeps paths inside the store.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidDigest(str(digest))
    return digest


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest and its size in bytes."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Descriptor:
        """Build a descriptor from its OCI JSON form; raise ValueError if a field is missing or invalid."""
        if not isinstance(data, dict):
            raise ValueError(f"a descriptor must be a JSON object, not {type(data).__name__}")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"descriptor {data!r} needs a string mediaType and a non-negative integer size")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ValueError(f"descriptor {data!r} needs a digest of the form sha256:<64 lowercase hex digits>")
        annotations = data.get("annotations") or {}
        platform = data.get("platform")
        if not isinstance(annotations, dict) or not (platform is None or isinstance(platform, dict)):
            raise ValueError(f"descriptor {data!r} has invalid annotations or platform")
        return cls(media_type, digest, size, dict(annotations), platform)

    def to_dict(self) -> dict[str, Any]:
        """Return the OCI JSON form, leaving out empty annotations and a missing platform."""
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        if self.platform is not None:
            data["platform"] = dict(self.platform)
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class ImageContent:
    """One platform's image from the store: its manifest, parsed config and layers (bottom first)."""

    reference: str
    manifest: Descriptor
    config: dict
    layers: list[Descriptor]


@dataclass(frozen=True)
class PruneResult:
    """The result of `ContentStore.prune`: the references removed, the number of blobs deleted and the bytes freed."""

    removed_references: list[str]
    removed_blobs: int
    freed_bytes: int


@dataclass(frozen=True)
class DiskUsage:
    """Blob count and bytes in the store; `reclaimable_bytes` is what `prune()` would free."""

    images: int
    blobs: int
    total_bytes: int
    reclaimable_bytes: int
