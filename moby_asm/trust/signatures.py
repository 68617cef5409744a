"""Sign manifests in a registry and verify their signatures, in cosign's format (see payload.py).

Signatures are found by cosign's tag scheme: the signature manifest of `sha256:HEX` is
the tag `sha256-HEX.sig` in the same repository. A registry that serves the OCI 1.1
referrers API also lists that manifest as a referrer of the signed one, because the
manifest then carries a `subject` field. Requests go through moby-asm's registry
transport, so plain HTTP, credentials, timeouts and retries work as they do for pulls.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric import ec

from moby_asm.errors import InputError
from moby_asm.registry.client import ACCEPTED_MANIFEST_TYPES, RegistryClient, fetch_manifest
from moby_asm.registry.errors import ImageNotFound, InvalidManifest
from moby_asm.registry.push import expect_status, push_blob, push_manifest, sha256_digest
from moby_asm.registry.reference import Reference, parse_reference
from moby_asm.registry.transport import Transport
from moby_asm.store.errors import DigestMismatch
from moby_asm.store.model import Descriptor
from moby_asm.trust.errors import SignatureInvalid, SignatureMissing
from moby_asm.trust.keys import key_id
from moby_asm.trust.payload import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    claims_problem,
    config_bytes,
    sign_payload,
    signature_layer,
    signature_manifest,
    signature_matches,
    signature_tag,
    simple_signing_payload,
)

logger = logging.getLogger(__name__)

OCI_PREFIX = "oci://"
MAX_PAYLOAD_BYTES = 1 << 20
"""Payload blobs larger than this (1 MiB) are not downloaded; a simple signing payload is a few hundred bytes."""
MAX_SIGNATURES = 1000
"""Signature manifests with more layers than this are rejected before any payload is downloaded."""

# Ranks of failure reasons, least specific first. Each key reports the highest-ranked reason it met.
_NO_MATCH, _UNUSABLE_LAYER, _ALTERED_BLOB, _WRONG_CLAIMS = range(4)


@dataclass(frozen=True)
class Signed:
    """A signature that `sign` stored: the reference as given, the signed digest and the signature tag."""

    reference: str
    digest: str
    tag: str


@dataclass(frozen=True)
class Verified:
    """A verified signature: the reference as given, the manifest digest and the id of the key that verified it."""

    reference: str
    digest: str
    key_id: str


def sign(reference: str, private_key: ec.EllipticCurvePrivateKey, *, insecure: set[str] = frozenset()) -> Signed:
    """Sign the manifest digest that `reference` names (a tag is resolved first) and push the signature.

    The signature is added as a layer of the signature manifest, next to the signatures
    already there. When the manifest already contains a signature of the same payload by
    the same key, nothing is pushed.
    """
    parsed = _parse(reference)
    transport = _transport(parsed, insecure)
    subject = resolve_manifest(transport, parsed, reference)
    signatures = Reference(parsed.domain, parsed.path, signature_tag(subject.digest), None)
    payload = simple_signing_payload(parsed.name, subject.digest)
    # NOTE: two signers that add to the same signature manifest at once can lose a signature. Each pushes a
    # manifest without the other's layer, and the registry keeps the one pushed last.
    layers = _existing_layers(transport, signatures)
    if _signed_by(layers, payload, private_key.public_key()):
        logger.info("%s is already signed by key %s", reference, key_id(private_key.public_key()))
        return Signed(reference, subject.digest, signatures.tag)

    layers.append(signature_layer(payload, sign_payload(private_key, payload)))
    config = config_bytes(layers)
    referrers = supports_referrers(transport, parsed, subject.digest)
    push_blob(transport, signatures, payload, sha256_digest(payload))
    push_blob(transport, signatures, config, sha256_digest(config))
    subject_descriptor = _descriptor_json(subject) if referrers else None
    push_manifest(transport, signatures, signature_manifest(layers, config, subject_descriptor))
    return Signed(reference, subject.digest, signatures.tag)


def verify(
    reference: str, public_keys: list[ec.EllipticCurvePublicKey], *, insecure: set[str] = frozenset(),
    mirrors: dict[str, str] | None = None,
) -> Verified:
    """Verify that a signature of the manifest `reference` names verifies under one of `public_keys`.

    Raise SignatureMissing when the repository has no signature manifest for the digest,
    and SignatureInvalid, with the reason per key id, when no signature verifies.
    """
    if not public_keys:
        raise InputError("no public key given: name at least one with --key")
    parsed = _parse(reference)
    transport = _transport(parsed, insecure, mirrors)
    subject = resolve_manifest(transport, parsed, reference)
    signatures = Reference(parsed.domain, parsed.path, signature_tag(subject.digest), None)
    try:
        _, _, manifest = fetch_manifest(transport, signatures, signatures.tag, None)
    except ImageNotFound:
        raise SignatureMissing(reference=reference, digest=subject.digest, tag=signatures.tag) from None

    keys = {key_id(key): key for key in public_keys}
    check = _Check(transport, signatures, parsed.name, subject.digest, keys)
    for layer in _signature_layers(manifest, transport, signatures):
        verified_by = check.layer(layer)
        if verified_by is not None:
            return Verified(reference, subject.digest, verified_by)
    raise SignatureInvalid(reference=reference, digest=subject.digest, failures=check.reasons())


def resolve_digest(reference: str, *, insecure: set[str] = frozenset(), mirrors: dict[str, str] | None = None) -> str:
    """Return the manifest digest that `reference` names now, checked against the bytes the registry sent."""
    parsed = _parse(reference)
    return resolve_manifest(_transport(parsed, insecure, mirrors), parsed, reference).digest


def resolve_manifest(transport: Transport, reference: Reference, reference_text: str) -> Descriptor:
    """Return the descriptor of the manifest `reference` names, with the digest of the bytes received.

    For a tag, the registry's own digest for it (Docker-Content-Digest of a HEAD request)
    must equal the digest of the bytes: a manifest altered in the registry's storage
    keeps its old digest there, and raises DigestMismatch here.
    """
    descriptor, _, _ = fetch_manifest(transport, reference, reference.target, reference.digest)
    if reference.digest is None:
        named = _registry_digest(transport, reference)
        if named is not None and named != descriptor.digest:
            raise DigestMismatch(named, descriptor.digest, reference=reference_text, host=transport.endpoint)
    return descriptor


def supports_referrers(transport: Transport, reference: Reference, digest: str) -> bool:
    """Return whether the registry serves the OCI 1.1 referrers API: HTTP 200 with an image index."""
    path = f"{reference.path}/referrers/{digest}"
    with transport.request("GET", path, reference=str(reference)) as response:
        if response.status_code != 200:
            logger.debug("%s has no referrers API (HTTP %d)", transport.endpoint, response.status_code)
            return False
        try:
            index = json.loads(response.content)
        except ValueError:
            return False
    return isinstance(index, dict) and isinstance(index.get("manifests"), list)


class _Check:
    """Checks the layers of one signature manifest against the keys, keeping each key's most specific failure."""

    def __init__(self, transport: Transport, signatures: Reference, repository: str, digest: str,
                 keys: dict[str, ec.EllipticCurvePublicKey]):
        self.transport = transport
        self.signatures = signatures
        self.repository = repository
        self.digest = digest
        self.keys = keys
        self.count = 0
        self.failures: dict[str, tuple[int, str]] = {}

    def layer(self, layer: dict[str, Any]) -> str | None:
        """Return the id of the key under which `layer` is a valid signature for the digest, else None."""
        self.count += 1
        problem = self._unusable(layer)
        if problem is not None:
            self._fail_all(_UNUSABLE_LAYER, problem)
            return None
        payload = self._payload(layer)
        if payload is None:
            return None
        signature = layer["annotations"][SIGNATURE_ANNOTATION]
        for identifier, key in self.keys.items():
            if not signature_matches(key, payload, signature):
                continue
            problem = claims_problem(payload, self.repository, self.digest)
            if problem is None:
                return identifier
            self._fail(identifier, _WRONG_CLAIMS, problem)
        return None

    def reasons(self) -> dict[str, str]:
        default = (_NO_MATCH, f"bad signature: none of the {self.count} signatures was made with this key")
        if self.count == 0:
            default = (_NO_MATCH, f"the signature manifest {self.signatures.tag} has no signatures")
        return {identifier: self.failures.get(identifier, default)[1] for identifier in self.keys}

    def _unusable(self, layer: dict[str, Any]) -> str | None:
        if layer.get("mediaType") != SIMPLE_SIGNING_TYPE:
            return f"layer {layer.get('digest')} has media type {layer.get('mediaType')}, not {SIMPLE_SIGNING_TYPE}"
        annotations = layer.get("annotations")
        if not isinstance(annotations, dict) or not isinstance(annotations.get(SIGNATURE_ANNOTATION), str):
            return f"layer {layer['digest']} has no {SIGNATURE_ANNOTATION} annotation"
        if layer["size"] > MAX_PAYLOAD_BYTES:
            return f"payload {layer['digest']} is larger than {MAX_PAYLOAD_BYTES} bytes"
        return None

    def _payload(self, layer: dict[str, Any]) -> bytes | None:
        digest = layer["digest"]
        content = _download_blob(self.transport, self.signatures, digest, layer["size"])
        if content is None:
            self._fail_all(_UNUSABLE_LAYER, f"payload blob {digest} is missing from the registry")
            return None
        actual = sha256_digest(content)
        if actual != digest or len(content) != layer["size"]:
            reason = f"payload blob {digest} does not match its digest: the registry returned {actual}"
            self._fail_all(_ALTERED_BLOB, reason)
            return None
        return content

    def _fail_all(self, rank: int, reason: str) -> None:
        for identifier in self.keys:
            self._fail(identifier, rank, reason)

    def _fail(self, identifier: str, rank: int, reason: str) -> None:
        if rank > self.failures.get(identifier, (-1, ""))[0]:
            self.failures[identifier] = (rank, reason)


