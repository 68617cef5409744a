"""Cosign's signature format: simple signing payloads, their signatures and the signature manifest.

The format follows sigstore/cosign specs/SIGNATURE_SPEC.md. The payload is the
"simple signing" JSON document of containers/image, naming the repository and the
signed manifest digest. The signature is ECDSA P-256 with SHA-256 over the payload
bytes, DER-encoded and then base64-encoded into the layer annotation
SIGNATURE_ANNOTATION. The signature manifest is an OCI image manifest in the signed
repository, tagged `sha256-<hex>.sig`, with one layer per signature. Each layer is the
payload blob, of media type SIMPLE_SIGNING_TYPE.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from moby_asm.registry.errors import InvalidReference
from moby_asm.registry.push import OCI_MANIFEST_TYPE, sha256_digest
from moby_asm.registry.reference import parse_reference

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_PAYLOAD_TYPE = "cosign container image signature"
OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def signature_tag(digest: str) -> str:
    """Return the tag of the signature manifest for `digest`: `sha256:HEX` becomes `sha256-HEX.sig`."""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """Return the payload that signs `digest` in `repository` (HOST/PATH), as compact JSON."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign_payload(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """Return the base64 DER ECDSA signature of SHA-256(payload)."""
    return base64.b64encode(private_key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def signature_matches(public_key: ec.EllipticCurvePublicKey, payload: bytes, signature: str) -> bool:
    """Return whether the base64 `signature` is a valid signature of `payload` under `public_key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def claims_problem(payload: bytes, repository: str, digest: str) -> str | None:
    """Return why `payload` does not sign `digest` in `repository`, or None when it does."""
    try:
        critical = json.loads(payload)["critical"]
        kind = critical["type"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        signed_repository = critical["identity"]["docker-reference"]
    except (ValueError, TypeError, KeyError):
        return "the payload is not a simple signing document"
    if kind != COSIGN_PAYLOAD_TYPE:
        return f"the payload type is {kind!r}, not {COSIGN_PAYLOAD_TYPE!r}"
    if signed_digest != digest:
        return f"the payload is for another digest, {signed_digest}"
    if _repository_name(signed_repository) != repository:
        return f"the payload is for another repository, {signed_repository}"
    return None


def signature_layer(payload: bytes, signature: str) -> dict[str, Any]:
    """Return the layer descriptor of one signature: the payload blob with the signature annotation."""
    return {
        "mediaType": SIMPLE_SIGNING_TYPE,
        "size": len(payload),
        "digest": sha256_digest(payload),
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }


def config_bytes(layers: list[dict[str, Any]]) -> bytes:
    """Return the image config of a signature manifest; like cosign's, its diff_ids are the payload digests."""
    config = {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }
    return json.dumps(config, separators=(",", ":")).encode()


def signature_manifest(
    layers: list[dict[str, Any]], config: bytes, subject: dict[str, Any] | None
) -> bytes:
    """Return the signature manifest; with `subject`, it also carries the OCI 1.1 artifactType and subject."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_TYPE,
        "config": {"mediaType": OCI_CONFIG_TYPE, "size": len(config), "digest": sha256_digest(config)},
        "layers": layers,
    }
    if subject is not None:
        manifest["artifactType"] = SIGNATURE_ARTIFACT_TYPE
        manifest["subject"] = subject
    return json.dumps(manifest, separators=(",", ":")).encode()


def _repository_name(text: Any) -> str | None:
    """Return the normalised HOST/PATH of a docker-reference, so that cosign's index.docker.io matches docker.io."""
    if not isinstance(text, str):
        return None
    try:
        return parse_reference(text).name
    except InvalidReference:
        return None
