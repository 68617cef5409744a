"""Import a `docker save` archive into the content store as an OCI image.

Both layouts that `docker save` writes are read through their `manifest.json`: the one
with `ID/layer.tar` folders (Docker before 25) and the OCI image layout (Docker 25 and
later). Layers are stored as they are in the archive, uncompressed, so each layer's
digest equals its diff ID in the image config.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from moby_asm.store.content import ContentStore
from moby_asm.store.errors import InvalidStore
from moby_asm.store.model import OCI_MANIFEST, Descriptor

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def import_docker_archive(store: ContentStore, archive: Path, reference: str) -> Descriptor:
    """Store the first image of a `docker save` archive and tag it `reference`; return its manifest descriptor."""
    try:
        with tarfile.open(archive) as tar:
            entry = _manifest_entry(tar, archive)
            config = store.write_blob(_member(tar, entry["Config"], archive), media_type=OCI_CONFIG)
            layers = [store.write_blob(_member(tar, name, archive), media_type=OCI_LAYER) for name in entry["Layers"]]
    except (tarfile.TarError, KeyError, TypeError, ValueError) as error:
        raise InvalidStore(archive, f"not a docker save archive: {error}") from error
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": plain_descriptor(config),
                "layers": [plain_descriptor(layer) for layer in layers]}
    descriptor = store.write_blob(json.dumps(manifest, sort_keys=True).encode(), media_type=OCI_MANIFEST)
    store.tag(reference, descriptor)
    return descriptor


def _manifest_entry(tar: tarfile.TarFile, archive: Path) -> dict:
    entries = json.load(_member(tar, "manifest.json", archive))
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise ValueError("manifest.json lists no image")
    return entries[0]


def _member(tar: tarfile.TarFile, name: str, archive: Path):
    stream = tar.extractfile(name)
    if stream is None:
        raise InvalidStore(archive, f"{name} is not a regular file")
    return stream


def plain_descriptor(descriptor: Descriptor) -> dict:
    """Return a descriptor as the JSON object that a manifest lists."""
    return {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size}
