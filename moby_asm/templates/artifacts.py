"""Publish, pull and list cookiecutter templates as OCI artifacts in a registry.

A template is an OCI image manifest (image-spec v1.1 artifact guidance) whose
`artifactType` is TEMPLATE_ARTIFACT_TYPE, whose config is the empty descriptor (the
2-byte blob `{}`), and whose single layer is the template folder as a tar+gzip archive.
The archive is deterministic: sorted entries, mtime 0, uid and gid 0, no user or group
names and a gzip header without a file name or time, so publishing the same folder
twice gives the same manifest digest. For the same reason the manifest has no
`org.opencontainers.image.created` annotation.

Requests go through moby-asm's registry transport, so plain HTTP, credentials,
timeouts and retries behave as they do for image pulls.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urljoin

from moby_asm.errors import InputError
from moby_asm.registry.client import MAX_MANIFEST_BYTES, RegistryClient, error_codes, fetch_manifest
from moby_asm.registry.errors import ImageNotFound, InvalidManifest, RegistryError
from moby_asm.registry.push import OCI_MANIFEST_TYPE, expect_status, push_blob, push_manifest, sha256_digest
from moby_asm.registry.reference import Reference, parse_reference
from moby_asm.registry.transport import Transport
from moby_asm.store.errors import DigestMismatch

TEMPLATE_ARTIFACT_TYPE = "application/vnd.moby-asm.template.v1"
TEMPLATE_LAYER_TYPE = "application/vnd.moby-asm.template.layer.v1.tar+gzip"

EMPTY_CONFIG_BYTES = b"{}"
EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:" + hashlib.sha256(EMPTY_CONFIG_BYTES).hexdigest(),
    "size": len(EMPTY_CONFIG_BYTES),
}
ANNOTATION_KEYS = {
    "name": "org.opencontainers.image.title",
    "version": "org.opencontainers.image.version",
    "description": "org.opencontainers.image.description",
    "source": "org.opencontainers.image.source",
}
"""Maps the keys of cookiecutter.json's "_moby_asm" object to OCI annotation keys."""

MAX_ENTRIES = 10_000
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
"""Limits of a template archive, checked on publish and on pull: entries, and file bytes unpacked (100 MiB)."""
CHUNK_SIZE = 1 << 20
OCI_PREFIX = "oci://"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class TemplateArtifact:
    """A template in a registry: the reference as given (without oci://), its manifest digest and annotations."""

    reference: str
    digest: str
    annotations: dict[str, str] = field(default_factory=dict)


class NotATemplate(RegistryError):
    """A reference names a manifest or index that is not a moby-asm template."""

    def __init__(self, *, reference: str, host: str, artifact_type: str):
        self.artifact_type = artifact_type
        message = f"{reference} is not a moby-asm template (artifact type {artifact_type})"
        super().__init__(message, reference=reference, host=host)


class UnsafeTemplateArchive(RegistryError):
    """A template layer is not a valid archive, or an entry would be unsafe to unpack."""

    def __init__(self, *, reference: str, host: str, reason: str):
        self.reason = reason
        message = f"rejected the template archive of {reference} from {host}: {reason}; nothing was written"
        super().__init__(message, reference=reference, host=host)


# Public API


def template_metadata(folder: Path) -> dict[str, str]:
    """Read name, version, description and source from the "_moby_asm" object of `folder`/cookiecutter.json.

    Keys absent from the object are absent from the result. Raise InputError when the
    folder has no cookiecutter.json or a value is not a non-empty string.
    """
    path = Path(folder) / "cookiecutter.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a cookiecutter template: {path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    section = data.get("_moby_asm", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise InputError(f'invalid {path}: expected a JSON object with an object "_moby_asm", '
                         'such as "_moby_asm": {"version": "1.0.0"}')
    metadata = {}
    for key in ANNOTATION_KEYS:
        value = section.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise InputError(f'invalid {path}: "_moby_asm"."{key}" must be a non-empty string')
        metadata[key] = value
    return metadata


