"""ECDSA P-256 key pairs in PEM files: generate, load and identify them.

The private key is PKCS#8 PEM, encrypted with the passphrase when there is one, and
is created with mode 0600 so that no other user can read it at any moment. The public
key is SubjectPublicKeyInfo PEM, the format `cosign verify --key` reads. Neither key
material nor passphrases are ever logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from moby_asm.errors import InputError

PASSWORD_VARIABLE = "MOBY_ASM_KEY_PASSWORD"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
MAX_KEY_FILE_BYTES = 64 * 1024

PassphraseProvider = Callable[[], bytes]
"""Returns the passphrase of an encrypted private key, for example by prompting without echo."""


def generate_key(
    private_path: Path, public_path: Path, passphrase: bytes | None, *, force: bool = False
) -> str:
    """Write a new P-256 private key to `private_path` and its public key to `public_path`; return the key id.

    Existing files are rejected with InputError unless `force`, in which case they are
    replaced atomically. An empty passphrase is rejected; pass None for no encryption.
    """
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.resolve() == public_path.resolve():
        raise InputError(f"the private and the public key would both be written to {private_path}")
    if not force:
        for path in (private_path, public_path):
            _require_absent(path)
    if passphrase is not None and not passphrase:
        raise InputError("the passphrase is empty: give one, or generate the key without a passphrase")

    private_key = ec.generate_private_key(ec.SECP256R1())
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_key = private_key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_atomically(private_path, private_pem, PRIVATE_MODE, force)
    _write_atomically(public_path, public_pem, PUBLIC_MODE, force)
    return key_id(public_key)


def load_private_key(
    path: Path, passphrase_provider: PassphraseProvider | None = None
) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key from a PEM file.

    The passphrase of an encrypted key comes from the environment variable
    MOBY_ASM_KEY_PASSWORD, else from `passphrase_provider()`. A missing passphrase, a
    wrong one or a file that is not a P-256 private key raises InputError naming the file.
    """
    path = Path(path)
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        key = _decrypt(path, data, passphrase_provider)
    except ValueError as error:
        raise InputError(f"{path} is not a PEM private key: {_reason(error)}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError(f"{path} is not an ECDSA P-256 private key; generate one with `moby-asm key generate`")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from a SubjectPublicKeyInfo PEM file, such as moby-asm.pub or cosign.pub."""
    path = Path(path)
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise InputError(f"{path} is not a PEM public key: {_reason(error)}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError(f"{path} is not an ECDSA P-256 public key")
    return key


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """Return the first 16 hex digits of the SHA-256 of the key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def _decrypt(
    path: Path, data: bytes, passphrase_provider: PassphraseProvider | None
) -> ec.EllipticCurvePrivateKey:
    from_environment = os.environ.get(PASSWORD_VARIABLE)
    if from_environment is not None:
        passphrase, source = from_environment.encode(), f"from {PASSWORD_VARIABLE}"
    elif passphrase_provider is not None:
        passphrase, source = passphrase_provider(), "given"
    else:
        raise InputError(f"{path} is encrypted: set {PASSWORD_VARIABLE} to its passphrase")
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        # The library's message is not passed on: it adds nothing, and no key data may leak.
        raise InputError(f"cannot decrypt {path}: the passphrase {source} is wrong") from None


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"key file {path} does not exist") from None
    except OSError as error:
        raise InputError(f"cannot read key file {path}: {error.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InputError(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes; it is not a PEM key file")
    return data


def _reason(error: ValueError) -> str:
    """Return the first line of a cryptography error, which names the format problem but no key bytes."""
    text = str(error).strip().splitlines()
    return text[0] if text else "the content could not be parsed"


def _require_absent(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise InputError(f"{path} already exists: choose another output prefix, or replace it with --force")


def _write_atomically(path: Path, content: bytes, mode: int, replace: bool) -> None:
    """Write `content` to a new file in `path`'s folder created with `mode`, then move it to `path`.

    The file is created by os.open with O_CREAT | O_EXCL and `mode`, so it never has
    wider permissions than `mode`. fchmod then sets `mode` exactly, whatever the umask.
    Without `replace`, os.link moves it into place and fails if `path` exists.
    """
    folder = path.parent
    temporary = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            _link_new(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _link_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise InputError(f"{path} already exists: choose another output prefix, or replace it with --force") from None
    except OSError:
        # NOTE: on file systems without hard links, the existence check and the rename are two steps, so a
        # file created between them is replaced.
        _require_absent(path)
        os.rename(temporary, path)
