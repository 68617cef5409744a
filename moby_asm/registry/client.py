"""Pull images from OCI and Docker registries into the content store, one platform at a time."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from moby_asm.errors import InputError
from moby_asm.registry.credentials import docker_config_path
from moby_asm.registry.errors import ImageNotFound, InvalidManifest, RegistryError
from moby_asm.registry.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    DOCKER_HUB_ENDPOINT,
    Reference,
    is_loopback,
    parse_reference,
    split_port,
)
from moby_asm.store.errors import DigestMismatch, StoreError
from moby_asm.store.images import index_entries, load_image, manifest_media_type, manifest_parts
from moby_asm.store.model import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, Descriptor, ImageContent
from moby_asm.store.platforms import (
    available_platforms,
    config_matches,
    format_platform,
    parse_platform,
    select_manifest,
)

if TYPE_CHECKING:
    from moby_asm.registry.transport import Transport
    from moby_asm.store.content import ContentStore

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called with a blob digest, the bytes stored so far and the blob size."""

ACCEPTED_MANIFEST_TYPES = ", ".join(sorted(INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES))
MAX_MANIFEST_BYTES = 4 << 20
"""Manifests larger than this are rejected before they are parsed (the limit containerd uses)."""
CHUNK_SIZE = 1 << 20


class RegistryClient:
    """Pulls images from registries into a ContentStore.

    `insecure` lists hosts (host or host:port) that are contacted over plain HTTP;
    loopback hosts always are, every other host over HTTPS. `mirrors` maps a registry
    domain to the host to contact instead, such as {"docker.io": "127.0.0.1:5000"}; the
    store still names images by their original reference. `retries` is the number of
    retries after a connection error, a timeout, HTTP 429 or 5xx. The first retry waits
    `backoff` seconds and each further one twice as long. `timeout` is in seconds, and
    applies to connecting and to each read. One client keeps sessions and tokens per host,
    and is not safe to share between threads.
    """

    def __init__(
        self,
        *,
        insecure: set[str] = frozenset(),
        mirrors: dict[str, str] | None = None,
        docker_config: Path | None = None,
        retries: int = 3,
        timeout: float = 30.0,
        backoff: float = 0.5,
    ):
        self.insecure = {_bare_host(host) for host in insecure}
        self.mirrors: dict[str, str] = {}
        for domain, mirror in (mirrors or {}).items():
            self._add_mirror(domain, mirror)
        self.docker_config = docker_config_path(docker_config)
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self._transports: dict[str, Transport] = {}

    def pull(
        self, reference: str, platform: str, store: ContentStore, progress: Progress | None = None
    ) -> ImageContent:
        """Store the manifest, config and layers of `reference` for `platform`, tag it, and return the image.

        A reference pinned by digest whose content is all stored is returned without any
        request. Otherwise the manifest is fetched (and checked against the pinned digest)
        and only missing blobs are downloaded. Every blob is verified before it is stored,
        so a failure leaves only complete, verified blobs, which a later pull reuses.
        """
        parsed = parse_reference(reference)
        parse_platform(platform)
        stored = _stored_image(store, parsed, platform)
        if stored is not None:
            logger.debug("%s for %s is in the store; no request needed", parsed, platform)
            return stored
        with store.adding_content():
            top = _Pull(self.transport(parsed), parsed, platform, store, progress).run()
            store.tag(str(parsed), top)
        return store.image(str(parsed), platform)

    def resolve(self, reference: str) -> Descriptor:
        """Return the descriptor (media type, digest, size) of the manifest or index `reference` names."""
        parsed = parse_reference(reference)
        descriptor, _, _ = fetch_manifest(self.transport(parsed), parsed, parsed.target, parsed.digest)
        return descriptor

    def endpoint(self, reference: Reference) -> str:
        """Return the host contacted for `reference`: its mirror, Docker Hub's API host, or its domain."""
        if reference.domain in self.mirrors:
            return self.mirrors[reference.domain]
        return DOCKER_HUB_ENDPOINT if reference.domain == DOCKER_HUB else reference.domain

    def transport(self, reference: Reference) -> Transport:
        """Return the transport for the registry that serves `reference`, one per endpoint."""
        from moby_asm.registry.transport import Transport

        endpoint = self.endpoint(reference)
        if endpoint not in self._transports:
            self._transports[endpoint] = Transport(
                endpoint,
                plain_http=self._plain_http(endpoint),
                credential_host=endpoint if reference.domain in self.mirrors else reference.domain,
                docker_config=self.docker_config,
                retries=self.retries,
                timeout=self.timeout,
                backoff=self.backoff,
            )
        return self._transports[endpoint]

    def _plain_http(self, endpoint: str) -> bool:
        return is_loopback(endpoint) or endpoint in self.insecure or split_port(endpoint)[0] in self.insecure

    def _add_mirror(self, domain: str, mirror: str) -> None:
        host = _bare_host(mirror)
        if not host or "/" in host:
            raise InputError(f"invalid mirror {mirror!r} for {domain}: expected HOST[:PORT], such as 127.0.0.1:5000")
        if mirror.startswith("http://"):
            self.insecure.add(host)
        self.mirrors[DOCKER_HUB if domain in DOCKER_HUB_ALIASES else domain] = host


