"""`moby-asm import` round trips: LinuxKit configs -> project -> compose -> the same config.

Each case in data/import/ is imported into a new project, which is then composed with
the CLI. The rendered linuxkit.yml must build what the original files build: the same
kernel, init images, onboot and onshutdown entries in order, services (by name, since
they start together), files and volumes. Several files are combined as `linuxkit build`
combines them: lists are concatenated in order and later kernel fields win.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moby_asm.linuxkit import check_config

from .helpers import DATA, explain, files_under, position_of, read_yaml

IMPORTS = DATA / "import"
SECTIONS = ("kernel", "init", "onboot", "onshutdown", "services", "files", "volumes")

CASES = {
    "minimal": ["minimal.yml"],
    "sshd": ["sshd.yml"],
    "binds-add": ["binds-add.yml"],
    "capabilities-add": ["capabilities-add.yml"],
    "runtime-network": ["runtime-network.yml"],
    "runtime-mkdir-cgroups": ["runtime-mkdir-cgroups.yml"],
    "volumes": ["volumes.yml"],
    "files": ["files.yml"],
    "onboot-chain": ["onboot-chain.yml"],
    "shared-image": ["shared-image.yml"],
    "catalog-exact": ["catalog-exact.yml"],
    "catalog-extra": ["catalog-extra.yml"],
    "two-layers": ["layers/base.yml", "layers/network.yml"],
    "three-layers": ["layers/base.yml", "layers/network.yml", "layers/debug.yml"],
    "sshd-binds-add": ["sshd-binds-add.yml"],
    "onboot-against-hints": ["onboot-against-hints.yml"],
}

KNOWN_FAILURES: dict[str, str] = {}

def case_params() -> list:
    return [pytest.param(case, id=case, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case])]
                         if case in KNOWN_FAILURES else []) for case in CASES]


def merge_configs(paths: list[Path]) -> dict:
    """Combine LinuxKit files as `linuxkit build` does when given several."""
    merged: dict = {}
    for path in paths:
        for key, value in read_yaml(path).items():
            if key == "kernel":
                merged.setdefault("kernel", {}).update(value)
            elif isinstance(value, list):
                merged[key] = merged.get(key, []) + value
            else:
                merged[key] = value
    return merged


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory, run_all) -> dict[str, dict]:
    """Import every case, compose every imported project, and return results and folders."""
    root = tmp_path_factory.mktemp("imports")
    imports = run_all((("import", "--json", *(IMPORTS / name for name in names), "-o", root / case / "project"),
                       root) for case, names in CASES.items())
    imported = [case for case, result in zip(CASES, imports, strict=True) if result.returncode == 0]
    composes = run_all((("compose", root / case / "project", "-o", root / case / "build"), root)
                       for case in imported)
    runs = {case: {"import": result, "project": root / case / "project", "build": root / case / "build"}
            for case, result in zip(CASES, imports, strict=True)}
    for case, result in zip(imported, composes, strict=True):
        runs[case]["compose"] = result
    return runs


def composed_config(runs: dict, case: str) -> dict:
    run = runs[case]
    assert run["import"].returncode == 0, explain(run["import"])
    assert run["compose"].returncode == 0, explain(run["compose"])
    return read_yaml(run["build"] / "linuxkit.yml")


def by_name(entries: list[dict]) -> dict[str, dict]:
    return {entry["name"]: entry for entry in entries}


@pytest.mark.parametrize("case", case_params())
def test_import_round_trip(round_trips, case):
    composed = composed_config(round_trips, case)
    original = merge_configs([IMPORTS / name for name in CASES[case]])

    assert composed["kernel"] == original["kernel"]
    assert composed["init"] == original["init"]
    assert composed.get("onboot", []) == original.get("onboot", [])
    assert composed.get("onshutdown", []) == original.get("onshutdown", [])
    assert by_name(composed.get("services", [])) == by_name(original.get("services", []))
    assert len(composed.get("services", [])) == len(original.get("services", []))
    assert composed.get("files", []) == original.get("files", [])
    assert composed.get("volumes", []) == original.get("volumes", [])
    assert set(composed) == set(original) & set(SECTIONS)


@pytest.mark.parametrize("case", [case for case in CASES if case not in KNOWN_FAILURES])
def test_imported_config_passes_schema(round_trips, case):
    assert check_config(composed_config(round_trips, case)) == []


def import_report(runs: dict, case: str) -> dict:
    result = runs[case]["import"]
    assert result.returncode == 0, explain(result)
    return json.loads(result.stdout)


def test_catalog_images_need_no_local_components(round_trips):
    report = import_report(round_trips, "catalog-exact")
    assembly = read_yaml(round_trips["catalog-exact"]["project"] / "assembly.yml")

    assert report["components"] == []
    assert report["equivalent"] is True
    assert len(report["matched"]) == 10
    assert "config" not in assembly
    assert not (round_trips["catalog-exact"]["project"] / "components").exists()


def test_catalog_images_with_extra_settings_use_overrides(round_trips):
    report = import_report(round_trips, "catalog-extra")
    assembly = read_yaml(round_trips["catalog-extra"]["project"] / "assembly.yml")

    assert report["components"] == []
    assert sorted(assembly["config"]) == ["dhcpcd", "getty", "redis"]
    assert assembly["config"]["dhcpcd"]["binds.add"] == ["/etc/dhcpcd-custom.conf:/etc/dhcpcd-custom.conf:ro"]
    assert assembly["kernel"] == {"cmdline": "console=ttyS0 quiet"}


def test_shared_image_gives_one_component_per_name(round_trips):
    report = import_report(round_trips, "shared-image")

    assert report["components"] == ["getty-serial", "worker-a", "worker-b", "worker-c"]


def test_onboot_chain_keeps_written_order(round_trips):
    composed = composed_config(round_trips, "onboot-chain")
    names = [entry["name"] for entry in composed["onboot"]]

    assert names == ["partition", "sysctl", "zero-disk", "dhcpcd", "apply-config", "mount-data"]
    assert names != sorted(names)
    assert [entry["name"] for entry in composed["onshutdown"]] == ["sync-disks", "announce", "flush-logs"]


def test_layers_take_later_kernel_fields(round_trips):
    composed = composed_config(round_trips, "three-layers")

    assert composed["kernel"] == {"image": "linuxkit/kernel:6.12.52-01ab8e22c88f25fc1bf4c354689f12797c213a86",
                                  "cmdline": "console=tty0 console=ttyS0"}
    assert [entry["name"] for entry in composed["onboot"]] == ["sysctl", "dhcpcd", "debug-setup"]


def test_import_into_existing_assembly_needs_force(round_trips, tmp_path, moby, folder_snapshot):
    project = Path(shutil.copytree(round_trips["minimal"]["project"], tmp_path / "project"))
    before = folder_snapshot(project)

    refused = moby("import", IMPORTS / "sshd.yml", "-o", project, cwd=tmp_path)
    after_refusal = folder_snapshot(project)
    forced = moby("import", IMPORTS / "sshd.yml", "-o", project, "--force", cwd=tmp_path)

    assert refused.returncode == 2, explain(refused)
    assert "--force" in refused.stderr
    assert after_refusal == before
    assert forced.returncode == 0, explain(forced)
    assert read_yaml(project / "assembly.yml")["name"] == "sshd"


def test_invalid_config_reported_and_nothing_written(tmp_path, moby):
    source = IMPORTS / "invalid.yml"

    result = moby("import", source, "-o", tmp_path / "project", cwd=tmp_path)

    line, column = position_of(source.read_text(), "capabilites")
    assert result.returncode == 2, explain(result)
    assert f"invalid.yml:{line}:{column}:" in result.stderr
    assert "did you mean 'capabilities'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_forced_import_replaces_earlier_project(tmp_path, moby):
    project = tmp_path / "project"
    first = moby("import", DATA / "force" / "custom-getty.yml", "-o", project, cwd=tmp_path)
    second = moby("import", DATA / "force" / "catalog-getty.yml", "-o", project, "--force", cwd=tmp_path)
    assert first.returncode == 0, explain(first)
    assert second.returncode == 0, explain(second)

    result = moby("compose", project, "-o", tmp_path / "build", cwd=tmp_path)

    assert result.returncode == 0, explain(result)
    assert sorted(files_under(project)) == ["assembly.lock", "assembly.yml"]


def test_name_in_two_stages_rejected(tmp_path, moby):
    project = tmp_path / "project"

    result = moby("import", IMPORTS / "same-name-in-two-stages.yml", "-o", project, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "container name 'rngd' is used in both onboot and services" in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.exists()