def _existing_layers(transport: Transport, signatures: Reference) -> list[dict[str, Any]]:
    """Return the layers of the signature manifest, or [] when the tag does not exist yet."""
    try:
        _, _, manifest = fetch_manifest(transport, signatures, signatures.tag, None)
    except ImageNotFound:
        return []
    return _signature_layers(manifest, transport, signatures)


def _signature_layers(manifest: Any, transport: Transport, signatures: Reference) -> list[dict[str, Any]]:
    """Return the layer descriptors of a signature manifest; raise InvalidManifest if any is malformed."""
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        _invalid(transport, signatures, "it has no list of layers")
    if len(layers) > MAX_SIGNATURES:
        _invalid(transport, signatures, f"it has {len(layers)} layers; at most {MAX_SIGNATURES} are read")
    for layer in layers:
        if not _valid_descriptor(layer):
            _invalid(transport, signatures, f"layer {layer!r} is not a descriptor with a sha256 digest and a size")
    return list(layers)


def _valid_descriptor(layer: Any) -> bool:
    if not isinstance(layer, dict):
        return False
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        return False
    return isinstance(size, int) and not isinstance(size, bool) and size >= 0


def _invalid(transport: Transport, signatures: Reference, reason: str) -> NoReturn:
    raise InvalidManifest(reference=str(signatures), host=transport.endpoint,
                          reason=f"not a signature manifest: {reason}")


