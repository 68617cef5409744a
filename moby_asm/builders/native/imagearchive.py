"""Container image archives of the root filesystem: `docker` and `oci` formats.

Both hold one image with one layer, the root filesystem tar, and the entrypoint
/bin/rc.init. That is the image LinuxKit's `docker` format builds: LinuxKit writes the
tar with a Dockerfile (FROM scratch, COPY . ./, ENTRYPOINT ["/bin/rc.init"]) for
`docker build`, whereas moby-asm writes an archive that `docker load` reads directly.

- `docker` (NAME-docker.tar): the layout `docker save` writes since Docker 25, an OCI
  image layout with an uncompressed layer plus manifest.json, which older `docker load`
  versions and `skopeo docker-archive:` read.
- `oci` (NAME-oci.tar): an OCI image layout (oci-layout, index.json, blobs) with a gzip
  layer, for `skopeo oci-archive:` and umoci; index.json tags the image `latest`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from moby_asm.builders.native.outputs import add_bytes, archive_info, deterministic_gzip
from moby_asm.builders.native.tarwriter import HashingWriter, WrittenTar
from moby_asm.store.platforms import parse_platform

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
TAG = "latest"
CREATED = "2017-04-18T16:30:00Z"
ENTRYPOINT = ["/bin/rc.init"]


@dataclass(frozen=True)
class Blob:
    """A blob of the archive: its digest, size and either bytes or a file."""

    digest: str
    size: int
    content: bytes | Path

    @classmethod
    def of(cls, content: bytes) -> Blob:
        return cls(f"sha256:{hashlib.sha256(content).hexdigest()}", len(content), content)

    @property
    def name(self) -> str:
        return "blobs/sha256/" + self.digest.removeprefix("sha256:")

    def descriptor(self, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size}


def repository_name(name: str) -> str:
    """Return `name` as a valid Docker repository name: lower case, separators only between letters or digits."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return cleaned or "moby-asm"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def image_config(diff_id: str, platform: str) -> bytes:
    """Return the image config JSON: platform, entrypoint /bin/rc.init and the layer's diff_id."""
    fields = parse_platform(platform)
    config: dict[str, Any] = {
        "architecture": fields["architecture"],
        "os": fields["os"],
        "created": CREATED,
        "config": {"Entrypoint": ENTRYPOINT},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if "variant" in fields:
        config["variant"] = fields["variant"]
    return canonical_json(config)


def _manifest(config: Blob, layer: Blob, layer_type: str) -> Blob:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(OCI_CONFIG),
        "layers": [layer.descriptor(layer_type)],
    }
    return Blob.of(canonical_json(manifest))


def _index(manifest: Blob, annotations: dict[str, str]) -> bytes:
    descriptor = {**manifest.descriptor(OCI_MANIFEST), "annotations": annotations}
    return canonical_json(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [descriptor]}
    )


def write_docker_archive(target: BinaryIO, rootfs: Path, layer: WrittenTar, name: str, platform: str) -> None:
    """Write a `docker load` archive of the root filesystem tar `rootfs` to `target`."""
    layer_blob = Blob(layer.digest, layer.size, rootfs)
    config = Blob.of(image_config(layer.digest, platform))
    manifest = _manifest(config, layer_blob, OCI_LAYER)
    repository = repository_name(name)
    annotations = {CONTAINERD_NAME: f"docker.io/library/{repository}:{TAG}", REF_NAME: TAG}
    docker_manifest = [{"Config": config.name, "RepoTags": [f"{repository}:{TAG}"], "Layers": [layer_blob.name]}]
    with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        _write_blobs(archive, [config, layer_blob, manifest])
        add_bytes(archive, "index.json", _index(manifest, annotations))
        add_bytes(archive, "manifest.json", canonical_json(docker_manifest))
        add_bytes(archive, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))


def write_oci_archive(target: BinaryIO, rootfs: Path, layer: WrittenTar, scratch: Path, platform: str) -> None:
    """Write an OCI image layout archive of `rootfs` with a gzip-compressed layer to `target`."""
    compressed = scratch / "layer.tar.gz"
    with open(compressed, "wb") as raw:
        counted = HashingWriter(raw)
        with deterministic_gzip(counted) as gzip_file, open(rootfs, "rb") as source:  # type: ignore[arg-type]
            shutil.copyfileobj(source, gzip_file, 1 << 20)
    layer_blob = Blob(counted.digest, counted.size, compressed)
    config = Blob.of(image_config(layer.digest, platform))
    manifest = _manifest(config, layer_blob, OCI_LAYER_GZIP)
    with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        _write_blobs(archive, [config, layer_blob, manifest])
        add_bytes(archive, "index.json", _index(manifest, {REF_NAME: TAG}))
        add_bytes(archive, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))


def _write_blobs(archive: tarfile.TarFile, blobs: list[Blob]) -> None:
    archive.addfile(archive_info("blobs", is_directory=True))
    archive.addfile(archive_info("blobs/sha256", is_directory=True))
    for blob in blobs:
        if isinstance(blob.content, bytes):
            add_bytes(archive, blob.name, blob.content)
        else:
            with open(blob.content, "rb") as source:
                archive.addfile(archive_info(blob.name, blob.size), source)
