"""Assemble the root filesystem of a LinuxKit config in LinuxKit's order.

The order comes from LinuxKit's `Build` (src/cmd/linuxkit/moby/build/build.go, v1.x):

1. the kernel as boot/kernel with boot/cmdline and boot/ucode.cpio, and its kernel.tar
   unpacked into /,
2. the init images, unpacked into /,
3. the volumes under containers/volumes/NAME,
4. each onboot, onshutdown and service container as an OCI bundle under containers/SECTION,
5. the `files` entries.

A bundle contains config.json, runtime.json and the image, in rootfs/ when
the container is read-only and otherwise in lower/ beside tmp/ and an empty rootfs/ for
the overlay that init mounts at boot. An image used by several containers is unpacked
once and bind-mounted into the others, as LinuxKit does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moby_asm.builders.base import BuildJob
from moby_asm.builders.errors import InvalidBuildConfig, MissingImageContent, PathConflict, UnsupportedLayer
from moby_asm.builders.native.bundle import make_bundle_config, rootfs_mounts, to_json
from moby_asm.builders.native.entries import (
    BytesData,
    Entry,
    FileData,
    Kind,
    MemberData,
    Origin,
    directory,
    join_path,
    normalise_path,
    regular_file,
)
from moby_asm.builders.native.files import add_files
from moby_asm.builders.native.fixups import INIT_RESOLV_CONF, apply_image_fixups
from moby_asm.builders.native.layers import flatten_layers
from moby_asm.builders.native.streams import StreamRegistry, StreamSource, extract_members
from moby_asm.builders.native.tree import FileTree
from moby_asm.builders.native.volumes import add_oci_layout, apply_volumes, check_volumes, volume_folder
from moby_asm.reporter import Reporter

CONTAINER_SECTIONS = ("onboot", "onshutdown", "services")
FIRST_CONTAINER_ID = 100
APK_DATABASE = "lib/apk/db/installed"


@dataclass
class RootFilesystem:
    """The assembled tree and the tar streams its contents are read from."""

    tree: FileTree
    registry: StreamRegistry


def allocate_ids(config: Mapping[str, Any]) -> dict[str, int]:
    """Return the uid and gid of each container name, from 100 up in onboot, onshutdown, services order.

    LinuxKit counts every container, and a repeated name keeps the later number. A
    container runs as uid 0 unless its `uid` names a container. The numbers also let
    `files` entries be owned by a container.
    """
    ids: dict[str, int] = {}
    next_id = FIRST_CONTAINER_ID
    for section in CONTAINER_SECTIONS:
        for entry in config.get(section) or []:
            ids[entry["name"]] = next_id
            next_id += 1
    return ids


class Assembler:
    """Builder of the `RootFilesystem` of one job. Files extracted from images go into `scratch`."""

    def __init__(self, job: BuildJob, scratch: Path, reporter: Reporter):
        self.job = job
        self.config = job.config
        self.scratch = scratch
        self.reporter = reporter
        self.registry = StreamRegistry()
        self.tree = FileTree(replace_directories=False)
        self.ids = allocate_ids(self.config)
        self.volumes = check_volumes(self.config.get("volumes") or [])
        self._images: dict[str, Any] = {}
        self._unpacked: dict[str, str] = {}

    def assemble(self) -> RootFilesystem:
        self._add_kernel()
        self._add_init()
        self._add_volumes()
        for section in CONTAINER_SECTIONS:
            for index, entry in enumerate(self.config.get(section) or []):
                self._add_container(section, index, entry)
        if self.config.get("files"):
            self.reporter.step("adding files")
            add_files(self.tree, self.config["files"], self.ids, self.config)
        return RootFilesystem(self.tree, self.registry)

    # Images

    def _image(self, reference: str) -> Any:
        if reference not in self._images:
            self._images[reference] = self.job.images(reference)
        return self._images[reference]

    def _layer_sources(self, image: Any) -> list[StreamSource]:
        sources = []
        for layer in image.layers:
            if "zstd" in layer.media_type:
                raise UnsupportedLayer(image.reference, layer.digest, "zstd")
            sources.append(StreamSource(self.job.blob_path(layer.digest), image.reference, layer.digest))
        return sources

    def _unpack(self, image: Any, origin: Origin, resolv_conf_symlink: str | None = None) -> FileTree:
        tree = flatten_layers(self._layer_sources(image), self.registry, origin)
        apply_image_fixups(tree, origin, resolv_conf_symlink=resolv_conf_symlink)
        return tree

    def _insert(self, tree: FileTree, prefix: str) -> None:
        """Add the entries of an image's tree below `prefix`, with hard-link targets below `prefix` too.

        An implicit directory of the image leaves an existing directory as it is, because
        LinuxKit writes no entry for it. Where an earlier part put a symlink or file, it
        raises PathConflict: LinuxKit's tar would write the entries below through that path.
        """
        for entry in tree.ordered():
            entry.path = join_path(prefix, entry.path)
            if entry.kind is Kind.HARDLINK:
                entry.linkname = join_path(prefix, entry.linkname)
            existing = self.tree.get(entry.path)
            if entry.implicit and existing is not None:
                if existing.is_directory:
                    continue
                reason = (
                    f"{entry.origin.location} has entries below it but {existing.origin.location} "
                    f"made it a {existing.kind.value}"
                )
                raise PathConflict(entry.path, reason)
            self.tree.add(entry)

    def _add_folders(self, folder: str, origin: Origin) -> None:
        """Add `folder` and each of its parents as a 0755 directory, as LinuxKit's tarPrefix does."""
        parts = folder.split("/")
        for end in range(1, len(parts) + 1):
            self.tree.add(directory("/".join(parts[:end]), origin))

    # Kernel

    def _add_kernel(self) -> None:
        kernel = self.config.get("kernel") or {}
        if not kernel.get("image"):
            return
        image = self._image(kernel["image"])
        self.reporter.step(f"unpacking kernel {image.reference}")
        origin = Origin(image.reference, "kernel")
        streams = StreamRegistry()
        image_tree = flatten_layers(self._layer_sources(image), streams, origin)
        file_names = _kernel_files(kernel)
        found = {role: _regular_member(image, image_tree, name) for role, name in file_names.items()}
        copies = extract_members(streams, [entry.data for entry in found.values()], self.scratch)  # type: ignore[misc]
        # LinuxKit writes the three files in the order in which the kernel image stores them.
        for role, member in sorted(found.items(), key=lambda item: item[1].seq):
            copy = copies[member.data]  # type: ignore[index]
            self._add_kernel_file(role, file_names[role], copy, member.mode, image, kernel, origin)

    def _add_kernel_file(
        self, role: str, name: str, copy: Path, mode: int, image: Any, kernel: Mapping[str, Any], origin: Origin
    ) -> None:
        if role == "tar":
            source = StreamSource(copy, image.reference, name)
            self._insert(flatten_layers([source], self.registry, origin, whiteouts=False), "")
            return
        self.tree.add(directory("boot", origin))
        if role == "kernel":
            self.tree.add(regular_file("boot/cmdline", str(kernel.get("cmdline") or "").encode(), origin))
        target = "boot/kernel" if role == "kernel" else "boot/ucode.cpio"
        size = copy.stat().st_size
        self.tree.add(Entry(target, Kind.FILE, mode, origin, size=size, data=FileData(copy, size)))

    # Init

    def _add_init(self) -> None:
        databases: list[MemberData | BytesData] = []
        for index, reference in enumerate(self.config.get("init") or []):
            image = self._image(reference)
            self.reporter.step(f"unpacking init image {image.reference}")
            tree = self._unpack(image, Origin(image.reference, f"init[{index}]"), INIT_RESOLV_CONF)
            database = tree.get(APK_DATABASE)
            if database is not None and database.kind is Kind.FILE and database.data is not None:
                databases.append(database.data)  # type: ignore[arg-type]
            self._insert(tree, "")
        if len(databases) > 1:
            self.tree.add(regular_file(APK_DATABASE, self._merge_apk_databases(databases), Origin("", "init")))

    def _merge_apk_databases(self, databases: list[MemberData | BytesData]) -> bytes:
        """Join the apk databases of the init images, each followed by a blank line, as LinuxKit does."""
        members = [data for data in databases if isinstance(data, MemberData)]
        copies = extract_members(self.registry, members, self.scratch)
        parts = []
        for data in databases:
            content = data.content if isinstance(data, BytesData) else copies[data].read_bytes()
            parts.append(content + b"\n\n")
        return b"".join(parts)

    # Volumes

    def _add_volumes(self) -> None:
        for index, volume in enumerate(self.config.get("volumes") or []):
            folder = volume_folder(volume["name"])
            source = volume.get("image") or ""
            origin = Origin(source, f"volumes[{index}]")
            self._add_folders(folder, origin)
            if source:
                self._add_volume_image(volume, folder, origin)
            else:
                # NOTE: LinuxKit may leave lower/ out of a volume without an image. An empty lower/ is harmless.
                self.tree.add(directory(f"{folder}/lower", origin))
            self.tree.add(directory(f"{folder}/tmp", origin))
            self.tree.add(directory(f"{folder}/merged", origin))

    def _add_volume_image(self, volume: Mapping[str, Any], folder: str, origin: Origin) -> None:
        image = self._image(volume["image"])
        self.reporter.step(f"adding volume {volume['name']} from {image.reference}")
        if volume.get("platforms"):
            self.reporter.warning(
                f"volume {volume['name']}: only the build platform {self.job.platform} is included, "
                f"not every platform of {volume['platforms']}"
            )
        lower = f"{folder}/lower"
        if volume.get("format") == "oci":
            add_oci_layout(self.tree, image, self.job.blob_path, lower, origin)
            return
        self.tree.add(directory(lower, origin))
        self._insert(self._unpack(image, origin), lower)

    # Containers

    def _add_container(self, section: str, index: int, entry: Mapping[str, Any]) -> None:
        name = str(entry.get("name", ""))
        where = f"{section}[{index}] ({name})"
        if not name or "/" in name or name in (".", ".."):
            raise InvalidBuildConfig(where, "a container name must be one path component, without '/'")
        folder = f"containers/{section}/{index:03d}-{name}" if section != "services" else f"containers/{section}/{name}"
        image = self._image(entry["image"])
        self.reporter.step(f"adding {section} container {name} from {image.reference}")
        origin = Origin(image.reference, f"{section}[{index}]")
        bundle = make_bundle_config(apply_volumes(entry, self.volumes, where), image.config, self.ids, where)
        if not bundle.spec["process"].get("args"):
            self.reporter.warning(f"{where}: neither the config nor the image sets a command, so runc cannot start it")
        self._add_folders(folder, origin)
        root, shared = self._container_root(image, folder, bundle.readonly, origin)
        self.tree.add(regular_file(f"{folder}/config.json", to_json(bundle.spec), origin))
        if not bundle.readonly:
            self.tree.add(directory(f"{folder}/tmp", origin))
        if not bundle.readonly or shared:
            self.tree.add(directory(f"{folder}/rootfs", origin))
        runtime = dict(bundle.runtime)
        runtime["mounts"] = rootfs_mounts(folder, root, bundle.readonly) + runtime["mounts"]
        self.tree.add(regular_file(f"{folder}/runtime.json", to_json(runtime), origin))

    def _container_root(self, image: Any, folder: str, readonly: bool, origin: Origin) -> tuple[str, bool]:
        """Return where the container's image is unpacked, and whether an earlier bundle unpacked it."""
        if image.reference in self._unpacked:
            return self._unpacked[image.reference], True
        root = f"{folder}/{'rootfs' if readonly else 'lower'}"
        self.tree.add(directory(root, origin))
        self._insert(self._unpack(image, origin), root)
        self._unpacked[image.reference] = root
        return root, False


