"""Fixtures for the compose, lock, import and explain tests: the CLI with an isolated user setup."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PARALLEL_RUNS = 4
"""Commands that `run_all` runs at once. Each spends most of its time starting Python."""


@pytest.fixture(scope="session")
def moby(cli, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """Return `cli` with a user configuration file that does not exist, so no user catalog is read."""
    config = tmp_path_factory.mktemp("user-config") / "config.yml"

    def run(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return cli(*args, cwd=cwd, env={"MOBY_ASM_CONFIG": str(config), **(env or {})})

    return run


@pytest.fixture(scope="session")
def run_all(moby) -> Callable[[Iterable[tuple[tuple, Path]]], list[subprocess.CompletedProcess]]:
    """Return a function that runs several (args, cwd) commands at once and returns results in order."""

    def run(calls: Iterable[tuple[tuple, Path]]) -> list[subprocess.CompletedProcess]:
        with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
            futures = [pool.submit(moby, *args, cwd=cwd) for args, cwd in calls]
            return [future.result() for future in futures]

    return run
