"""Fixtures shared by the test modules: run the moby-asm command and snapshot folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI_TIMEOUT_SECONDS = 60


def run_cli(
    *args: object, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m moby_asm ARGS` with NO_COLOR, wide output and no inherited catalog path."""
    environment = {
        key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"
    }
    environment.update({"NO_COLOR": "1", "COLUMNS": "400"})
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "moby_asm", *map(str, args)],
        check=False,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Return the contents and modification time of each file under `folder`, None for folders."""
    state: dict[str, tuple[bytes, int] | None] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        state[key] = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
    return state


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep every test's catalog index and content store out of the user's cache folder."""
    cache = tmp_path_factory.mktemp("user-cache")
    previous = os.environ.get("MOBY_ASM_CACHE_DIR")
    os.environ["MOBY_ASM_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("MOBY_ASM_CACHE_DIR", None)
    else:
        os.environ["MOBY_ASM_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def cli(tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """Return `run_cli` with the catalog index cache in a temporary folder, not the user's cache."""
    cache = tmp_path_factory.mktemp("cache")

    def run(*args: object, cwd: Path, env: dict[str, str] | None = None):
        return run_cli(*args, cwd=cwd, env={"MOBY_ASM_CACHE_DIR": str(cache), **(env or {})})

    return run


@pytest.fixture(scope="session")
def folder_snapshot() -> Callable[[Path], dict[str, tuple[bytes, int] | None]]:
    return snapshot


@pytest.fixture(scope="session")
def docker_engine():
    """The URL of a private Docker Engine on a unix socket; skips when dockerd cannot run here."""
    from fixtures_engine import EngineMissing, start_engine

    try:
        engine = start_engine()
    except EngineMissing as missing:
        pytest.skip(str(missing))
    yield engine.url
    engine.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry on 127.0.0.1 for one test module; skips when docker-registry or its tools are missing."""
    from fixtures_registry import run_registry, skip_unless_tools

    skip_unless_tools()
    running = run_registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()