def _kernel_files(kernel: Mapping[str, Any]) -> dict[str, str]:
    """Return the files to take from the kernel image by role: kernel, tar and ucode.

    `tar` defaults to kernel.tar, and '' or 'none' leaves it out. `ucode` has no default.
    """
    files = {"kernel": kernel.get("binary") or "kernel"}
    tar = kernel.get("tar")
    tar = "kernel.tar" if tar is None else tar
    if tar not in ("", "none"):
        files["tar"] = tar
    if kernel.get("ucode"):
        files["ucode"] = kernel["ucode"]
    return files


def _regular_member(image: Any, tree: FileTree, name: str) -> Entry:
    """Return the regular file `name` of the kernel image, or for a hard link an entry with its target's contents."""
    path = normalise_path(posixpath.normpath("/" + name))
    entry = tree.get(path)
    if entry is None:
        raise MissingImageContent(image.reference, name, "is not in the kernel image")
    content = entry.link_target if entry.kind is Kind.HARDLINK else entry
    if content is None or content.kind is not Kind.FILE or not isinstance(content.data, MemberData):
        raise MissingImageContent(image.reference, name, f"is a {entry.kind.value}, not a regular file")
    if content is not entry:
        return Entry(
            entry.path, Kind.FILE, entry.mode, entry.origin, size=content.size, data=content.data, seq=entry.seq
        )
    return entry
