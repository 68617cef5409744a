"""Fixtures for the Debian source tests: signing keys, a local archive served on 127.0.0.1, and projects.

Test modules load this plugin with `pytest_plugins`. It is not a conftest.py because a
conftest.py outside a package is imported under the module name `conftest`, which would
hide tests/conftest.py from the test modules that import `run_cli` from it.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from debian_projects import write_project
from local_archive import ArchiveServer, LocalArchive, SigningKey, make_signing_key, run_tool

LOOPBACK = "127.0.0.1,localhost,::1"


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory) -> Iterator[dict[str, SigningKey]]:
    """Two unrelated OpenPGP keys: "archive", which the tests trust, and "stranger", which they do not."""
    home = tmp_path_factory.mktemp("gnupg") / "home"
    keys = {name: make_signing_key(home, name) for name in ("archive", "stranger")}
    yield keys
    # gpg starts an agent for this GNUPGHOME, so stop it to leave no process running after the tests.
    run_tool(["gpgconf", "--kill", "gpg-agent"], env={"GNUPGHOME": str(home)})


@pytest.fixture(scope="session")
def archive_server(tmp_path_factory) -> Iterator[ArchiveServer]:
    """One HTTP server on 127.0.0.1 for the whole run. Each test lays out its own archive below its root."""
    server = ArchiveServer(tmp_path_factory.mktemp("archives"))
    yield server
    server.stop()


@pytest.fixture
def local_archive(archive_server) -> LocalArchive:
    """An empty archive of suite bookworm in a new folder that `archive_server` serves."""
    root = Path(tempfile.mkdtemp(prefix="archive-", dir=archive_server.root))
    return LocalArchive(root, f"{archive_server.url}/{root.name}")


@pytest.fixture(scope="session")
def debian_cli(cli, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """Return `cli` with no user configuration file and with requests to loopback hosts kept off any proxy."""
    config = tmp_path_factory.mktemp("user-config") / "missing-config.yml"

    def run(*args: object, cwd: Path) -> subprocess.CompletedProcess:
        return cli(*args, cwd=cwd, env={"MOBY_ASM_CONFIG": str(config), "NO_PROXY": LOOPBACK,
                                        "no_proxy": LOOPBACK})

    return run


@pytest.fixture
def debian_project(tmp_path) -> Callable[..., Path]:
    """Return `write_project` bound to the folder tmp_path/project."""

    def write(sources: dict[str, dict], outputs: tuple[str, ...] = ("tar",)) -> Path:
        return write_project(tmp_path / "project", sources, outputs)

    return write
