"""Build the images of components whose source is a Docker build context.

An image is tagged with a hash of its context, Dockerfile name, target and build
arguments (the tag that compose renders), so an unchanged context is found again and
not rebuilt: first in the content store, then in the registry it was pushed to. Only
when neither holds it does the Docker Engine build it. With a registry the image is
pushed and pulled back into the content store by digest; without one it is saved from
the engine straight into the content store.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from moby_asm.build.images import ImageFetcher, ImageNotCached
from moby_asm.catalog.loading import CatalogEntry
from moby_asm.catalog.model import ComponentVersion
from moby_asm.compose.render import LOCAL_IMAGE_PREFIX, image_reference, pinned_reference
from moby_asm.reporter import Reporter


@dataclass(frozen=True)
class BuiltImage:
    """A component image made from a build context: where it is, its manifest digest, and how it was found."""

    component: str
    reference: str
    digest: str
    how: str

    @property
    def pinned(self) -> str:
        """The reference the rendered config names: pinned by digest when a registry holds the image."""
        return pinned_reference(self.reference, self.digest)

    def record(self) -> dict[str, str]:
        return {"image": self.reference, "digest": self.digest}


def context_reference(entry: CatalogEntry, version: ComponentVersion, platform: str, registry: str | None) -> str:
    """Return the reference a context image is built as: in `registry` when one is set, else local."""
    local = image_reference(entry, version, platform)
    if not registry:
        return local
    return f"{registry.rstrip('/')}/{local.removeprefix(LOCAL_IMAGE_PREFIX)}"


class ContextImages:
    """Finds or builds the image of each component with a build context."""

    def __init__(self, fetcher: ImageFetcher, registry: str | None, engine: str | None, network: str | None,
                 reporter: Reporter, cancel: threading.Event | None = None):
        self.fetcher = fetcher
        self.registry = registry.rstrip("/") if registry else None
        self.engine = engine
        self.network = network
        self.reporter = reporter
        self.cancel = cancel
        self._client = None
        self._client_lock = threading.Lock()

    def get(self, entry: CatalogEntry, version: ComponentVersion) -> BuiltImage:
        reference = context_reference(entry, version, self.fetcher.platform, self.registry)
        stored = self.fetcher.store.resolve(reference)
        if stored is not None and not self.fetcher.options.pull:
            return BuiltImage(entry.name, reference, stored.digest, "cached")
        if self.fetcher.options.offline:
            raise ImageNotCached(reference)
        if self.registry is not None:
            found = self._from_registry(entry.name, reference)
            if found is not None:
                return found
        return self._build(entry, version, reference)

    def ensure_in_engine(self, entry: CatalogEntry, version: ComponentVersion) -> None:
        """Build a local-only image again when the engine lacks it, so that `linuxkit build --docker` finds it.

        The engine's build cache usually makes this quick; without it, the engine's image may
        differ from the recorded digest, as the engine does not build reproducibly.
        """
        from docker.errors import ImageNotFound

        reference = context_reference(entry, version, self.fetcher.platform, self.registry)
        if not reference.startswith(LOCAL_IMAGE_PREFIX):
            return
        try:
            self._engine().images.get(reference)
        except ImageNotFound:
            self._build(entry, version, reference)

    def _from_registry(self, component: str, reference: str) -> BuiltImage | None:
        from moby_asm.engine import EngineError
        from moby_asm.registry.errors import ImageNotFound, RegistryError

        try:
            digest = self.fetcher.client().resolve(reference).digest
        except ImageNotFound:
            return None
        except RegistryError as error:
            raise EngineError(f"component {component!r}: looking up {reference} in its registry failed: {error}; "
                              "start the registry, or build without --registry") from error
        self._store_from_registry(reference, digest)
        return BuiltImage(component, reference, digest, "pulled")

    def _store_from_registry(self, reference: str, digest: str) -> None:
        self.fetcher.fetch(f"{reference}@{digest}")
        self.fetcher.store.tag(reference, self.fetcher.store.describe_manifest(digest))

    def _build(self, entry: CatalogEntry, version: ComponentVersion, reference: str) -> BuiltImage:
        from moby_asm.engine import ImageBuild, build_image, push_image

        build = version.source.build
        context = (entry.path.parent / build.context).resolve()
        self.reporter.step(f"building {entry.name} from {context}")
        client = self._engine()
        request = ImageBuild(entry.name, context, reference, build.dockerfile, dict(build.args), build.target,
                             self.fetcher.platform, self.network)
        image_id = build_image(client, request, self._log(entry.name), self.cancel)
        if self.registry is not None:
            digest = push_image(client, entry.name, reference, self._log(entry.name), self.cancel)
            self._store_from_registry(reference, digest)
        else:
            digest = self._save(client, entry.name, image_id, reference)
        return BuiltImage(entry.name, reference, digest, "built")

    def _save(self, client, component: str, image_id: str, reference: str) -> str:
        from moby_asm.engine import save_image
        from moby_asm.store.archives import import_docker_archive
        from moby_asm.store.content import STAGING_PREFIX

        store = self.fetcher.store
        # The shared content lock keeps `cache prune` from deleting the folder while it is in use.
        with store.adding_content(), tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=store.root) as scratch:
            archive = Path(scratch) / "image.tar"
            save_image(client, component, image_id, archive, self.cancel)
            return import_docker_archive(store, archive, reference).digest

    def _engine(self):
        from moby_asm.engine import connect

        with self._client_lock:
            if self._client is None:
                self._client = connect(self.engine)
            return self._client

    def _log(self, component: str):
        return lambda line: self.reporter.step(f"{component}: {line}")
