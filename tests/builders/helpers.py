"""Small images for the builder tests: layer tars, a blob folder and ImageContent values.

Layers are written with tarfile from member specs, so tests can make members that no
well-behaved tool writes: names with `..`, absolute names, whiteouts and sparse files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moby_asm.builders.base import BuildJob
from moby_asm.reporter import SilentReporter
from moby_asm.store.model import Descriptor, ImageContent

BUSYBOX = Path("/bin/busybox")
MTIME = 1600000000
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class Member:
    """One member of a test layer. `content` is written for regular files only."""

    name: str
    type: bytes = tarfile.REGTYPE
    content: bytes = b""
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def file(name: str, content: bytes | str = b"", mode: int = 0o644, **fields: Any) -> Member:
    data = content.encode() if isinstance(content, str) else content
    return Member(name, tarfile.REGTYPE, data, mode, **fields)


def folder(name: str, mode: int = 0o755, **fields: Any) -> Member:
    return Member(name, tarfile.DIRTYPE, mode=mode, **fields)


def symlink(name: str, target: str) -> Member:
    return Member(name, tarfile.SYMTYPE, mode=0o777, linkname=target)


def hardlink(name: str, target: str) -> Member:
    return Member(name, tarfile.LNKTYPE, linkname=target)


def whiteout(path: str) -> Member:
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory: str) -> Member:
    return file(f"{directory}/.wh..wh..opq")


def tar_bytes(members: Iterable[Member]) -> bytes:
    """Return an uncompressed PAX tar of `members`, names written exactly as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mode = member.mode
            info.mtime = MTIME
            info.uid, info.gid = member.uid, member.gid
            info.linkname = member.linkname
            info.devmajor, info.devminor = member.devmajor, member.devminor
            info.pax_headers = dict(member.pax)
            if member.type == tarfile.REGTYPE:
                info.size = len(member.content)
                archive.addfile(info, io.BytesIO(member.content))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def gnu_sparse_tar(name: str, real_size: int, data_offset: int, data: bytes) -> bytes:
    """Return a tar with one old-GNU sparse member: `data` at `data_offset`, zeros elsewhere."""
    stored = data + b"\0" * (-len(data) % 512)
    header = bytearray(512)

    def put(offset: int, length: int, value: bytes) -> None:
        header[offset : offset + len(value)] = value

    def octal(value: int, length: int) -> bytes:
        return b"%0*o\0" % (length - 1, value)

    put(0, 100, name.encode())
    put(100, 8, octal(0o644, 8))
    put(108, 8, octal(0, 8))
    put(116, 8, octal(0, 8))
    put(124, 12, octal(len(stored), 12))
    put(136, 12, octal(MTIME, 12))
    put(156, 1, b"S")
    put(257, 8, b"ustar  \0")
    put(386, 12, octal(data_offset, 12))
    put(398, 12, octal(len(data), 12))
    put(483, 12, octal(real_size, 12))
    put(148, 8, b" " * 8)
    put(148, 8, b"%06o\0 " % sum(header))
    return bytes(header) + stored + b"\0" * 1024


