"""Upload blobs and manifests to a registry through a Transport (distribution spec v1.0 push API)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode, urljoin

from moby_asm.registry.client import error_codes
from moby_asm.registry.errors import RegistryError
from moby_asm.registry.reference import Reference
from moby_asm.registry.transport import Transport
from moby_asm.store.errors import DigestMismatch

OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def sha256_digest(content: bytes) -> str:
    """Return the OCI digest (`sha256:` and 64 hex digits) of `content`."""
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def push_blob(transport: Transport, reference: Reference, content: bytes, digest: str) -> None:
    """Upload `content` unless the repository has it: a POST opens the upload and one PUT completes it."""
    name = str(reference)
    blob_path = f"{reference.path}/blobs/{digest}"

    def attempt() -> None:
        with transport.request_once("HEAD", blob_path, reference=name) as existing:
            if existing.status_code == 200:
                return
        with transport.request_once("POST", f"{reference.path}/blobs/uploads/", reference=name) as started:
            expect_status(started, (202,), transport, name)
            location = started.headers.get("Location", "")
        upload = upload_path(transport, location, digest, name)
        headers = {"Content-Type": "application/octet-stream"}
        with transport.request_once("PUT", upload, reference=name, headers=headers, body=content) as finished:
            expect_status(finished, (201,), transport, name)

    transport.with_retries(attempt, name)


def upload_path(transport: Transport, location: str, digest: str, reference: str) -> str:
    """Return the upload URL from a Location header, relative to the transport's /v2/ URL, with the digest."""
    url = urljoin(transport.base_url, location)
    if not location or not url.startswith(transport.base_url):
        message = f"{transport.endpoint} returned the upload location {location!r} for {reference}, not one of its own"
        raise RegistryError(message, reference=reference, host=transport.endpoint)
    path = url.removeprefix(transport.base_url)
    return f"{path}{'&' if '?' in path else '?'}{urlencode({'digest': digest})}"


def push_manifest(
    transport: Transport, reference: Reference, manifest: bytes, media_type: str = OCI_MANIFEST_TYPE
) -> str:
    """PUT the manifest under the reference's tag and return its digest.

    Raise DigestMismatch when the registry reports another digest for what it stored.
    """
    name = str(reference)
    path = f"{reference.path}/manifests/{reference.tag}"
    headers = {"Content-Type": media_type}
    response = transport.with_retries(
        lambda: transport.request_once("PUT", path, reference=name, headers=headers, body=manifest), name
    )
    with response:
        expect_status(response, (201,), transport, name)
        stored = response.headers.get("Docker-Content-Digest")
    digest = sha256_digest(manifest)
    if stored and stored != digest:
        raise DigestMismatch(digest, stored, reference=name, host=transport.endpoint)
    return digest


def expect_status(response, statuses: tuple[int, ...], transport: Transport, reference: str) -> None:
    """Raise RegistryError, with the registry's error codes and the request, unless the status is in `statuses`."""
    if response.status_code not in statuses:
        message = (
            f"{transport.endpoint} answered HTTP {response.status_code} for {reference} "
            f"({error_codes(response)}) on {response.request.method} {response.url}"
        )
        raise RegistryError(message, reference=reference, host=transport.endpoint)