def _signed_by(layers: list[dict[str, Any]], payload: bytes, public_key: ec.EllipticCurvePublicKey) -> bool:
    digest = sha256_digest(payload)
    for layer in layers:
        annotations = layer.get("annotations")
        signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        if layer["digest"] != digest or not isinstance(signature, str):
            continue
        if signature_matches(public_key, payload, signature):
            return True
    return False


def _download_blob(transport: Transport, reference: Reference, digest: str, size: int) -> bytes | None:
    """Return the blob, at most `size` + 1 bytes of it, or None when the registry responds 404."""
    name = str(reference)

    def attempt() -> bytes | None:
        with transport.request_once("GET", f"{reference.path}/blobs/{digest}", reference=name) as response:
            if response.status_code == 404:
                return None
            expect_status(response, (200,), transport, name)
            content = b""
            for chunk in response.iter_content(64 * 1024):
                content += chunk
                if len(content) > size:
                    break
            return content

    return transport.with_retries(attempt, name)


def _registry_digest(transport: Transport, reference: Reference) -> str | None:
    path = f"{reference.path}/manifests/{reference.target}"
    headers = {"Accept": ACCEPTED_MANIFEST_TYPES}
    with transport.request("HEAD", path, reference=str(reference), headers=headers) as response:
        if response.status_code != 200:
            return None
        return response.headers.get("Docker-Content-Digest")


def _descriptor_json(descriptor: Descriptor) -> dict[str, Any]:
    return {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size}


def _parse(reference: str) -> Reference:
    return parse_reference(reference.removeprefix(OCI_PREFIX))


def _transport(reference: Reference, insecure: set[str], mirrors: dict[str, str] | None = None) -> Transport:
    return RegistryClient(insecure=set(insecure), mirrors=dict(mirrors or {})).transport(reference)
