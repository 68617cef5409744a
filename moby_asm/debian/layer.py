"""Turn verified .deb files into one deterministic image layer, as `dpkg-deb -x` would unpack them.

Each package's data archive is read in order and its entries are merged by path (a
later package's file replaces an earlier one's; folders merge). Hard links become
copies, so the layer can be sorted freely. The layer lists its entries sorted by path,
with one fixed modification time and numeric owners, so the same packages always give
the same bytes. Maintainer scripts are not run; the packages that have them are named.

A source's `paths` selects and renames: each target takes the entries that its patterns
match (`*`, `?` and `[...]` stay within one path part). A target ending in `.tar` becomes
a tar archive of the matches and everything below them. A single matched folder is
copied under the target. Otherwise the matched files are concatenated in path order.
"""

from __future__ import annotations

import fnmatch
import io
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.builders.native.entries import FIXED_MTIME
from moby_asm.debian.errors import ArchiveError
from moby_asm.debian.model import DebianSource
from moby_asm.errors import InputError
from moby_asm.store.archives import OCI_CONFIG, OCI_LAYER, plain_descriptor
from moby_asm.store.model import OCI_MANIFEST

MAINTAINER_SCRIPTS = ("preinst", "postinst")


class UnmatchedPath(InputError):
    """A `paths` pattern of a Debian source matches nothing in its packages."""


@dataclass
class _Entry:
    info: tarfile.TarInfo
    content: Path | None = None


@dataclass
class Unpacked:
    """The merged entries of a set of packages, with file contents in a scratch folder."""

    scratch: Path
    entries: dict[str, _Entry] = field(default_factory=dict)
    scripted: list[str] = field(default_factory=list)

    def merge(self, name: str, package: _Package) -> None:
        """Add a package's entries over the earlier ones: files replace files, folders merge."""
        if package.scripted:
            self.scripted.append(name)
        for path, entry in package.entries.items():
            existing = self.entries.get(path)
            if existing is None or not (existing.info.isdir() and entry.info.isdir()):
                self.entries[path] = entry


@dataclass
class _Package:
    """The entries of one package's data archive, its file contents copied into `scratch`."""

    scratch: Path
    entries: dict[str, _Entry] = field(default_factory=dict)
    scripted: bool = False
    files: int = 0

    @classmethod
    def read(cls, name: str, deb: Path, scratch: Path) -> _Package:
        from debian.arfile import ArError
        from debian.debfile import DebError, DebFile

        scratch.mkdir()
        package = cls(scratch)
        try:
            deb_file = DebFile(str(deb))
            package.scripted = any(script in deb_file.control.scripts() for script in MAINTAINER_SCRIPTS)
            with deb_file.data.tgz() as archive:
                for member in archive:
                    package._add_member(archive, member)
        except (ArError, DebError, tarfile.TarError, lzma.LZMAError, zlib.error, EOFError, OSError,
                ValueError) as error:
            raise ArchiveError(f"package {name} ({deb}) cannot be unpacked: {error}") from error
        return package

    def _add_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = member.name.removeprefix("./").strip("/")
        if not path or ".." in path.split("/"):
            return
        info = _normal_info(member, path)
        if member.islnk():
            source = self.entries.get(member.linkname.removeprefix("./").strip("/"))
            if source is not None:
                info.type, info.linkname, info.size = tarfile.REGTYPE, "", source.info.size
                self.entries[path] = _Entry(info, source.content)
            return
        content = None
        if member.isfile():
            # Numbered by member, so a path that appears twice never shares a content file.
            self.files += 1
            content = self.scratch / str(self.files)
            with archive.extractfile(member) as stream, open(content, "wb") as target:
                shutil.copyfileobj(stream, target, 1 << 20)
        self.entries[path] = _Entry(info, content)


