"""`moby-asm key generate`, `moby-asm sign` and `moby-asm verify`: signatures of images and templates."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from moby_asm.cli.output import console, escape, print_json

key_app = typer.Typer(help="Create signing keys.", no_args_is_help=True)

ReferenceArgument = typer.Argument(..., metavar="REFERENCE",
                                   help="An image (HOST/REPOSITORY[:TAG|@DIGEST]) or a template (oci://...).")
InsecureOption = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                              help="Allow plain HTTP to this registry (loopback hosts always are).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


@key_app.command("generate")
def generate(
    output: str = typer.Option("./moby-asm", "--output", "-o", metavar="PREFIX",
                               help="Write the private key to PREFIX.key and the public key to PREFIX.pub."),
    no_passphrase: bool = typer.Option(False, "--no-passphrase", help="Leave the private key unencrypted."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
    json: bool = JsonOption,
) -> None:
    """Create an ECDSA P-256 key pair; the private key is encrypted with a passphrase unless --no-passphrase."""
    from moby_asm.trust.keys import generate_key

    private_path, public_path = Path(f"{output}.key"), Path(f"{output}.pub")
    passphrase = None if no_passphrase else _new_passphrase()
    identifier = generate_key(private_path, public_path, passphrase, force=force)
    if json:
        print_json({"private_key": str(private_path), "public_key": str(public_path), "key_id": identifier,
                    "encrypted": passphrase is not None})
        return
    console().print(f"wrote {escape(str(private_path))} and {escape(str(public_path))}; key id {identifier}")


def sign(
    reference: str = ReferenceArgument,
    key: Path = typer.Option(..., "--key", metavar="KEY", help="The private key file (PEM)."),
    insecure: list[str] = InsecureOption,
    json: bool = JsonOption,
) -> None:
    """Sign the manifest a reference names and push the signature next to it, in cosign's format."""
    from moby_asm.trust.keys import key_id, load_private_key
    from moby_asm.trust.signatures import sign as sign_reference

    private_key = load_private_key(key, lambda: _prompt(f"Passphrase for {key}"))
    signed = sign_reference(reference, private_key, insecure=set(insecure or ()))
    identifier = key_id(private_key.public_key())
    if json:
        print_json({"reference": signed.reference, "digest": signed.digest, "signature_tag": signed.tag,
                    "key_id": identifier})
        return
    console().print(f"signed {escape(signed.reference)} {signed.digest} with key {identifier} "
                    f"(tag {signed.tag})")


def verify(
    reference: str = ReferenceArgument,
    keys: list[Path] = typer.Option(..., "--key", metavar="PUB",
                                    help="A public key file (PEM); repeat to accept any of several keys."),
    insecure: list[str] = InsecureOption,
    json: bool = JsonOption,
) -> None:
    """Check that a signature of the manifest a reference names verifies under one of the public keys."""
    from moby_asm.trust.keys import load_public_key
    from moby_asm.trust.signatures import verify as verify_reference

    public_keys = [load_public_key(path) for path in keys]
    verified = verify_reference(reference, public_keys, insecure=set(insecure or ()))
    if json:
        print_json({"reference": verified.reference, "digest": verified.digest, "key_id": verified.key_id})
        return
    console().print(f"verified {escape(verified.reference)} {verified.digest} with key {verified.key_id}")


def _new_passphrase() -> bytes:
    """Return the passphrase from MOBY_ASM_KEY_PASSWORD, else one prompted twice without echo."""
    from moby_asm.errors import InputError
    from moby_asm.trust.keys import PASSWORD_VARIABLE

    passphrase = os.environ.get(PASSWORD_VARIABLE)
    if passphrase is None:
        passphrase = typer.prompt("Passphrase for the new private key", hide_input=True,
                                  confirmation_prompt="Repeat the passphrase", err=True)
    if not passphrase:
        raise InputError(f"the passphrase is empty: enter one, or use --no-passphrase; if {PASSWORD_VARIABLE} "
                         "is set, it must not be empty")
    return passphrase.encode()


def _prompt(text: str) -> bytes:
    return typer.prompt(text, hide_input=True, err=True).encode()
