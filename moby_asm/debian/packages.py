"""Resolve a component's Debian source into locked packages, and build its image from them.

The lock records, for each such component, every package with its version, architecture,
pool file name, size and SHA-256, and the image tag: a hash of the source and of those
packages. A build with that lock fetches exactly those bytes from whichever configured
mirror serves the suite, verifies them, and writes the same layer on every machine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moby_asm.compose.render import LOCAL_IMAGE_PREFIX
from moby_asm.debian.archive import Archive
from moby_asm.debian.errors import ArchiveError
from moby_asm.debian.mirrors import Mirror, configured_mirrors, mirrors_for
from moby_asm.debian.model import DebianSource
from moby_asm.debian.solver import Solver
from moby_asm.fileio import WriteFailed


@dataclass
class DebianOptions:
    """Package sources of a run: mirror URIs and their keyring (else apt's sources), offline, and the cache."""

    mirrors: list[str] = field(default_factory=list)
    keyring: Path | None = None
    offline: bool = False
    cache: Path | None = None


@dataclass(frozen=True)
class DebianImage:
    """The image built for a Debian source: its reference, digest, how it was found, and build warnings."""

    component: str
    reference: str
    digest: str
    how: str
    scripted: tuple[str, ...] = ()

    @property
    def pinned(self) -> str:
        return self.reference

    def record(self) -> dict[str, str]:
        return {"image": self.reference, "digest": self.digest}


def valid_package_record(item: Any) -> bool:
    """Return whether a lock entry of a package has every field, each of the right type."""
    return (isinstance(item, dict) and all(isinstance(item.get(key), str) and item[key]
                                           for key in ("name", "version", "architecture", "filename"))
            and not item["filename"].startswith("/") and ".." not in item["filename"].split("/")
            and isinstance(item.get("sha256"), str) and len(item["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in item["sha256"])
            and isinstance(item.get("size"), int) and not isinstance(item["size"], bool) and item["size"] >= 0)


def debian_reference(component: str, source: DebianSource, architecture: str, packages: list[dict[str, Any]]) -> str:
    """Return the local tag of the image made from `packages` under `source`'s settings."""
    settings = source.model_dump(mode="json")
    identity = [settings, architecture, [(p["name"], p["version"], p["architecture"], p["sha256"]) for p in packages]]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{LOCAL_IMAGE_PREFIX}{component}:deb-{digest[:16]}"


class DebianPackages:
    """Resolves and builds the Debian sources of one run through one archive reader and content store."""

    def __init__(self, options: DebianOptions, store=None):
        from moby_asm.store import ContentStore

        self.options = options
        try:
            self.store = store or ContentStore.open(options.cache)
        except OSError as error:
            raise WriteFailed(Path(error.filename or options.cache or "."), error.strerror or str(error)) from error
        self._mirrors: list[Mirror] | None = None
        self._archive: Archive | None = None

    def resolve(self, component: str, source: DebianSource, platform: str) -> dict[str, Any]:
        """Return the lock record of a source: the chosen packages and the image tag they make."""
        architecture = source.architecture_for(platform)
        mirrors = mirrors_for(self.mirrors(), source.suite, component)
        index = self.archive().index(mirrors, source.suite, list(source.components), architecture)
        where = f"suite {source.suite} ({', '.join(source.components)}, {architecture}) of {_names(mirrors)}"
        records = Solver(index, list(source.exclude), source.essential, where).solve(source.requested())
        packages = [record.record() for record in records]
        return {"packages": packages, "image": debian_reference(component, source, architecture, packages)}

    def image(self, component: str, source: DebianSource, platform: str, record: dict[str, Any]) -> DebianImage:
        """Return the image of a locked source from the store, or build it from its verified packages."""
        from moby_asm.debian.layer import scratch_folder, select_paths, store_image, unpack_packages

        reference = record["image"]
        stored = self.store.resolve(reference)
        if stored is not None and self._intact(stored.digest):
            return DebianImage(component, reference, stored.digest, "cached")
        mirrors = [] if self.options.offline else [m.uri for m in mirrors_for(self.mirrors(), source.suite, component)]
        with self.store.adding_content(), scratch_folder(self.store) as scratch:
            debs = [(package["name"], self._fetch(package, mirrors)) for package in record["packages"]]
            unpacked = unpack_packages(debs, Path(scratch))
            entries = select_paths(unpacked, source)
            digest = store_image(self.store, reference, entries, source.architecture_for(platform))
        return DebianImage(component, reference, digest, "built", tuple(unpacked.scripted))

    def _intact(self, manifest_digest: str) -> bool:
        """Return whether the manifest, config and layer of a stored image still match their digests.

        A damaged blob is removed by the check, so the image is made again from its packages.
        """
        from moby_asm.store.errors import StoreError

        try:
            self.store.verify_blob(manifest_digest)
            manifest = self.store.read_json(manifest_digest)
            for blob in [manifest["config"], *manifest["layers"]]:
                self.store.verify_blob(blob["digest"])
        except (StoreError, KeyError, TypeError):
            return False
        return True

    def mirrors(self) -> list[Mirror]:
        if self._mirrors is None:
            uris = self.options.mirrors or _configured_uris()
            self._mirrors = configured_mirrors(uris, self.options.keyring or _configured_keyring())
        return self._mirrors

    def archive(self) -> Archive:
        if self._archive is None:
            self._archive = Archive(self.store, self.mirrors(), self.options.offline)
        return self._archive

    def _fetch(self, package: dict[str, Any], mirrors: list[str]) -> Path:
        problems = []
        for uri in mirrors or [""]:
            try:
                return self.archive().fetch(package, uri)
            except ArchiveError as error:
                problems.append(str(error))
        if self.options.offline:
            raise ArchiveError(problems[0])
        raise ArchiveError(f"package {package['name']} {package['version']} could not be fetched from any mirror:\n"
                           + "\n".join(f"  {problem}" for problem in problems)
                           + "\nA mirror of a stable suite keeps only the current version of each package; run "
                           "'moby-asm lock --upgrade COMPONENT' to lock the current one, or name an archive that "
                           "keeps this version with --debian-mirror")


def _names(mirrors: list[Mirror]) -> str:
    return ", ".join(mirror.uri for mirror in mirrors)


def _configured_uris() -> list[str]:
    from moby_asm.catalog.loading import user_config

    settings = user_config().debian
    return list(settings.mirrors) if settings else []


def _configured_keyring() -> Path | None:
    from moby_asm.catalog.loading import config_file, user_config

    settings = user_config().debian
    if settings is None or settings.keyring is None:
        return None
    return config_file().parent / Path(settings.keyring).expanduser()
