"""Signing and verifying manifests in OCI registries with ECDSA P-256 keys, in cosign's signature format."""
