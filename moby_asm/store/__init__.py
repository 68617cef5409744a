"""The local content store: pulled images kept as an OCI image layout of verified blobs.

`ContentStore.open()` opens the store in the moby-asm cache folder. Registries write into
it through `moby_asm.registry.RegistryClient.pull`; builders read images with
`ContentStore.image(reference, platform)` and layer files with `ContentStore.blob_path`.
"""

from moby_asm.store.content import ContentStore
from moby_asm.store.errors import (
    BlobNotFound,
    DigestMismatch,
    ImageNotFound,
    InvalidDigest,
    InvalidPlatform,
    InvalidStore,
    StoreError,
    StoreLocked,
)
from moby_asm.store.model import Descriptor, DiskUsage, ImageContent, PruneResult

__all__ = [
    "BlobNotFound",
    "ContentStore",
    "Descriptor",
    "DigestMismatch",
    "DiskUsage",
    "ImageContent",
    "ImageNotFound",
    "InvalidDigest",
    "InvalidPlatform",
    "InvalidStore",
    "PruneResult",
    "StoreError",
    "StoreLocked",
]