class _Pull:
    """One pull: the manifest (through an index if needed), then config and layers."""

    def __init__(self, transport: Transport, reference: Reference, platform: str, store: ContentStore, progress):
        self.transport = transport
        self.reference = reference
        self.platform = platform
        self.store = store
        self.progress = progress
        self.requested = parse_platform(platform)

    def run(self) -> Descriptor:
        top, raw, data = fetch_manifest(self.transport, self.reference, self.reference.target, self.reference.digest)
        self._store_manifest(top, raw)
        manifest_descriptor, manifest = top, data
        if top.media_type in INDEX_MEDIA_TYPES:
            manifest_descriptor = self._select(data)
            manifest = self._child_manifest(manifest_descriptor)
        elif top.media_type not in MANIFEST_MEDIA_TYPES:
            self._invalid(f"media type {top.media_type} is neither an image manifest nor an image index")
        try:
            config, layers = manifest_parts(manifest)
        except ValueError as error:
            self._invalid(str(error))
        self._fetch_blob(config)
        self._check_config_platform(config)
        for layer in layers:
            self._fetch_blob(layer)
        return top

    def _select(self, index: Any) -> Descriptor:
        try:
            entries = index_entries(index)
        except ValueError as error:
            self._invalid(str(error))
        chosen = select_manifest(entries, self.requested)
        if chosen is None:
            offered = ", ".join(available_platforms(entries)) or "no platforms"
            raise ImageNotFound(
                reference=str(self.reference),
                host=self.transport.endpoint,
                platform=self.platform,
                reason=f"the image index offers {offered}",
            )
        if chosen.media_type not in MANIFEST_MEDIA_TYPES:
            self._invalid(f"the entry for {self.platform} has media type {chosen.media_type}, not an image manifest")
        return chosen

    def _child_manifest(self, descriptor: Descriptor) -> Any:
        if self.store.has_blob(descriptor.digest):
            return self.store.read_json(descriptor.digest)
        fetched, raw, data = fetch_manifest(self.transport, self.reference, descriptor.digest, descriptor.digest)
        if fetched.size != descriptor.size:
            raise DigestMismatch(
                descriptor.digest,
                fetched.digest,
                expected_size=descriptor.size,
                actual_size=fetched.size,
                reference=str(self.reference),
                host=self.transport.endpoint,
            )
        self._store_manifest(fetched, raw)
        return data

    def _store_manifest(self, descriptor: Descriptor, raw: bytes) -> None:
        self.store.write_blob(raw, descriptor.digest, descriptor.size, media_type=descriptor.media_type)

    def _check_config_platform(self, config: Descriptor) -> None:
        data = self.store.read_json(config.digest)
        if not isinstance(data, dict):
            self._invalid(f"config {config.digest} is not a JSON object")
        if not config_matches(self.requested, data):
            raise ImageNotFound(
                reference=str(self.reference),
                host=self.transport.endpoint,
                platform=self.platform,
                reason=f"the image is for {format_platform(data)} only",
            )

    def _fetch_blob(self, descriptor: Descriptor) -> None:
        if self.store.has_blob(descriptor.digest):
            self._report(descriptor, descriptor.size)
            return
        self.transport.with_retries(lambda: self._download(descriptor), str(self.reference))

    def _download(self, descriptor: Descriptor) -> None:
        path = f"{self.reference.path}/blobs/{descriptor.digest}"
        response = self.transport.request_once("GET", path, reference=str(self.reference))
        with response:
            if response.status_code == 404:
                raise ImageNotFound(
                    reference=str(self.reference),
                    host=self.transport.endpoint,
                    reason=f"blob {descriptor.digest} is missing from the registry",
                )
            _check_ok(response, self.transport, str(self.reference))
            try:
                self.store.write_blob(
                    self._chunks(response, descriptor),
                    descriptor.digest,
                    descriptor.size,
                    media_type=descriptor.media_type,
                )
            except DigestMismatch as error:
                raise _located(error, self.reference, self.transport) from error

    def _chunks(self, response, descriptor: Descriptor) -> Iterator[bytes]:
        done = 0
        self._report(descriptor, done)
        for chunk in response.iter_content(CHUNK_SIZE):
            done += len(chunk)
            self._report(descriptor, done)
            yield chunk

    def _report(self, descriptor: Descriptor, done: int) -> None:
        if self.progress is not None:
            self.progress(descriptor.digest, done, descriptor.size)

    def _invalid(self, reason: str) -> NoReturn:
        raise InvalidManifest(reference=str(self.reference), host=self.transport.endpoint, reason=reason)