class BlobFolder:
    """A folder of blobs named by digest, standing in for the content store."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.root / digest.removeprefix("sha256:")).write_bytes(data)
        return digest, len(data)

    def path(self, digest: str) -> Path:
        return self.root / digest.removeprefix("sha256:")


def make_layer(blobs: BlobFolder, members: Iterable[Member], compression: str = "gzip") -> Descriptor:
    data = tar_bytes(members)
    media_type = OCI_LAYER
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)
        media_type = OCI_LAYER_GZIP
    digest, size = blobs.add(data)
    return Descriptor(media_type, digest, size)


def raw_layer(blobs: BlobFolder, data: bytes, media_type: str = OCI_LAYER) -> Descriptor:
    digest, size = blobs.add(data)
    return Descriptor(media_type, digest, size)


def make_image(
    blobs: BlobFolder,
    reference: str,
    layers: list[Descriptor],
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    workdir: str = "",
    label: dict | None = None,
) -> ImageContent:
    """Store a config and manifest for `layers` and return the image."""
    config: dict[str, Any] = {"Entrypoint": entrypoint, "Cmd": cmd, "Env": env, "WorkingDir": workdir}
    if label is not None:
        config["Labels"] = {"org.mobyproject.config": json.dumps(label)}
    image_config = {"architecture": "amd64", "os": "linux", "config": config, "rootfs": {"type": "layers"}}
    config_digest, config_size = blobs.add(json.dumps(image_config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [layer.to_dict() for layer in layers],
    }
    manifest_digest, manifest_size = blobs.add(json.dumps(manifest).encode())
    descriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest_digest, manifest_size)
    return ImageContent(reference, descriptor, image_config, layers)


def busybox_members(*applets: str) -> list[Member]:
    members = [folder("bin"), file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    members += [symlink(f"bin/{applet}", "busybox") for applet in applets]
    return members


def kernel_tar() -> bytes:
    return tar_bytes([folder("lib"), folder("lib/modules"), file("lib/modules/modules.dep", "kernel modules\n")])


class Images:
    """Images by reference, with `lookup` and `blob_path` shaped like BuildJob's callables."""

    def __init__(self, root: Path):
        self.blobs = BlobFolder(root / "blobs")
        self.images: dict[str, ImageContent] = {}

    def copy(self) -> Images:
        """Return a copy whose added images stay out of this one. Both share the blobs, named by digest."""
        other = Images.__new__(Images)
        other.blobs = self.blobs
        other.images = dict(self.images)
        return other

    def add(self, reference: str, layers: list[list[Member]], **config: Any) -> ImageContent:
        descriptors = [make_layer(self.blobs, members) for members in layers]
        image = make_image(self.blobs, reference, descriptors, **config)
        self.images[reference] = image
        return image

    def add_image(self, image: ImageContent) -> ImageContent:
        self.images[image.reference] = image
        return image

    def lookup(self, reference: str) -> ImageContent:
        return self.images[reference]

    def blob_path(self, digest: str) -> Path:
        return self.blobs.path(digest)

    def job(self, config: dict, output_dir: Path, formats: list[str], name: str = "demo") -> BuildJob:
        return BuildJob(name, config, formats, "linux/amd64", output_dir, self.lookup, self.blob_path)


def add_standard_images(images: Images) -> None:
    """Add the kernel, init and busybox images that most tests use."""
    images.add(
        "example.org/kernel:1", [[file("kernel", b"KERNEL" * 100, mode=0o600), file("kernel.tar", kernel_tar())]]
    )
    images.add(
        "example.org/init:1",
        [[folder("etc"), file("etc/issue", "welcome\n"), folder("sbin"), file("sbin/init", "#!/bin/sh\n", mode=0o755)]],
    )
    images.add("example.org/busybox:1", [busybox_members("echo", "sh", "cat")], cmd=["/bin/sh"])


def standard_config(**sections: Any) -> dict:
    config: dict[str, Any] = {
        "kernel": {"image": "example.org/kernel:1", "cmdline": "console=ttyS0"},
        "init": ["example.org/init:1"],
        "onboot": [
            {
                "name": "hello",
                "image": "example.org/busybox:1",
                "command": ["/bin/echo", "hello from onboot"],
                "readonly": True,
            }
        ],
        "services": [{"name": "getty", "image": "example.org/busybox:1"}],
        "files": [{"path": "etc/motd", "contents": "hi\n"}],
    }
    config.update(sections)
    return config


def build(images: Images, config: dict, output_dir: Path, formats: list[str], name: str = "demo") -> list:
    from moby_asm.builders.native import NativeBuilder

    return NativeBuilder().build(images.job(config, output_dir, formats, name), SilentReporter())


def read_tar(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    """Return each member of a tar by name with its contents (None for non-files)."""
    result = {}
    with tarfile.open(path) as archive:
        for member in archive:
            data = archive.extractfile(member).read() if member.isreg() else None
            result[member.name] = (member, data)
    return result


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return archive.getnames()