def publish_template(folder: Path, reference: str, *, insecure: set[str] = frozenset()) -> TemplateArtifact:
    """Pack the cookiecutter template in `folder` and push it to `reference` (oci://HOST/REPOSITORY:TAG)."""
    given, parsed = _parse(reference)
    if parsed.digest is not None:
        raise InputError(f"cannot publish to {given}: give a tag, not a digest, such as {parsed.name}:1.0.0")
    folder = Path(folder)
    annotations = template_annotations(folder)
    layer = pack_template(folder)
    manifest = _manifest_bytes(layer, annotations)

    transport = _transport(parsed, insecure)
    push_blob(transport, parsed, EMPTY_CONFIG_BYTES, EMPTY_CONFIG["digest"])
    push_blob(transport, parsed, layer, _sha256(layer))
    digest = push_manifest(transport, parsed, manifest)
    return TemplateArtifact(given, digest, annotations)


def pull_template(reference: str, destination: Path, *, insecure: set[str] = frozenset()) -> TemplateArtifact:
    """Download the template `reference` names and unpack it into `destination`, which must not exist.

    Every blob is checked against its digest before anything is written. The archive is
    unpacked into a hidden staging folder beside `destination` and renamed into place
    only when complete, so a failure leaves no `destination`.
    """
    given, parsed = _parse(reference)
    destination = Path(destination)
    _require_absent(destination)
    transport = _transport(parsed, insecure)
    descriptor, _, manifest = fetch_manifest(transport, parsed, parsed.target, parsed.digest)
    layer = _template_layer(transport, given, descriptor.media_type, manifest)

    with tempfile.TemporaryFile() as config, tempfile.TemporaryFile() as archive:
        _download_blob(transport, parsed, given, manifest["config"], config)
        _download_blob(transport, parsed, given, layer, archive)
        archive.seek(0)
        try:
            unpack_template(archive, destination)
        except UnsafeArchive as error:
            raise UnsafeTemplateArchive(reference=given, host=transport.endpoint, reason=str(error)) from error
    return TemplateArtifact(given, descriptor.digest, _annotations_of(manifest))


def list_templates(repository: str, *, insecure: set[str] = frozenset()) -> list[tuple[str, TemplateArtifact]]:
    """Return (tag, artifact) for every tag of `repository` that names a moby-asm template, sorted by tag."""
    given = repository.removeprefix(OCI_PREFIX)
    if "@" in given or ":" in given.rsplit("/", 1)[-1]:
        raise InputError(f"invalid repository {given!r}: give HOST/REPOSITORY without a tag or digest")
    parsed = parse_reference(given)
    transport = _transport(parsed, insecure)
    templates = []
    for tag in _list_tags(transport, parsed):
        tagged = Reference(parsed.domain, parsed.path, tag, None)
        descriptor, _, manifest = fetch_manifest(transport, tagged, tag, None)
        if _artifact_type(descriptor.media_type, manifest) == TEMPLATE_ARTIFACT_TYPE:
            artifact = TemplateArtifact(f"{given}:{tag}", descriptor.digest, _annotations_of(manifest))
            templates.append((tag, artifact))
    return templates


def template_annotations(folder: Path) -> dict[str, str]:
    """Return the manifest annotations of the template in `folder`; its title defaults to the folder name."""
    metadata = template_metadata(folder)
    if "version" not in metadata:
        raise InputError(f'{Path(folder) / "cookiecutter.json"} has no template version: add '
                         '"_moby_asm": {"version": "1.0.0"} to publish it')
    metadata.setdefault("name", Path(folder).resolve().name)
    return {ANNOTATION_KEYS[key]: value for key, value in sorted(metadata.items())}


# Packing


