"""The shipped debian-runc component against the Debian archive that this machine's apt sources name.

One lock and three builds are shared by the tests: a build into each of two empty
content stores, and an --offline build from the first store. runc and its libraries
come to about 6 MB of packages. The tests are skipped, with the error, only when
moby-asm cannot connect to the archive at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["debian_fixtures"]

ASSEMBLY = {"name": "runc-only", "requires": ["debian-runc"], "outputs": ["tar"]}
UNREACHABLE = re.compile(r"cannot fetch \S+: (ConnectionError|ConnectTimeout|ReadTimeout|ProxyError)")


@dataclass
class Builds:
    """The project, its lock, and the --json reports of the builds into stores "first" and "second"."""

    project: Path
    caches: dict[str, Path]
    reports: dict[str, dict]

    @property
    def packages(self) -> list[dict]:
        lock = yaml.safe_load((self.project / "assembly.lock").read_text())
        return lock["components"][0]["source"]["packages"]

    def output(self, name: str) -> Path:
        return self.project / f"dist-{name}" / "runc-only.tar"


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def build(debian_cli, project: Path, cache: Path, name: str, *args: object) -> subprocess.CompletedProcess:
    return debian_cli("build", project, "-f", "tar", "--cache", cache, "-o", project / f"dist-{name}", "--json", *args,
                cwd=project)


@pytest.fixture(scope="module")
def builds(debian_cli, tmp_path_factory) -> Builds:
    root = tmp_path_factory.mktemp("real-archive")
    project = root / "project"
    project.mkdir()
    (project / "assembly.yml").write_text(yaml.safe_dump(ASSEMBLY, sort_keys=False))
    caches = {name: root / f"cache-{name}" for name in ("first", "second")}

    locked = debian_cli("lock", project, "--cache", caches["first"], cwd=project)
    unreachable = UNREACHABLE.search(locked.stderr)
    if locked.returncode == 1 and unreachable:
        pytest.skip(f"the Debian archive of the apt sources is unreachable: {unreachable.group(0)}")
    assert locked.returncode == 0, explain(locked)

    reports = {}
    for name, cache in caches.items():
        result = build(debian_cli, project, cache, name)
        assert result.returncode == 0, explain(result)
        reports[name] = json.loads(result.stdout)
    return Builds(project, caches, reports)


def test_lock_records_runc(builds):
    runc = [package for package in builds.packages if package["name"] == "runc"]

    assert len(runc) == 1
    assert runc[0]["version"].startswith("1.1.5")
    assert runc[0]["architecture"] == "amd64"
    assert re.fullmatch(r"pool/main/r/runc/runc_[^/]+_amd64\.deb", runc[0]["filename"])
    assert re.fullmatch(r"[0-9a-f]{64}", runc[0]["sha256"])
    assert runc[0]["size"] > 0


def test_lock_records_dependencies(builds):
    names = {package["name"] for package in builds.packages}

    assert {"runc", "libc6", "libseccomp2"} <= names


def test_locked_hashes_match_fetched_packages(builds):
    blobs = builds.caches["first"] / "blobs" / "sha256"

    for package in builds.packages:
        blob = blobs / package["sha256"]
        assert blob.is_file(), f"{package['name']} was not stored under its locked SHA-256"
        assert blob.stat().st_size == package["size"]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == package["sha256"]


def test_separate_caches_give_same_image(builds):
    first, second = (builds.reports[name]["built"] for name in ("first", "second"))

    assert [item["how"] for item in first + second] == ["built", "built"]
    assert first[0]["image"] == second[0]["image"]
    assert first[0]["digest"] == second[0]["digest"]


def test_separate_caches_give_same_layer(builds):
    layers = []
    for name, cache in builds.caches.items():
        digest = builds.reports[name]["built"][0]["digest"].removeprefix("sha256:")
        manifest = json.loads((cache / "blobs" / "sha256" / digest).read_bytes())
        layer = manifest["layers"][0]["digest"].removeprefix("sha256:")
        layers.append((cache / "blobs" / "sha256" / layer).read_bytes())

    assert layers[0] == layers[1]


def test_separate_caches_give_same_output(builds):
    first, second = (builds.reports[name]["outputs"][0] for name in ("first", "second"))

    assert first["digest"] == second["digest"]
    assert builds.output("first").read_bytes() == builds.output("second").read_bytes()
    with tarfile.open(builds.output("first")) as archive:
        assert archive.getmember("usr/sbin/runc").isfile()


def test_offline_build_from_cache(debian_cli, builds):
    result = build(debian_cli, builds.project, builds.caches["first"], "offline", "--offline")

    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout)
    assert report["built"][0]["how"] == "cached"
    assert report["outputs"][0]["digest"] == builds.reports["first"]["outputs"][0]["digest"]


def test_offline_build_without_cache(debian_cli, builds, tmp_path):
    locked = (builds.project / "assembly.lock").read_bytes()

    result = build(debian_cli, builds.project, tmp_path / "empty-cache", "empty", "--offline")

    assert result.returncode == 1, explain(result)
    assert "--offline" in result.stderr
    named = [package["filename"] for package in builds.packages if package["filename"] in result.stderr]
    assert named, f"no locked package file is named\n{explain(result)}"
    assert not (builds.project / "dist-empty").exists()
    assert (builds.project / "assembly.lock").read_bytes() == locked
