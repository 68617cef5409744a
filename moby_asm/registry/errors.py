"""Errors of the registry client. Each names the image reference and the registry host it contacted.

    MobyAsmError
    ├── InvalidReference        also an InputError
    └── RegistryError           fields: reference, host
        ├── ImageNotFound       also a store ImageNotFound: HTTP 404, or no manifest for the platform
        ├── Unauthorized        HTTP 401 or 403 after authentication was tried
        ├── CredentialsError    a docker-credential helper failed
        ├── InvalidManifest     a manifest the client cannot use
        └── RegistryUnavailable retries exhausted on connection errors, HTTP 5xx or 429
            └── RegistryTimeout the last attempt timed out

DigestMismatch comes from moby_asm.store, with `reference` and `host` filled in.
"""

from __future__ import annotations

from moby_asm.errors import InputError, MobyAsmError
from moby_asm.store.errors import DigestMismatch
from moby_asm.store.errors import ImageNotFound as StoredImageNotFound

__all__ = [
    "CredentialsError",
    "DigestMismatch",
    "ImageNotFound",
    "InvalidManifest",
    "InvalidReference",
    "RegistryError",
    "RegistryTimeout",
    "RegistryUnavailable",
    "Unauthorized",
]


class InvalidReference(InputError):
    """An image reference does not follow the [HOST[:PORT]/]PATH[:TAG][@DIGEST] grammar."""

    def __init__(self, reference: str, reason: str):
        self.reference = reference
        self.reason = reason
        super().__init__(f"invalid image reference {reference!r}: {reason}")


class RegistryError(MobyAsmError):
    """A registry request for `reference` to `host` failed."""

    def __init__(self, message: str, *, reference: str, host: str):
        self.reference = reference
        self.host = host
        super().__init__(message)


class ImageNotFound(RegistryError, StoredImageNotFound):
    """The registry has no such image, or the image has no manifest for `platform`."""

    def __init__(self, *, reference: str, host: str, reason: str, platform: str | None = None):
        self.reference = reference
        self.host = host
        self.platform = platform
        self.reason = reason
        target = f"{reference} for {platform}" if platform else reference
        MobyAsmError.__init__(self, f"image {target} not found on {host}: {reason}")


class Unauthorized(RegistryError):
    """The registry rejected the request with HTTP 401 or 403."""

    def __init__(self, *, reference: str, host: str, status: int, hint: str):
        self.status = status
        self.hint = hint
        super().__init__(
            f"{host} rejected the request for {reference} (HTTP {status}): {hint}", reference=reference, host=host
        )


class CredentialsError(RegistryError):
    """A docker-credential helper named in the Docker config failed."""

    def __init__(self, *, reference: str, host: str, helper: str, reason: str):
        self.helper = helper
        self.reason = reason
        message = f"cannot get credentials for {host} (needed for {reference}) from {helper}: {reason}"
        super().__init__(message, reference=reference, host=host)


class InvalidManifest(RegistryError):
    """A manifest or index from the registry is malformed or of an unsupported media type."""

    def __init__(self, *, reference: str, host: str, reason: str):
        self.reason = reason
        super().__init__(
            f"cannot use the manifest of {reference} from {host}: {reason}", reference=reference, host=host
        )


class RegistryUnavailable(RegistryError):
    """The registry could not be reached or kept failing after `attempts` tries."""

    def __init__(self, *, reference: str, host: str, attempts: int, reason: str):
        self.attempts = attempts
        self.reason = reason
        message = f"registry {host} is unavailable for {reference} after {attempts} attempts: {reason}"
        super().__init__(message, reference=reference, host=host)


class RegistryTimeout(RegistryUnavailable):
    """The registry did not respond within `timeout` seconds, on the last of `attempts` tries."""

    def __init__(self, *, reference: str, host: str, attempts: int, timeout: float):
        self.timeout = timeout
        reason = f"timed out, no response within {timeout:g} s"
        super().__init__(reference=reference, host=host, attempts=attempts, reason=reason)
