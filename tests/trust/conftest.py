"""Fixtures for signing tests: key pairs, and the command line without an inherited passphrase."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_registry import isolate_registry_access

from moby_asm.trust.keys import generate_key, load_private_key, load_public_key


@dataclass(frozen=True)
class KeyPair:
    """Key files made for a test, and the keys loaded from them."""

    private_path: Path
    public_path: Path
    key_id: str

    @property
    def private_key(self):
        return load_private_key(self.private_path)

    @property
    def public_key(self):
        return load_public_key(self.public_path)


def make_key_pair(folder: Path, name: str) -> KeyPair:
    """Write an unencrypted key pair NAME.key and NAME.pub into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    identifier = generate_key(folder / f"{name}.key", folder / f"{name}.pub", None)
    return KeyPair(folder / f"{name}.key", folder / f"{name}.pub", identifier)


def run_cli(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run moby-asm with no terminal input; MOBY_ASM_KEY_PASSWORD is passed only through `env`."""
    environment = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_KEY_PASSWORD"}
    environment.update({"NO_COLOR": "1", "COLUMNS": "400", **(env or {})})
    return subprocess.run([sys.executable, "-m", "moby_asm", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="package", autouse=True)
def isolated_environment(tmp_path_factory) -> Iterator[None]:
    """Keep requests to 127.0.0.1 off any proxy, read no Docker config of the user and no key password."""
    with pytest.MonkeyPatch.context() as patch:
        isolate_registry_access(patch, tmp_path_factory.mktemp("docker-config"))
        patch.delenv("MOBY_ASM_KEY_PASSWORD", raising=False)
        yield


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, KeyPair]:
    """Two unrelated key pairs, "alice" and "bob"."""
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key_pair(folder, name) for name in ("alice", "bob")}
