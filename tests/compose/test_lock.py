"""`moby-asm lock`: the lock file, `--check`, upgrades, unsolvable assemblies and failed writes."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moby_asm import fileio
from moby_asm.fileio import WriteFailed
from moby_asm.lock import write_lock

from .helpers import explain, files_under, position_of, read_yaml, write_project

ASSEMBLY = """\
name: lock-test
requires:
  - kernel ^6.6
  - init ^1.2
  - runc
  - containerd
  - alpha ^1
  - beta ^1
"""

UNSOLVABLE = ASSEMBLY + "  - gamma\n"

FILE_SIZE_LIMIT = 512
"""Largest file, in bytes, that a command run by `run_with_file_limit` may write. A lock is larger."""


def newer_version(name: str, version: str) -> str:
    """Return descriptor lines that add `version` of `name` to its `versions` list."""
    return (f"  - version: {version}\n"
            "    stage: service\n"
            "    source:\n"
            f"      image: example.org/{name}:{version}\n"
            "    requires: [containerd]\n")


def locked_versions(folder: Path) -> dict[str, str]:
    return {item["name"]: item["version"] for item in read_yaml(folder / "assembly.lock")["components"]}


@pytest.fixture(scope="module")
def locked(tmp_path_factory, moby) -> Path:
    """Create a project with alpha 1.0.0 and beta 1.0.0, lock it once and return its folder."""
    folder = write_project(tmp_path_factory.mktemp("locked") / "project", ASSEMBLY, ["alpha", "beta", "gamma"])
    result = moby("lock", folder, cwd=folder.parent)
    assert result.returncode == 0, explain(result)
    return folder


@pytest.fixture
def project(locked, tmp_path) -> Path:
    """Return a private copy of the locked project."""
    return Path(shutil.copytree(locked, tmp_path / "project"))


def test_lock_writes_lock_file(locked):
    lock = read_yaml(locked / "assembly.lock")
    components = {item["name"]: item for item in lock["components"]}

    assert lock["assembly"] == {"name": "lock-test", "version": "0.1.0"}
    assert components["alpha"]["version"] == "1.0.0"
    assert components["alpha"]["descriptor"] == "project:alpha.yml"
    assert components["alpha"]["requiredBy"] == ["assembly"]
    assert components["kernel"]["descriptor"] == "shipped:kernel.yml"
    assert "gamma" not in components
    assert lock["order"]["service"] == ["alpha", "beta"]


def test_lock_rerun_gives_same_bytes(project, moby):
    before = (project / "assembly.lock").read_bytes()

    result = moby("lock", ".", cwd=project)

    assert result.returncode == 0, explain(result)
    assert (project / "assembly.lock").read_bytes() == before


def test_lock_check_passes_on_current_lock(project, moby):
    result = moby("lock", "--check", ".", cwd=project)

    assert result.returncode == 0, explain(result)
    assert "is up to date" in result.stdout


@pytest.mark.parametrize(("changed", "label"), [
    ("components/alpha.yml", "input project:alpha.yml changed"),
    ("assembly.yml", "input assembly.yml changed"),
])
def test_lock_check_names_changed_input(project, moby, folder_snapshot, changed, label):
    path = project / changed
    path.write_text(path.read_text() + "# edited after locking\n")
    before = folder_snapshot(project)

    result = moby("lock", "--check", ".", cwd=project)

    assert result.returncode == 1, explain(result)
    assert label in result.stderr
    assert "out of date" in result.stderr
    assert folder_snapshot(project) == before


def test_lock_check_names_new_version(project, moby, folder_snapshot):
    # A range that now allows only the newer version moves alpha even without --upgrade.
    (project / "components" / "alpha.yml").write_text(
        (project / "components" / "alpha.yml").read_text() + newer_version("alpha", "1.1.0"))
    (project / "assembly.yml").write_text(ASSEMBLY.replace("alpha ^1", "alpha ^1.1"))
    before = folder_snapshot(project)

    result = moby("lock", "--check", ".", cwd=project)

    assert result.returncode == 1, explain(result)
    assert "component alpha: 1.0.0 -> 1.1.0" in result.stderr
    assert folder_snapshot(project) == before


def test_lock_check_without_lock_fails(project, moby):
    (project / "assembly.lock").unlink()

    result = moby("lock", "--check", ".", cwd=project)

    assert result.returncode == 1, explain(result)
    assert "no lock file" in result.stderr
    assert not (project / "assembly.lock").exists()


def add_newer_versions(project: Path) -> None:
    for name in ("alpha", "beta"):
        path = project / "components" / f"{name}.yml"
        path.write_text(path.read_text() + newer_version(name, "1.1.0"))


def test_lock_keeps_locked_versions(project, moby):
    add_newer_versions(project)

    result = moby("lock", ".", cwd=project)

    assert result.returncode == 0, explain(result)
    assert locked_versions(project)["alpha"] == "1.0.0"
    assert locked_versions(project)["beta"] == "1.0.0"


def test_lock_upgrade_moves_only_named(project, moby):
    before = locked_versions(project)
    add_newer_versions(project)

    result = moby("lock", ".", "--upgrade", "alpha", cwd=project)

    after = locked_versions(project)
    assert result.returncode == 0, explain(result)
    assert after["alpha"] == "1.1.0"
    assert after["beta"] == "1.0.0"
    assert {k: v for k, v in after.items() if k != "alpha"} == {k: v for k, v in before.items() if k != "alpha"}


def test_lock_upgrade_all_moves_every_component(project, moby):
    add_newer_versions(project)

    result = moby("lock", ".", "--upgrade-all", cwd=project)

    after = locked_versions(project)
    assert result.returncode == 0, explain(result)
    assert after["alpha"] == "1.1.0"
    assert after["beta"] == "1.1.0"


@pytest.mark.parametrize("with_lock", [False, True], ids=["no-lock", "existing-lock"])
def test_unsolvable_assembly_explains_and_writes_nothing(project, moby, folder_snapshot, with_lock):
    if not with_lock:
        (project / "assembly.lock").unlink()
    (project / "assembly.yml").write_text(UNSOLVABLE)
    gamma_text = (project / "components" / "gamma.yml").read_text()
    before = folder_snapshot(project)

    result = moby("lock", ".", cwd=project)

    line, column = position_of(UNSOLVABLE, "gamma")
    beta_line, beta_column = position_of(gamma_text, "beta ^2.0.0")
    assert result.returncode == 3, explain(result)
    assert f"assembly.yml:{line}:{column}" in result.stderr
    assert f"gamma.yml:{beta_line}:{beta_column}" in result.stderr
    assert "beta ^2.0.0" in result.stderr
    assert "Traceback" not in result.stderr
    assert folder_snapshot(project) == before


def run_with_file_limit(*args: object, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """Run moby-asm with files limited to FILE_SIZE_LIMIT bytes, so a larger write fails with EFBIG.

    Python ignores SIGXFSZ, so the failed write raises OSError inside moby-asm instead of
    killing the process. Running as root does not lift this limit, unlike file modes.
    """
    def limit_file_size() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, hard))

    environment = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"}
    environment.update({"NO_COLOR": "1", "COLUMNS": "400", "MOBY_ASM_CACHE_DIR": str(cache),
                        "MOBY_ASM_CONFIG": str(cache / "missing-config.yml")})
    return subprocess.run([sys.executable, "-m", "moby_asm", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60, preexec_fn=limit_file_size, check=False)


@pytest.fixture
def failed_write(project, tmp_path) -> tuple[Path, bytes, dict, subprocess.CompletedProcess]:
    """Change the assembly and lock with a file size limit. Return the project, old lock, files and result."""
    (project / "assembly.yml").write_text(ASSEMBLY.replace("beta ^1", "beta ~1.0"))
    old_lock = (project / "assembly.lock").read_bytes()
    before = files_under(project)
    result = run_with_file_limit("lock", ".", cwd=project, cache=tmp_path / "cache")
    return project, old_lock, before, result


def test_failed_lock_write_keeps_old_lock(failed_write):
    project, old_lock, before, result = failed_write

    assert result.returncode == 1, explain(result)
    assert (project / "assembly.lock").read_bytes() == old_lock
    assert files_under(project) == before


def test_failed_lock_write_reports_error(failed_write):
    _, _, _, result = failed_write

    assert "Traceback" not in result.stderr
    assert "assembly.lock" in result.stderr


def test_write_lock_failure_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "assembly.lock"
    path.write_text("old\n")

    def fail(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", fail)
    with pytest.raises(WriteFailed):
        write_lock(path, "new\n" * 100)

    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assembly.lock"]
