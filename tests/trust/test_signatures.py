"""Signing and verifying images in a real registry on 127.0.0.1, including content altered in its storage."""

from __future__ import annotations

import base64
import json

import fixtures_registry
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from moby_asm.registry.client import RegistryClient
from moby_asm.registry.push import push_blob, push_manifest
from moby_asm.registry.reference import parse_reference
from moby_asm.store.errors import DigestMismatch
from moby_asm.trust.errors import SignatureInvalid, SignatureMissing
from moby_asm.trust.payload import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_TYPE, signature_tag
from moby_asm.trust.signatures import sign, verify


def signature_manifest(registry, repository: str, digest: str) -> dict:
    raw, _ = fixtures_registry.fetch_manifest(registry.url, repository, signature_tag(digest))
    return json.loads(raw)


def flip_byte(path) -> None:
    """Change the middle byte of a file in the registry's storage, keeping its size."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))


def copy_signatures(registry, source: str, target_repository: str, target_digest: str) -> None:
    """Push the signature manifest of `source` (REPOSITORY@DIGEST) as the signatures of another manifest."""
    repository, digest = source.split("@")
    raw, _ = fixtures_registry.fetch_manifest(registry.url, repository, signature_tag(digest))
    manifest = json.loads(raw)
    target = parse_reference(f"{registry.host}/{target_repository}:{signature_tag(target_digest)}")
    transport = RegistryClient().transport(target)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        content = registry.blob_file(descriptor["digest"]).read_bytes()
        push_blob(transport, target, content, descriptor["digest"])
    push_manifest(transport, target, raw)


def test_sign_then_verify_image(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/plain", "v1")
    digest = fixtures_registry.manifest_digest(registry.url, "trust/plain", "v1")

    signed = sign(image, keys["alice"].private_key)
    verified = verify(image, [keys["alice"].public_key])

    assert signed.digest == digest
    assert signed.tag == f"sha256-{digest.removeprefix('sha256:')}.sig"
    assert verified.digest == digest
    assert verified.key_id == keys["alice"].key_id


def test_signature_is_cosign_simple_signing(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/format", "v1")
    digest = sign(image, keys["alice"].private_key).digest

    manifest = signature_manifest(registry, "trust/format", digest)
    layer = manifest["layers"][0]
    payload = registry.blob_file(layer["digest"]).read_bytes()
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])

    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert "subject" not in manifest
    assert layer["mediaType"] == SIMPLE_SIGNING_TYPE
    assert json.loads(payload) == {
        "critical": {
            "identity": {"docker-reference": f"{registry.host}/trust/format"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    keys["alice"].public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))


def test_sign_by_digest(registry, keys):
    fixtures_registry.make_busybox_image(registry.url, "trust/pinned", "v1")
    digest = fixtures_registry.manifest_digest(registry.url, "trust/pinned", "v1")
    pinned = f"{registry.host}/trust/pinned@{digest}"

    signed = sign(pinned, keys["alice"].private_key)

    assert signed.digest == digest
    assert verify(f"{registry.host}/trust/pinned:v1", [keys["alice"].public_key]).digest == digest


def test_two_keys_sign_same_image(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/both", "v1")

    digest = sign(image, keys["alice"].private_key).digest
    sign(image, keys["bob"].private_key)

    assert len(signature_manifest(registry, "trust/both", digest)["layers"]) == 2
    assert verify(image, [keys["alice"].public_key]).key_id == keys["alice"].key_id
    assert verify(image, [keys["bob"].public_key]).key_id == keys["bob"].key_id


def test_signing_again_adds_no_layer(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/again", "v1")

    digest = sign(image, keys["alice"].private_key).digest
    sign(image, keys["alice"].private_key)

    assert len(signature_manifest(registry, "trust/again", digest)["layers"]) == 1


def test_other_key_fails_naming_key_id(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/other", "v1")
    sign(image, keys["alice"].private_key)

    with pytest.raises(SignatureInvalid) as raised:
        verify(image, [keys["bob"].public_key])

    assert raised.value.failures == {keys["bob"].key_id: "bad signature: none of the 1 signatures was made "
                                                        "with this key"}
    assert keys["bob"].key_id in str(raised.value)


def test_unsigned_image_is_missing_signature(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/unsigned", "v1")
    digest = fixtures_registry.manifest_digest(registry.url, "trust/unsigned", "v1")

    with pytest.raises(SignatureMissing) as raised:
        verify(image, [keys["alice"].public_key])

    assert raised.value.digest == digest
    assert image in str(raised.value)
    assert digest in str(raised.value)
    assert "moby-asm sign" in str(raised.value)


def test_retagged_image_fails(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/retag", "v1")
    signed = sign(image, keys["alice"].private_key)
    fixtures_registry.make_busybox_image(registry.url, "trust/retag", "v1")

    with pytest.raises(SignatureMissing) as raised:
        verify(image, [keys["alice"].public_key])

    assert raised.value.digest != signed.digest
    assert raised.value.digest == fixtures_registry.manifest_digest(registry.url, "trust/retag", "v1")


def test_altered_manifest_is_detected(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/manifest", "v1")
    signed = sign(image, keys["alice"].private_key)
    flip_byte(registry.blob_file(signed.digest))

    with pytest.raises(DigestMismatch) as by_tag:
        verify(image, [keys["alice"].public_key])
    with pytest.raises(DigestMismatch) as by_digest:
        verify(f"{registry.host}/trust/manifest@{signed.digest}", [keys["alice"].public_key])

    assert by_tag.value.expected == signed.digest
    assert by_tag.value.actual != signed.digest
    assert by_digest.value.expected == signed.digest


def test_altered_payload_is_detected(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/payload", "v1")
    signed = sign(image, keys["alice"].private_key)
    layer = signature_manifest(registry, "trust/payload", signed.digest)["layers"][0]
    flip_byte(registry.blob_file(layer["digest"]))

    with pytest.raises(SignatureInvalid) as raised:
        verify(image, [keys["alice"].public_key])

    reason = raised.value.failures[keys["alice"].key_id]
    assert reason.startswith(f"payload blob {layer['digest']} does not match its digest")


def test_payload_for_other_digest_fails(registry, keys):
    signed_image = fixtures_registry.make_busybox_image(registry.url, "trust/moved", "v1")
    fixtures_registry.make_busybox_image(registry.url, "trust/moved", "v2")
    signed = sign(signed_image, keys["alice"].private_key)
    other = fixtures_registry.manifest_digest(registry.url, "trust/moved", "v2")
    copy_signatures(registry, f"trust/moved@{signed.digest}", "trust/moved", other)

    with pytest.raises(SignatureInvalid) as raised:
        verify(f"{registry.host}/trust/moved:v2", [keys["alice"].public_key])

    assert raised.value.failures == {keys["alice"].key_id: f"the payload is for another digest, {signed.digest}"}


def test_payload_for_other_repository_fails(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/first", "v1")
    signed = sign(image, keys["alice"].private_key)
    fixtures_registry.push(f"docker://{image}", registry.url, "trust/second", "v1", "--src-tls-verify=false")
    copy_signatures(registry, f"trust/first@{signed.digest}", "trust/second", signed.digest)

    with pytest.raises(SignatureInvalid) as raised:
        verify(f"{registry.host}/trust/second:v1", [keys["alice"].public_key])

    reason = raised.value.failures[keys["alice"].key_id]
    assert reason == f"the payload is for another repository, {registry.host}/trust/first"


def test_any_of_several_keys_verifies(registry, keys):
    image = fixtures_registry.make_busybox_image(registry.url, "trust/several", "v1")
    sign(image, keys["bob"].private_key)

    verified = verify(image, [keys["alice"].public_key, keys["bob"].public_key])

    assert verified.key_id == keys["bob"].key_id