def _normal_info(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.size = member.type, member.mode, member.size if member.isfile() else 0
    info.linkname = member.linkname if member.issym() else ""
    info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, "", ""
    info.devmajor, info.devminor = member.devmajor, member.devminor
    info.mtime = FIXED_MTIME
    return info


def select_paths(unpacked: Unpacked, source: DebianSource) -> dict[str, _Entry]:
    """Return the entries the layer holds: all of them, or what `paths` maps, under the mapped names."""
    if not source.paths:
        return unpacked.entries
    selected: dict[str, _Entry] = {}
    for target, patterns in sorted(source.paths.items()):
        patterns = [patterns] if isinstance(patterns, str) else patterns
        matches = sorted({path for pattern in patterns for path in unpacked.entries if _matches(pattern, path)})
        if not matches:
            raise UnmatchedPath(f"'paths' target {target!r}: {', '.join(map(repr, patterns))} matches nothing in the "
                                f"packages; their files are listed by 'dpkg-deb -c PACKAGE.deb'")
        selected.update(_parents(target))
        selected.update(_mapped(unpacked, target, matches))
    return selected


def _mapped(unpacked: Unpacked, target: str, matches: list[str]) -> dict[str, _Entry]:
    entries = unpacked.entries
    if target.endswith(".tar"):
        below = sorted({path for path in entries for match in matches if path == match or path.startswith(match + "/")})
        content = unpacked.scratch / f"tar-{len(list(unpacked.scratch.iterdir()))}"
        with open(content, "wb") as stream:
            write_tar({**{p: e for m in matches for p, e in _parents(m).items()}, **{p: entries[p] for p in below}},
                      stream)
        return {target: _Entry(_file_info(target, content.stat().st_size, 0o644), content)}
    if len(matches) == 1 and entries[matches[0]].info.isdir():
        prefix = matches[0] + "/"
        moved = {path: f"{target}/{path.removeprefix(prefix)}" for path in entries if path.startswith(prefix)}
        return {new: _renamed(entries[old], new) for old, new in moved.items()} | {
            target: _renamed(entries[matches[0]], target)}
    files = [entries[path] for path in matches]
    if any(not item.info.isfile() for item in files):
        raise UnmatchedPath(f"'paths' target {target!r} matches {', '.join(matches)}, which are not all regular files; "
                            "map a single folder, regular files, or a target ending in '.tar'")
    if len(files) == 1:
        return {target: _renamed(files[0], target)}
    content = unpacked.scratch / f"joined-{len(list(unpacked.scratch.iterdir()))}"
    with open(content, "wb") as stream:
        for item in files:
            with open(item.content, "rb") as part:
                shutil.copyfileobj(part, stream)
    return {target: _Entry(_file_info(target, content.stat().st_size, 0o644), content)}


def _matches(pattern: str, path: str) -> bool:
    pattern_parts, path_parts = pattern.split("/"), path.split("/")
    return len(pattern_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(path_parts, pattern_parts, strict=True))


def _parents(path: str) -> dict[str, _Entry]:
    parts = path.split("/")[:-1]
    return {"/".join(parts[:i]): _Entry(_dir_info("/".join(parts[:i]))) for i in range(1, len(parts) + 1)}


def _renamed(entry: _Entry, path: str) -> _Entry:
    info = tarfile.TarInfo(path)
    for attribute in ("type", "mode", "size", "linkname", "uid", "gid", "uname", "gname", "mtime"):
        setattr(info, attribute, getattr(entry.info, attribute))
    return _Entry(info, entry.content)


def _file_info(path: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = size, mode, FIXED_MTIME
    return info


def _dir_info(path: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
    return info


def write_tar(entries: dict[str, _Entry], stream) -> None:
    """Write `entries` sorted by path as a PAX tar; equal entries give equal bytes."""
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(entries):
            entry = entries[path]
            if entry.content is None:
                archive.addfile(entry.info)
            else:
                with open(entry.content, "rb") as data:
                    archive.addfile(entry.info, data)


def store_image(store, reference: str, entries: dict[str, _Entry], architecture: str) -> str:
    """Write a one-layer image of `entries` into the store, tag it `reference`, and return its manifest digest."""
    layer = _stream_layer(store, entries)
    config = {"architecture": architecture, "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}
    config_blob = store.write_blob(_json(config), media_type=OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": plain_descriptor(config_blob),
                "layers": [plain_descriptor(layer)]}
    descriptor = store.write_blob(_json(manifest), media_type=OCI_MANIFEST)
    store.tag(reference, descriptor)
    return descriptor.digest


def unpack_packages(packages: list[tuple[str, Path]], scratch: Path) -> Unpacked:
    """Merge the data of `packages` (name and .deb path, in lock order) into one tree of entries.

    Packages are read in parallel threads, since xz decompression releases the GIL, and
    merged in lock order, so the result does not depend on which finishes first.
    """
    workers = max(1, min(len(packages), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unpack") as pool:
        read = [pool.submit(_Package.read, name, deb, scratch / f"package-{number}")
                for number, (name, deb) in enumerate(packages)]
        unpacked = Unpacked(scratch)
        for (name, _), future in zip(packages, read, strict=True):
            unpacked.merge(name, future.result())
    return unpacked


def _stream_layer(store, entries: dict[str, _Entry]):
    """Store the layer tar of `entries` while a thread writes it into a pipe, so it is written to disk once."""
    read_end, write_end = os.pipe()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer") as pool:
        writer = pool.submit(_write_and_close, entries, write_end)
        try:
            with os.fdopen(read_end, "rb") as stream:
                layer = store.write_blob(stream, media_type=OCI_LAYER)
        finally:
            # A failed store closes the read end, so the writer stops with a broken pipe instead of blocking.
            error = writer.exception()
        if error is not None:
            raise error
    return layer


def _write_and_close(entries: dict[str, _Entry], descriptor: int) -> None:
    with os.fdopen(descriptor, "wb") as stream:
        write_tar(entries, stream)


def _json(data: dict) -> io.BytesIO:
    return io.BytesIO(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def scratch_folder(store) -> tempfile.TemporaryDirectory:
    """Return a scratch folder inside the store that `cache prune` recognises as staging."""
    from moby_asm.store.content import STAGING_PREFIX

    return tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=store.root)
