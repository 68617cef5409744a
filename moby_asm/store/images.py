"""Read image indexes and manifests (OCI and Docker v2 schema 2) and assemble ImageContent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moby_asm.store.errors import ImageNotFound, InvalidStore
from moby_asm.store.model import (
    DOCKER_MANIFEST,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageContent,
)
from moby_asm.store.platforms import (
    available_platforms,
    config_matches,
    format_platform,
    parse_platform,
    select_manifest,
)

if TYPE_CHECKING:
    from moby_asm.store.content import ContentStore


def manifest_media_type(data: Any) -> str:
    """Return the media type of a parsed manifest or index.

    The `mediaType` field is optional in OCI manifests, so without it the type is
    inferred: an object with `manifests` is an index, one with `config` a manifest.
    """
    if not isinstance(data, dict):
        raise ValueError("a manifest must be a JSON object")
    declared = data.get("mediaType")
    if isinstance(declared, str):
        return declared
    if "manifests" in data:
        return OCI_INDEX
    if "config" in data:
        return OCI_MANIFEST
    raise ValueError("invalid manifest: the JSON contains neither 'manifests' (an index) nor 'config' (a manifest)")


def index_entries(index: Any) -> list[Descriptor]:
    """Return the manifest descriptors of a parsed image index; raise ValueError if it is malformed."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ValueError("an image index needs a 'manifests' list")
    return [Descriptor.from_dict(entry) for entry in manifests]


def manifest_parts(manifest: Any) -> tuple[Descriptor, list[Descriptor]]:
    """Return the config descriptor and layer descriptors (bottom first) of a parsed image manifest."""
    if not isinstance(manifest, dict):
        raise ValueError("an image manifest must be a JSON object")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ValueError("an image manifest needs a 'layers' list")
    return Descriptor.from_dict(manifest.get("config")), [Descriptor.from_dict(layer) for layer in layers]


def load_image(store: ContentStore, reference: str, descriptor: Descriptor, platform: str) -> ImageContent:
    """Assemble the ImageContent of `platform` from a stored manifest or index."""
    requested = parse_platform(platform)
    manifest_descriptor = descriptor
    if descriptor.is_index:
        manifest_descriptor = _select_stored_manifest(store, reference, descriptor, platform, requested)
    if manifest_descriptor.media_type not in MANIFEST_MEDIA_TYPES:
        media_type = manifest_descriptor.media_type
        reason = f"media type {media_type} is not an image manifest ({OCI_MANIFEST} or {DOCKER_MANIFEST})"
        raise ImageNotFound(reference, platform, reason)

    config_descriptor, layers = _parse_stored(store, manifest_descriptor.digest, manifest_parts)
    if not store.has_blob(config_descriptor.digest):
        raise ImageNotFound(
            reference, platform, f"config {config_descriptor.digest} is not in the store; pull it again"
        )
    config = store.read_json(config_descriptor.digest)
    if not isinstance(config, dict):
        raise InvalidStore(store.blob_path(config_descriptor.digest), "an image config must be a JSON object")
    if not config_matches(requested, config):
        raise ImageNotFound(reference, platform, f"the stored image is for {format_platform(config)}")

    missing = [layer.digest for layer in layers if not store.has_blob(layer.digest)]
    if missing:
        raise ImageNotFound(reference, platform, f"layers {', '.join(missing)} are not in the store; pull it again")
    return ImageContent(reference, manifest_descriptor, config, layers)


def _select_stored_manifest(
    store: ContentStore, reference: str, descriptor: Descriptor, platform: str, requested: dict
) -> Descriptor:
    entries = _parse_stored(store, descriptor.digest, index_entries)
    chosen = select_manifest(entries, requested)
    if chosen is None:
        offered = ", ".join(available_platforms(entries)) or "no platforms"
        raise ImageNotFound(reference, platform, f"the image index offers {offered}")
    if chosen.media_type in INDEX_MEDIA_TYPES:
        raise ImageNotFound(reference, platform, "an image index nested in another index is not supported")
    if not store.has_blob(chosen.digest):
        raise ImageNotFound(reference, platform, f"manifest {chosen.digest} is not in the store; pull this platform")
    return chosen


def _parse_stored(store: ContentStore, digest: str, parse):
    data = store.read_json(digest)
    try:
        return parse(data)
    except ValueError as error:
        raise InvalidStore(store.blob_path(digest), str(error)) from error
