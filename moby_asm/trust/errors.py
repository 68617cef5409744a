"""Errors of signing and verifying. Both name the reference and the manifest digest.

    MobyAsmError
    └── TrustError              fields: reference, digest
        ├── SignatureMissing    the repository has no signature manifest for the digest
        └── SignatureInvalid    no signature verifies under the given keys; `failures` gives the reason per key

Bad input (a key file that cannot be read or decrypted, a reference that does not
parse) raises moby_asm.errors.InputError instead.
"""

from __future__ import annotations

from moby_asm.errors import MobyAsmError


class TrustError(MobyAsmError):
    """Signing or verifying the manifest `digest` that `reference` names failed."""

    def __init__(self, message: str, *, reference: str, digest: str):
        self.reference = reference
        self.digest = digest
        super().__init__(message)


class SignatureMissing(TrustError):
    """The repository has no signature manifest under the tag `tag` for the digest."""

    def __init__(self, *, reference: str, digest: str, tag: str):
        self.tag = tag
        message = (
            f"{reference} ({digest}) is not signed: the repository has no tag {tag}; "
            f"sign it with `moby-asm sign {reference} --key KEY`"
        )
        super().__init__(message, reference=reference, digest=digest)


class SignatureInvalid(TrustError):
    """No signature for the digest verifies; `failures` maps each key id tried to the reason it failed."""

    def __init__(self, *, reference: str, digest: str, failures: dict[str, str]):
        self.failures = dict(failures)
        reasons = "; ".join(f"key {key_id}: {reason}" for key_id, reason in self.failures.items())
        message = f"no signature of {reference} ({digest}) verifies: {reasons}"
        super().__init__(message, reference=reference, digest=digest)