def fetch_manifest(
    transport: Transport, reference: Reference, target: str, expected: str | None
) -> tuple[Descriptor, bytes, Any]:
    """GET a manifest or index by tag or digest; return its descriptor, raw bytes and parsed JSON."""
    name = str(reference)
    raw, content_type = transport.with_retries(lambda: _download_manifest(transport, reference, target), name)
    digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    if expected is not None and digest != expected:
        raise DigestMismatch(expected, digest, reference=name, host=transport.endpoint)
    try:
        data = json.loads(raw)
        media_type = _media_type(data, content_type)
    except ValueError as error:
        raise InvalidManifest(reference=name, host=transport.endpoint, reason=str(error)) from error
    return Descriptor(media_type, digest, len(raw)), raw, data


def _download_manifest(transport: Transport, reference: Reference, target: str) -> tuple[bytes, str]:
    """Send one manifest request and return the body and media type from Content-Type."""
    name = str(reference)
    path = f"{reference.path}/manifests/{target}"
    response = transport.request_once("GET", path, reference=name, headers={"Accept": ACCEPTED_MANIFEST_TYPES})
    with response:
        if response.status_code == 404:
            reason = f"the registry has no manifest {target} in {reference.path} ({error_codes(response)})"
            raise ImageNotFound(reference=name, host=transport.endpoint, reason=reason)
        _check_ok(response, transport, name)
        raw = _read_limited(response, transport, name)
        return raw, response.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _media_type(data: Any, content_type: str) -> str:
    if isinstance(data, dict) and data.get("schemaVersion") == 1:
        raise ValueError("Docker image manifest schema 1 is not supported; push the image again with a current client")
    if isinstance(data, dict) and "mediaType" not in data and content_type in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
        return content_type
    return manifest_media_type(data)


def _read_limited(response, transport: Transport, reference: str) -> bytes:
    chunks, total = [], 0
    for chunk in response.iter_content(CHUNK_SIZE):
        total += len(chunk)
        if total > MAX_MANIFEST_BYTES:
            reason = f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
            raise InvalidManifest(reference=reference, host=transport.endpoint, reason=reason)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_ok(response, transport: Transport, reference: str) -> None:
    if response.status_code != 200:
        message = (
            f"{transport.endpoint} answered HTTP {response.status_code} for {reference} "
            f"({error_codes(response)}) on {response.request.method} {response.url}"
        )
        raise RegistryError(message, reference=reference, host=transport.endpoint)


def error_codes(response) -> str:
    """Return the codes of a registry error body ({"errors": [{"code": ...}]}), or the HTTP reason."""
    try:
        errors = json.loads(response.content or b"{}").get("errors") or []
        codes = [str(error.get("code")) for error in errors if isinstance(error, dict)]
    except (ValueError, AttributeError):
        codes = []
    return ", ".join(codes) or response.reason or "no details"


def _located(error: DigestMismatch, reference: Reference, transport: Transport) -> DigestMismatch:
    return DigestMismatch(
        error.expected,
        error.actual,
        expected_size=error.expected_size,
        actual_size=error.actual_size,
        reference=str(reference),
        host=transport.endpoint,
    )


def _stored_image(store: ContentStore, reference: Reference, platform: str) -> ImageContent | None:
    """Return the image of a pinned reference whose blobs are all stored, tagging it; else None."""
    if reference.digest is None or not store.has_blob(reference.digest):
        return None
    try:
        descriptor = store.describe_manifest(reference.digest)
        image = load_image(store, str(reference), descriptor, platform)
    except (StoreError, ValueError) as error:
        logger.debug("%s is not complete in the store: %s", reference, error)
        return None
    current = store.resolve(str(reference))
    if current is None or current.digest != descriptor.digest:
        store.tag(str(reference), descriptor)
    return image


def _bare_host(host: str) -> str:
    return host.removeprefix("https://").removeprefix("http://").rstrip("/")
