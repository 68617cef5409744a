"""Fetch the images of a build into the content store, from the cache when it already has them."""

from __future__ import annotations

import threading
from pathlib import Path

from moby_asm.build.runner import BuildOptions
from moby_asm.errors import MobyAsmError
from moby_asm.fileio import WriteFailed
from moby_asm.reporter import Reporter


class ImageNotCached(MobyAsmError):
    """An offline build needs an image that the content store does not hold."""

    def __init__(self, reference: str):
        self.reference = reference
        super().__init__(f"image {reference} is not in the cache and --offline forbids pulling it; "
                         "build once without --offline to fetch it")


class CorruptCache(MobyAsmError):
    """A cached blob no longer matches its digest and an offline build cannot fetch it again."""

    def __init__(self, reference: str, detail: str):
        self.reference = reference
        super().__init__(f"the cached copy of {reference} is damaged ({detail}); the damaged blob was removed, "
                         "so build once without --offline to fetch it again")


def stored_name(reference: str) -> str:
    """Return the name the content store keeps an image under: the reference in full, docker.io/library/... included."""
    from moby_asm.registry.errors import InvalidReference
    from moby_asm.registry.reference import parse_reference

    try:
        return str(parse_reference(reference))
    except InvalidReference:
        return reference


class ImageFetcher:
    """Returns each image from the store when tagged there, else pulls it; records which was which."""

    def __init__(self, options: BuildOptions, platform: str, reporter: Reporter):
        from moby_asm.registry import RegistryClient
        from moby_asm.store import ContentStore

        self.options = options
        self.platform = platform
        self.reporter = reporter
        try:
            self.store = ContentStore.open(options.cache)
        except OSError as error:
            raise WriteFailed(Path(error.filename or options.cache or "."), error.strerror or str(error)) from error
        self._make_client = lambda: RegistryClient(insecure=options.insecure, mirrors=options.mirrors)
        self._local = threading.local()
        self.pulled: list[str] = []
        self.cached: list[str] = []
        self._lock = threading.Lock()

    def fetch(self, reference: str):
        if not self.options.pull:
            image = self._cached(reference)
            if image is not None:
                self._record(self.cached, reference)
                return image
        if self.options.offline:
            raise ImageNotCached(reference)
        self.reporter.step(f"pulling {reference}")
        name = reference.rsplit("/", 1)[-1]

        def progress(digest: str, done: int, total: int) -> None:
            self.reporter.progress(f"{name} {digest.removeprefix('sha256:')[:12]}", done, total)

        image = self.client().pull(reference, self.platform, self.store, progress)
        self._record(self.pulled, reference)
        return image

    def _cached(self, reference: str):
        """Return the stored image after hashing its blobs again, or None to pull it.

        A blob changed on disk is removed by the check, so the pull that follows fetches it
        again; an offline build reports it instead.
        """
        from moby_asm.store.errors import DigestMismatch, StoreError

        try:
            image = self.store.image(stored_name(reference), self.platform)
        except StoreError:
            image = self._stored_by_digest(reference)
            if image is None:
                return None
        try:
            for descriptor in [image.manifest, *image.layers]:
                self.store.verify_blob(descriptor.digest)
        except DigestMismatch as error:
            if self.options.offline:
                raise CorruptCache(reference, str(error)) from error
            self.reporter.warning(f"{reference}: a cached blob was damaged and is fetched again ({error})")
            return None
        return image

    def _stored_by_digest(self, reference: str):
        """Return the image a digest-pinned reference names when the store holds that digest under another name."""
        from moby_asm.store.errors import StoreError
        from moby_asm.store.images import load_image

        digest = reference.partition("@")[2]
        if not digest or not self.store.has_blob(digest):
            return None
        try:
            descriptor = self.store.describe_manifest(digest)
            image = load_image(self.store, reference, descriptor, self.platform)
            self.store.tag(stored_name(reference), descriptor)
        except StoreError:
            return None
        return image

    def client(self):
        # A registry client keeps one HTTP session, which threads must not share.
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make_client()
        return client

    def _record(self, bucket: list[str], reference: str) -> None:
        with self._lock:
            bucket.append(reference)
