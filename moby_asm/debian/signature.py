"""Check a Release file's OpenPGP signature with gpgv, as apt does, and return the signed text.

gpgv reads only binary keyrings; ASCII-armoured ones (`*.asc`, as in /etc/apt/trusted.gpg.d)
are converted with `gpg --dearmor` into a temporary folder first.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from moby_asm.debian.errors import ArchiveError, BadSignature

_STATUS_REASONS = {
    "NO_PUBKEY": "it was made by a key that none of the keyrings holds",
    "BADSIG": "the signature does not match the file, so the file was changed after signing",
    "EXPKEYSIG": "the signing key has expired",
    "REVKEYSIG": "the signing key was revoked",
    "ERRSIG": "the signature could not be checked",
}


def verify_release(signed: bytes, detached: bytes | None, keyrings: tuple[Path, ...], where: str) -> bytes:
    """Return the Release text that `signed` (InRelease, or Release with `detached` Release.gpg) carries.

    Raise BadSignature naming `where` unless a key in `keyrings` made a valid signature.
    """
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise ArchiveError("gpgv is needed to check the signatures of Debian archives; install the 'gpgv' package")
    if not keyrings:
        raise BadSignature(f"{where}: no keyring to check its signature against; give --debian-keyring FILE or a "
                           "'Signed-By' keyring in the apt source")
    with tempfile.TemporaryDirectory(prefix="moby-asm-gpgv-") as scratch:
        folder = Path(scratch)
        arguments = [gpgv, "--status-fd", "1"]
        for keyring in keyrings:
            arguments += ["--keyring", str(_binary_keyring(keyring, folder))]
        document = folder / "Release"
        document.write_bytes(signed)
        if detached is None:
            arguments += ["--output", str(folder / "signed"), str(document)]
        else:
            (folder / "Release.gpg").write_bytes(detached)
            arguments += [str(folder / "Release.gpg"), str(document)]
        result = subprocess.run(arguments, capture_output=True, text=True, check=False)
        if result.returncode != 0 or "[GNUPG:] VALIDSIG" not in result.stdout:
            raise BadSignature(f"{where}: the OpenPGP signature does not verify: {_reason(result)}; "
                               f"keyrings tried: {', '.join(str(k) for k in keyrings)}")
        return signed if detached is not None else (folder / "signed").read_bytes()


def _binary_keyring(keyring: Path, scratch: Path) -> Path:
    if not keyring.is_file():
        problem = "is not a file" if keyring.exists() else "does not exist"
        raise BadSignature(f"keyring {keyring} {problem}; give the keyring file that signs the archive")
    if keyring.suffix != ".asc":
        return keyring.absolute()
    target = scratch / f"{keyring.stem}-{len(list(scratch.iterdir()))}.gpg"
    gpg = shutil.which("gpg")
    if gpg is None:
        raise ArchiveError(f"keyring {keyring} is ASCII-armoured and needs gpg to be read; install the 'gpg' package")
    result = subprocess.run([gpg, "--batch", "--yes", "--dearmor", "--output", str(target), str(keyring)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BadSignature(f"keyring {keyring} is not an ASCII-armoured OpenPGP key file: "
                           f"{result.stderr.strip() or 'gpg --dearmor failed'}; give a keyring that gpg can read")
    return target


def _reason(result: subprocess.CompletedProcess) -> str:
    # gpgv prints ERRSIG before the NO_PUBKEY that explains it, so the order of _STATUS_REASONS decides.
    found = {line.split()[1] for line in result.stdout.splitlines() if len(line.split()) > 1}
    for status, reason in _STATUS_REASONS.items():
        if status in found:
            return reason
    detail = (result.stderr.strip().splitlines() or ["no valid signature found"])[-1]
    return detail.removeprefix("gpgv: ")
