"""The registry client: pulls images from OCI and Docker registries into the content store.

Importing this package loads neither oras nor requests; they are imported when a
client first contacts a registry.
"""

from moby_asm.registry.client import RegistryClient
from moby_asm.registry.errors import (
    CredentialsError,
    DigestMismatch,
    ImageNotFound,
    InvalidManifest,
    InvalidReference,
    RegistryError,
    RegistryTimeout,
    RegistryUnavailable,
    Unauthorized,
)
from moby_asm.registry.reference import Reference, parse_reference

__all__ = [
    "CredentialsError",
    "DigestMismatch",
    "ImageNotFound",
    "InvalidManifest",
    "InvalidReference",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryTimeout",
    "RegistryUnavailable",
    "Unauthorized",
    "parse_reference",
]