def pack_template(folder: Path) -> bytes:
    """Return the folder as a deterministic tar+gzip archive; raise InputError for content a pull would reject."""
    folder = Path(folder)
    buffer = io.BytesIO()
    total = 0
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            paths = _sorted_tree(folder)
            if len(paths) > MAX_ENTRIES:
                raise InputError(f"{folder} has {len(paths)} entries; a template may have at most {MAX_ENTRIES}")
            for path in paths:
                info = _tar_info(folder, path)
                total += info.size
                if total > MAX_UNPACKED_BYTES:
                    raise InputError(f"{folder} contains more than {MAX_UNPACKED_BYTES} bytes of files; "
                                     "a template may hold at most that")
                if info.isreg():
                    with path.open("rb") as content:
                        archive.addfile(info, content)
                else:
                    archive.addfile(info)
    return buffer.getvalue()


def _sorted_tree(folder: Path) -> list[Path]:
    """Return every path under `folder`, each folder's children sorted by name, without following symlinks."""
    paths = []
    for child in sorted(folder.iterdir(), key=lambda path: path.name):
        paths.append(child)
        if child.is_dir() and not child.is_symlink():
            paths.extend(_sorted_tree(child))
    return paths


def _tar_info(folder: Path, path: Path) -> tarfile.TarInfo:
    """Return a tar header with fixed owner and time; only permission bits (0o777) of the mode are kept."""
    details = path.lstat()
    info = tarfile.TarInfo(path.relative_to(folder).as_posix())
    info.mode = stat.S_IMODE(details.st_mode) & 0o777
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(details.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        _check_packed_link(folder, path, info.name, info.linkname)
    elif stat.S_ISDIR(details.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(details.st_mode):
        info.size = details.st_size
    else:
        raise InputError(f"{path} is neither a file, a folder nor a symlink; a template may contain only those")
    return info


def _check_packed_link(folder: Path, path: Path, name: str, target: str) -> None:
    reason = _link_escape(name, target)
    root = os.path.realpath(folder)
    if reason is None and os.path.commonpath([root, os.path.realpath(path)]) != root:
        reason = "it resolves to a path outside the template folder"
    if reason is not None:
        raise InputError(f"symlink {path} -> {target} cannot be published: {reason}")


# Unpacking


class UnsafeArchive(Exception):
    """An archive entry that unpack_template rejects; the message names the entry and the reason."""


def unpack_template(archive: IO[bytes], destination: Path) -> None:
    """Unpack a template tar+gzip archive into `destination`, which must not exist.

    Reject absolute paths, `..`, hard links, device files and other special files,
    symlinks that resolve outside `destination`, more than MAX_ENTRIES entries and more
    than MAX_UNPACKED_BYTES of file content, with UnsafeArchive. Symlinks are created
    after all files, so no file is written through a link.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent))
    try:
        _extract(archive, staging)
        # mkdtemp creates the folder as 0o700; give it the usual mode of a new folder.
        staging.chmod(0o755)
        _require_absent(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _extract(archive: IO[bytes], root: Path) -> None:
    links: list[tuple[str, str]] = []
    folders: list[tuple[Path, int]] = []
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=archive, mode="r|gz") as entries:
            for count, member in enumerate(entries, start=1):
                if count > MAX_ENTRIES:
                    raise UnsafeArchive(f"the archive has more than {MAX_ENTRIES} entries")
                name = _entry_name(member, seen)
                if name is None:
                    continue
                if member.isreg():
                    total += member.size
                    if total > MAX_UNPACKED_BYTES:
                        raise UnsafeArchive(f"the files unpack to more than {MAX_UNPACKED_BYTES} bytes")
                    _write_file(entries, member, root / name)
                elif member.isdir():
                    (root / name).mkdir(parents=True, exist_ok=True)
                    folders.append((root / name, member.mode & 0o777))
                elif member.issym():
                    _check_entry_link(name, member.linkname)
                    links.append((name, member.linkname))
                else:
                    raise UnsafeArchive(f"entry {name!r} is a {_kind(member)}; only files, folders and symlinks "
                                        "are allowed")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UnsafeArchive(f"the layer is not a valid tar+gzip archive ({error})") from error
    _create_links(root, links)
    for path, mode in sorted(folders, reverse=True):
        path.chmod(mode)


def _entry_name(member: tarfile.TarInfo, seen: set[str]) -> str | None:
    """Return the entry's normalised relative path, None for the root folder entry; reject unsafe paths."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        raise UnsafeArchive(f"entry {member.name!r} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchive(f"entry {member.name!r} contains '..'")
    if str(path) == ".":
        return None
    name = str(path)
    if name in seen:
        raise UnsafeArchive(f"entry {name!r} appears twice")
    seen.add(name)
    return name


def _write_file(entries: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = entries.extractfile(member)
    with path.open("xb") as output:
        shutil.copyfileobj(source, output, CHUNK_SIZE)
    path.chmod(member.mode & 0o777)


def _check_entry_link(name: str, target: str) -> None:
    reason = _link_escape(name, target)
    if reason is not None:
        raise UnsafeArchive(f"symlink {name!r} -> {target!r}: {reason}")


def _create_links(root: Path, links: list[tuple[str, str]]) -> None:
    for name, target in links:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    # Each target was checked by its text alone, but a chain of links can still leave the folder.
    real_root = os.path.realpath(root)
    for name, target in links:
        if os.path.commonpath([real_root, os.path.realpath(root / name)]) != real_root:
            raise UnsafeArchive(f"symlink {name!r} -> {target!r} resolves to a path outside the template")


def _link_escape(name: str, target: str) -> str | None:
    """Return why the symlink `name` -> `target` leaves the folder it is in, judged by its text; else None."""
    if not target:
        return "the target is empty"
    if target.startswith("/"):
        return "the target is an absolute path"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        return "the target is outside the template folder"
    return None


def _kind(member: tarfile.TarInfo) -> str:
    kinds = {tarfile.LNKTYPE: "hard link", tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
             tarfile.FIFOTYPE: "FIFO"}
    return kinds.get(member.type, f"special file (tar type {member.type!r})")


def _require_absent(destination: Path) -> None:
    if destination.exists() or destination.is_symlink():
        raise InputError(f"{destination} already exists: give a folder that does not exist")


# Registry requests


def _transport(reference: Reference, insecure: set[str]) -> Transport:
    """Return a transport for the registry of `reference`, set up as image pulls set up theirs."""
    return RegistryClient(insecure=set(insecure)).transport(reference)


def _list_tags(transport: Transport, reference: Reference) -> list[str]:
    """Return the repository's tags, following the Link header of each page of the tag list."""
    name = reference.name
    path: str | None = f"{reference.path}/tags/list"
    tags: set[str] = set()
    visited: set[str] = set()
    while path is not None and path not in visited:
        visited.add(path)
        with transport.request("GET", path, reference=name) as response:
            if response.status_code == 404:
                reason = f"the registry has no repository {reference.path} ({error_codes(response)})"
                raise ImageNotFound(reference=name, host=transport.endpoint, reason=reason)
            expect_status(response, (200,), transport, name)
            tags.update(_tags_of(response, transport, name))
            link = response.links.get("next", {}).get("url")
        path = _next_page_path(transport, link)
    return sorted(tags)


def _tags_of(response, transport: Transport, name: str) -> list[str]:
    try:
        tags = json.loads(response.content).get("tags") or []
    except (ValueError, AttributeError) as error:
        raise RegistryError(f"{transport.endpoint} returned an invalid tag list for {name}: {error}",
                            reference=name, host=transport.endpoint) from error
    return [tag for tag in tags if isinstance(tag, str)]


def _next_page_path(transport: Transport, link: str | None) -> str | None:
    if not link:
        return None
    url = urljoin(transport.base_url, link)
    return url.removeprefix(transport.base_url) if url.startswith(transport.base_url) else None


def _download_blob(transport: Transport, reference: Reference, given: str, descriptor: Any, output: IO[bytes]) -> None:
    """Write the blob of `descriptor` to `output` and raise DigestMismatch unless it matches digest and size."""
    digest, size = _checked_descriptor(transport, given, descriptor)
    name = str(reference)
    hasher = hashlib.sha256()
    received = 0

    def attempt() -> None:
        nonlocal hasher, received
        output.seek(0)
        output.truncate()
        hasher, received = hashlib.sha256(), 0
        with transport.request_once("GET", f"{reference.path}/blobs/{digest}", reference=name) as response:
            if response.status_code == 404:
                reason = f"blob {digest} is missing from the registry"
                raise ImageNotFound(reference=given, host=transport.endpoint, reason=reason)
            expect_status(response, (200,), transport, name)
            for chunk in response.iter_content(CHUNK_SIZE):
                received += len(chunk)
                if received > size:
                    break
                hasher.update(chunk)
                output.write(chunk)

    transport.with_retries(attempt, name)
    actual = f"sha256:{hasher.hexdigest()}"
    if actual != digest or received != size:
        raise DigestMismatch(digest, actual, expected_size=size, actual_size=received, reference=given,
                             host=transport.endpoint)


def _checked_descriptor(transport: Transport, given: str, descriptor: Any) -> tuple[str, int]:
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    size = descriptor.get("size") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidManifest(reference=given, host=transport.endpoint, reason=f"invalid blob digest {digest!r}")
    limit = MAX_UNPACKED_BYTES + MAX_MANIFEST_BYTES
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= limit:
        reason = f"blob {digest} has size {size!r}; expected 0 to {limit} bytes"
        raise InvalidManifest(reference=given, host=transport.endpoint, reason=reason)
    return digest, size


# Manifests


def _manifest_bytes(layer: bytes, annotations: dict[str, str]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_TYPE,
        "artifactType": TEMPLATE_ARTIFACT_TYPE,
        "config": EMPTY_CONFIG,
        "layers": [{"mediaType": TEMPLATE_LAYER_TYPE, "digest": _sha256(layer), "size": len(layer)}],
        "annotations": annotations,
    }
    return json.dumps(manifest, indent=2).encode()


def _template_layer(transport: Transport, given: str, media_type: str, manifest: Any) -> dict:
    """Return the layer descriptor of a template manifest; raise NotATemplate for any other content."""
    artifact_type = _artifact_type(media_type, manifest)
    if artifact_type != TEMPLATE_ARTIFACT_TYPE:
        raise NotATemplate(reference=given, host=transport.endpoint, artifact_type=artifact_type)
    layers = manifest.get("layers")
    if (not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict)
            or layers[0].get("mediaType") != TEMPLATE_LAYER_TYPE):
        reason = f"a template has exactly one layer of media type {TEMPLATE_LAYER_TYPE}"
        raise InvalidManifest(reference=given, host=transport.endpoint, reason=reason)
    return layers[0]


def _artifact_type(media_type: str, manifest: Any) -> str:
    """Return the manifest's artifactType, else its config media type (image-spec v1.1), else its own media type."""
    if not isinstance(manifest, dict):
        return media_type
    config = manifest.get("config")
    for candidate in (manifest.get("artifactType"), config.get("mediaType") if isinstance(config, dict) else None):
        if isinstance(candidate, str) and candidate:
            return candidate
    return media_type


def _annotations_of(manifest: Any) -> dict[str, str]:
    annotations = manifest.get("annotations") if isinstance(manifest, dict) else None
    if not isinstance(annotations, dict):
        return {}
    return {key: value for key, value in annotations.items() if isinstance(key, str) and isinstance(value, str)}


def _parse(reference: str) -> tuple[str, Reference]:
    given = reference.removeprefix(OCI_PREFIX)
    return given, parse_reference(given)


def _sha256(content: bytes) -> str:
    return sha256_digest(content)
