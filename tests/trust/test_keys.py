"""Key files: modes, atomic creation, encryption with a passphrase, and key ids."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from moby_asm.errors import InputError
from moby_asm.trust.keys import generate_key, key_id, load_private_key, load_public_key


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_key_file_modes_ignore_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)
    finally:
        os.umask(previous)

    assert mode(tmp_path / "k.key") == 0o600
    assert mode(tmp_path / "k.pub") == 0o644


def test_private_key_created_exclusive_0600(tmp_path, monkeypatch):
    calls = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *args, **kwargs):
        calls.append((str(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")

    private_calls = [call for call in calls if ".k.key." in call[0]]
    assert len(private_calls) == 1
    path, flags, created_mode = private_calls[0]
    assert os.path.dirname(path) == str(tmp_path)
    assert flags & os.O_CREAT
    assert flags & os.O_EXCL
    assert created_mode == 0o600
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["k.key", "k.pub"]


def test_existing_key_file_is_kept(tmp_path):
    (tmp_path / "k.pub").write_text("previous")

    with pytest.raises(InputError, match="--force") as raised:
        generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)

    assert str(tmp_path / "k.pub") in str(raised.value)
    assert not (tmp_path / "k.key").exists()
    assert (tmp_path / "k.pub").read_text() == "previous"


def test_force_replaces_key_files(tmp_path):
    first = generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)

    second = generate_key(tmp_path / "k.key", tmp_path / "k.pub", None, force=True)

    assert second != first
    assert key_id(load_public_key(tmp_path / "k.pub")) == second
    assert mode(tmp_path / "k.key") == 0o600


def test_private_key_is_encrypted_pkcs8(tmp_path):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")

    text = (tmp_path / "k.key").read_text()

    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "secret" not in text


def test_unencrypted_private_key_is_pkcs8(tmp_path):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)

    assert (tmp_path / "k.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "k.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_empty_passphrase_is_rejected(tmp_path):
    with pytest.raises(InputError, match="passphrase is empty"):
        generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"")

    assert list(tmp_path.iterdir()) == []


def test_password_variable_decrypts_key(tmp_path, monkeypatch):
    identifier = generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")
    monkeypatch.setenv("MOBY_ASM_KEY_PASSWORD", "secret")

    private_key = load_private_key(tmp_path / "k.key", lambda: pytest.fail("the prompt must not be used"))

    assert key_id(private_key.public_key()) == identifier


def test_wrong_password_variable_names_file(tmp_path, monkeypatch):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")
    monkeypatch.setenv("MOBY_ASM_KEY_PASSWORD", "wrong-guess")

    with pytest.raises(InputError) as raised:
        load_private_key(tmp_path / "k.key")

    assert str(tmp_path / "k.key") in str(raised.value)
    assert "MOBY_ASM_KEY_PASSWORD" in str(raised.value)
    assert "wrong-guess" not in str(raised.value)


def test_provider_gives_passphrase(tmp_path):
    identifier = generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")

    private_key = load_private_key(tmp_path / "k.key", lambda: b"secret")

    assert key_id(private_key.public_key()) == identifier


def test_wrong_prompted_passphrase_is_rejected(tmp_path):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")

    with pytest.raises(InputError, match="passphrase given is wrong"):
        load_private_key(tmp_path / "k.key", lambda: b"other")


def test_encrypted_key_without_passphrase_source(tmp_path):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", b"secret")

    with pytest.raises(InputError, match="set MOBY_ASM_KEY_PASSWORD"):
        load_private_key(tmp_path / "k.key")


def test_public_key_is_not_a_private_key(tmp_path):
    generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)

    with pytest.raises(InputError, match="not a PEM private key"):
        load_private_key(tmp_path / "k.pub")
    with pytest.raises(InputError, match="not a PEM public key"):
        load_public_key(tmp_path / "k.key")


def test_missing_key_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_public_key(tmp_path / "absent.pub")


def test_key_id_is_sha256_of_der(tmp_path):
    identifier = generate_key(tmp_path / "k.key", tmp_path / "k.pub", None)
    public_key = load_public_key(tmp_path / "k.pub")
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert identifier == hashlib.sha256(der).hexdigest()[:16]
    assert key_id(public_key) == identifier
