"""Volumes: folders under containers/volumes/NAME that containers bind by name.

Facts from LinuxKit (src/cmd/linuxkit/moby/config.go and build/volume.go, v1.x): a
volume NAME lives at /containers/volumes/NAME with `lower` (the image contents), `tmp`
and `merged` (where init mounts an overlay at boot). A bind or bind mount whose source
does not start with '/' names a volume, so its source becomes the `merged` folder. A
read-only volume must be bound read-only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from moby_asm.builders.errors import InvalidBuildConfig, MissingImageContent
from moby_asm.builders.native.entries import Entry, FileData, Kind, Origin, directory, join_path, regular_file
from moby_asm.builders.native.tree import FileTree

VOLUMES_ROOT = "containers/volumes"

_NAME = re.compile(r"[a-z0-9_-]+")
"""LinuxKit's pattern for volume names (it also accepts the empty name, which no path can use)."""


def check_volumes(volumes: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Return the volumes by name, or raise InvalidBuildConfig for an invalid or repeated name."""
    by_name: dict[str, Mapping[str, Any]] = {}
    for index, volume in enumerate(volumes):
        name = str(volume.get("name", ""))
        where = f"volumes[{index}] ({name})"
        if not _NAME.fullmatch(name):
            raise InvalidBuildConfig(where, "a volume name may contain only a-z, 0-9, '_' and '-'")
        if name in by_name:
            raise InvalidBuildConfig(where, f"the volume name {name!r} is used twice")
        if volume.get("format", "filesystem") not in ("filesystem", "oci"):
            raise InvalidBuildConfig(where, f"unsupported volume format {volume.get('format')!r}")
        by_name[name] = volume
    return by_name


def volume_folder(name: str) -> str:
    return f"{VOLUMES_ROOT}/{name}"


def merged_folder(name: str) -> str:
    return f"/{VOLUMES_ROOT}/{name}/merged"


def apply_volumes(entry: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, Any]:
    """Return `entry` with every volume name in `binds`, `binds.add` and bind mounts replaced by its path.

    Only the config entry is changed, not the image label, as in LinuxKit.
    """
    updated = dict(entry)
    for key in ("binds", "binds.add"):
        if entry.get(key) is not None:
            updated[key] = [_volume_bind(text, volumes, where) for text in entry[key]]
    if entry.get("mounts") is not None:
        updated["mounts"] = [_volume_mount(mount, volumes, where) for mount in entry["mounts"]]
    return updated


def _volume_bind(text: str, volumes: Mapping[str, Mapping[str, Any]], where: str) -> str:
    parts = text.split(":")
    if parts[0].startswith("/"):
        return text
    volume = _find(parts[0], volumes, where)
    if volume.get("readonly") and (len(parts) < 3 or "ro" not in parts[2].split(",")):
        raise InvalidBuildConfig(where, f"the volume {parts[0]!r} is read-only; bind it with the option ro")
    parts[0] = merged_folder(parts[0])
    return ":".join(parts)


def _volume_mount(mount: Mapping[str, Any], volumes: Mapping[str, Mapping[str, Any]], where: str) -> Mapping[str, Any]:
    source = str(mount.get("source") or "")
    if mount.get("type") != "bind" or source.startswith("/"):
        return mount
    volume = _find(source, volumes, where)
    if volume.get("readonly") and not _first_access_option_is_ro(mount.get("options") or []):
        raise InvalidBuildConfig(where, f"the volume {source!r} is read-only; mount it with the option ro")
    return {**mount, "source": merged_folder(source)}


def _first_access_option_is_ro(options: list[str]) -> bool:
    for option in options:
        if option in ("ro", "rw"):
            return option == "ro"
    return False


def _find(name: str, volumes: Mapping[str, Mapping[str, Any]], where: str) -> Mapping[str, Any]:
    if name not in volumes:
        raise InvalidBuildConfig(where, f"the bind source {name!r} is neither an absolute path nor a volume name")
    return volumes[name]


def add_oci_layout(tree: FileTree, image: Any, blob_path: Callable[[str], Path], folder: str, origin: Origin) -> None:
    """Add the image as an OCI image layout (oci-layout, index.json, blobs) in `folder`.

    The blobs are copied from the content store unchanged, and index.json names the image
    with the annotation org.opencontainers.image.ref.name.
    """
    manifest_path = blob_path(image.manifest.digest)
    try:
        manifest = json.loads(manifest_path.read_bytes())
        digests = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers", []))]
    except (ValueError, KeyError, TypeError) as error:
        raise MissingImageContent(image.reference, "manifest", f"cannot be read ({error})") from None
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": image.manifest.media_type,
                "digest": image.manifest.digest,
                "size": image.manifest.size,
                "annotations": {"org.opencontainers.image.ref.name": image.reference},
            }
        ],
    }
    tree.add(directory(folder, origin))
    tree.add(regular_file(join_path(folder, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}', origin))
    tree.add(regular_file(join_path(folder, "index.json"), json.dumps(index, sort_keys=True).encode(), origin))
    for digest in dict.fromkeys([image.manifest.digest, *digests]):
        path = blob_path(digest)
        name = join_path(folder, "blobs/sha256/" + digest.removeprefix("sha256:"))
        blob = Entry(name, Kind.FILE, 0o644, origin, size=path.stat().st_size, data=FileData(path, path.stat().st_size))
        tree.add(blob)
