"""`moby-asm lock` and `build` against a signed Debian archive served on 127.0.0.1.

Each failure case checks the exit code, that the message names the file's URL under the
mirror, and that nothing the archive served without verifying entered the content store,
the lock or the output folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from local_archive import DebSpec, LocalArchive, build_deb

pytest_plugins = ["debian_fixtures"]

HELLO = DebSpec("hello", "1.0", {"usr/bin/hello": b"#!/bin/sh\necho hello\n"}, depends="libgreet (>= 1.0)")
LIBGREET_OLD = DebSpec("libgreet", "0.9", {"usr/lib/libgreet.so.1": b"greet 0.9\n"})
LIBGREET = DebSpec("libgreet", "1.2", {"usr/lib/libgreet.so.1": b"greet 1.2\n"}, pre_depends="greet-data",
                   postinst="#!/bin/sh\nldconfig\n")
GREET_DATA = DebSpec("greet-data", "2:3.0-1", {"usr/share/greet/words": b"hello\nworld\n"})
UNRELATED = DebSpec("unrelated", "1.0", {"usr/bin/unrelated": b"not needed\n"})
PACKAGES = (HELLO, LIBGREET_OLD, LIBGREET, GREET_DATA, UNRELATED)
CHOSEN = {"greet-data": "2:3.0-1", "hello": "1.0", "libgreet": "1.2"}
SOURCES = {"test-hello": {"suite": "bookworm", "packages": ["hello (>= 1.0)"]}}


class Run:
    """The moby-asm command line bound to one project, archive, keyring and content store."""

    def __init__(self, cli, project: Path, archive: LocalArchive, keyring: Path, cache: Path):
        self.cli = cli
        self.project = project
        self.archive = archive
        self.keyring = keyring
        self.cache = cache

    def __call__(self, command: str, *args: object, mirror: str | None = None) -> subprocess.CompletedProcess:
        return self.cli(command, self.project, "--debian-mirror", mirror or self.archive.uri,
                         "--debian-keyring", self.keyring, "--cache", self.cache, *args, cwd=self.project)

    def build(self, *args: object) -> subprocess.CompletedProcess:
        return self("build", "-f", "tar", "-o", self.output, "--json", *args)

    @property
    def output(self) -> Path:
        return self.project / "dist"

    @property
    def lock_path(self) -> Path:
        return self.project / "assembly.lock"

    def locked_source(self) -> dict:
        return yaml.safe_load(self.lock_path.read_text())["components"][0]["source"]


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def cached_files(cache: Path) -> dict[str, bytes]:
    return {str(path.relative_to(cache)): path.read_bytes() for path in cache.rglob("*") if path.is_file()}


def assert_not_cached(cache: Path, *unverified: bytes) -> None:
    """Check that no file in the content store contains any of `unverified`, nor a blob named by its SHA-256."""
    files = cached_files(cache)
    for data in unverified:
        digest = hashlib.sha256(data).hexdigest()
        assert not (cache / "blobs" / "sha256" / digest).exists(), f"blob sha256:{digest} was kept"
        holding = [name for name, content in files.items() if content == data]
        assert holding == [], f"the content store keeps unverified bytes in {holding}"


def stored_releases(cache: Path) -> list[Path]:
    """Return the Release files that the content store keeps as verified, one per mirror and suite."""
    folder = cache / "debian" / "releases"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def assert_failed(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert result.returncode == code, explain(result)
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} missing from the message\n{explain(result)}"


@pytest.fixture
def archive(local_archive, signing_keys) -> LocalArchive:
    """The archive with PACKAGES, its indexes signed by the trusted key."""
    local_archive.publish(signing_keys["archive"], *PACKAGES)
    return local_archive


@pytest.fixture
def run(debian_cli, debian_project, archive, signing_keys, tmp_path) -> Run:
    return Run(debian_cli, debian_project(SOURCES), archive, signing_keys["archive"].keyring, tmp_path / "cache")


def test_lock_records_packages(run, archive):
    result = run("lock")

    assert result.returncode == 0, explain(result)
    source = run.locked_source()
    assert {package["name"]: package["version"] for package in source["packages"]} == CHOSEN
    for package in source["packages"]:
        deb = archive.root / package["filename"]
        assert package["sha256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
        assert package["size"] == deb.stat().st_size
        assert package["architecture"] == "amd64"
    assert source["image"].startswith("moby-asm.local/test-hello:deb-")
    assert source["digest"] is None


def test_lock_fetches_no_package(run, archive):
    result = run("lock")

    assert result.returncode == 0, explain(result)
    assert_not_cached(run.cache, *(deb.read_bytes() for deb in archive.debs.values()))


def test_build_writes_package_files(run):
    assert run("lock").returncode == 0

    result = run.build()

    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout)
    assert [item["how"] for item in report["built"]] == ["built"]
    assert run.locked_source()["digest"] == report["built"][0]["digest"]
    with tarfile.open(run.output / "debian-test.tar") as archive:
        assert archive.extractfile("usr/bin/hello").read() == HELLO.files["usr/bin/hello"]
        assert archive.extractfile("usr/lib/libgreet.so.1").read() == b"greet 1.2\n"
        assert archive.extractfile("usr/share/greet/words").read() == b"hello\nworld\n"
        assert "usr/bin/unrelated" not in archive.getnames()
    assert "maintainer scripts of libgreet were not run" in result.stderr


def test_rebuild_uses_cached_image(run):
    assert run("lock").returncode == 0
    first = run.build()

    second = run.build()

    assert second.returncode == 0, explain(second)
    assert [item["how"] for item in json.loads(second.stdout)["built"]] == ["cached"]
    assert json.loads(second.stdout)["outputs"] == json.loads(first.stdout)["outputs"]


def test_file_uri_mirror(run, archive):
    result = run("lock", mirror=archive.root.as_uri())

    assert result.returncode == 0, explain(result)
    assert {package["name"] for package in run.locked_source()["packages"]} == set(CHOSEN)


def test_offline_lock_uses_cached_indexes(run):
    assert run("lock").returncode == 0
    online = run.lock_path.read_text()
    run.lock_path.unlink()

    result = run("lock", "--offline")

    assert result.returncode == 0, explain(result)
    assert run.lock_path.read_text() == online


def test_offline_lock_without_cache(run, archive):
    result = run("lock", "--offline")

    assert_failed(result, 1, "no verified Release of suite 'bookworm'", archive.uri, "--offline")
    assert not run.lock_path.exists()


def test_tampered_package_rejected(run, archive, tmp_path):
    assert run("lock").returncode == 0
    locked = run.lock_path.read_bytes()
    (tmp_path / "forged").mkdir()
    forged = build_deb(DebSpec("hello", "1.0", {"usr/bin/hello": b"#!/bin/sh\nrm -rf /\n"}), tmp_path / "forged")
    archive.debs["hello"].write_bytes(forged.read_bytes())

    result = run.build()

    assert_failed(result, 1, f"{archive.uri}/pool/main/hello_1.0_amd64.deb", "does not match the SHA-256")
    assert run.lock_path.read_bytes() == locked
    assert not run.output.exists()
    assert_not_cached(run.cache, forged.read_bytes())


def test_tampered_package_next_mirror_used(run, archive, archive_server, tmp_path):
    copy = archive_server.root / f"{archive.root.name}-copy"
    shutil.copytree(archive.root, copy)
    second_uri = f"{archive_server.url}/{copy.name}"
    assert run("lock", "--debian-mirror", second_uri).returncode == 0
    forged = archive.debs["hello"].read_bytes() + b"appended by a compromised mirror"
    archive.debs["hello"].write_bytes(forged)

    result = run.build("--debian-mirror", second_uri)

    assert result.returncode == 0, explain(result)
    with tarfile.open(run.output / "debian-test.tar") as output:
        assert output.extractfile("usr/bin/hello").read() == HELLO.files["usr/bin/hello"]
    assert_not_cached(run.cache, forged)


def test_tampered_packages_index_rejected(run, archive):
    index = archive.packages_path.read_bytes()
    forged = index.replace(b"Depends: libgreet (>= 1.0)", b"Depends: unrelated")
    assert forged != index
    archive.write_packages(forged)

    result = run("lock")

    where = f"{archive.uri}/dists/bookworm/main/binary-amd64/Packages.xz"
    assert_failed(result, 1, where, "does not match the SHA-256 that the signed Release lists")
    assert not run.lock_path.exists()
    assert_not_cached(run.cache, forged, archive.packages_path.with_suffix(".xz").read_bytes())


def test_tampered_index_fails_build(run, archive):
    archive.write_packages(archive.packages_path.read_bytes().replace(b"Version: 1.2", b"Version: 1.3"))

    result = run.build()

    assert_failed(result, 1, f"{archive.uri}/dists/bookworm/main/binary-amd64/Packages.xz")
    assert not run.output.exists()
    assert not run.lock_path.exists()


def sign_with_stranger(archive: LocalArchive, keys) -> bytes:
    archive.sign(keys["stranger"])
    return archive.inrelease_path.read_bytes()


def edit_after_signing(archive: LocalArchive, keys) -> bytes:
    signed = archive.inrelease_path.read_bytes()
    edited = signed.replace(b"Origin: moby-asm tests", b"Origin: someone else")
    assert edited != signed
    archive.inrelease_path.write_bytes(edited)
    return edited


def inline_unsigned(archive: LocalArchive, keys) -> bytes:
    archive.inrelease_path.write_bytes(archive.release_path.read_bytes())
    return archive.release_path.read_bytes()


BAD_SIGNATURES = [
    pytest.param(sign_with_stranger, "none of the keyrings holds", id="signed-by-other-key-reason"),
    pytest.param(sign_with_stranger, "signature does not verify", id="signed-by-other-key"),
    pytest.param(edit_after_signing, "changed after signing", id="edited-after-signing"),
    pytest.param(inline_unsigned, "signature does not verify", id="unsigned-inrelease"),
]


@pytest.mark.parametrize(("corrupt", "reason"), BAD_SIGNATURES)
def test_bad_release_signature_rejected(run, archive, signing_keys, corrupt, reason):
    served = corrupt(archive, signing_keys)

    locked = run("lock")
    built = run.build()

    for result in (locked, built):
        assert_failed(result, 1, f"{archive.uri}/dists/bookworm/InRelease", "signature does not verify", reason,
                      str(run.keyring))
    assert not run.lock_path.exists()
    assert not run.output.exists()
    assert stored_releases(run.cache) == []
    assert_not_cached(run.cache, served, archive.packages_path.read_bytes())


def test_unsigned_archive_rejected(run, archive):
    archive.inrelease_path.unlink()

    result = run("lock")

    assert_failed(result, 1, f"{archive.uri}/dists/bookworm/Release", "the archive is not signed")
    assert not run.lock_path.exists()
    assert stored_releases(run.cache) == []
    assert_not_cached(run.cache, archive.release_path.read_bytes(), archive.packages_path.read_bytes())


def test_release_of_other_suite_not_cached(run, archive, signing_keys):
    archive.write_indexes(release_suite="trixie")
    archive.sign(signing_keys["archive"])

    result = run("lock")

    assert_failed(result, 1, f"{archive.uri}/dists/bookworm/InRelease", "suite 'trixie'", "not 'bookworm'")
    assert not run.lock_path.exists()
    assert_not_cached(run.cache, archive.inrelease_path.read_bytes())


def test_release_of_other_suite_rejected(run, archive, signing_keys):
    archive.write_indexes(release_suite="trixie")
    archive.sign(signing_keys["archive"])

    result = run("lock")

    assert_failed(result, 1, f"{archive.uri}/dists/bookworm/InRelease", "suite 'trixie'", "not 'bookworm'")
    assert not run.lock_path.exists()
    assert_not_cached(run.cache, archive.packages_path.read_bytes())


def test_other_suite_keeps_offline_lock(run, archive, signing_keys):
    assert run("lock").returncode == 0
    run.lock_path.unlink()
    archive.write_indexes(release_suite="trixie")
    archive.sign(signing_keys["archive"])
    assert run("lock").returncode == 1

    result = run("lock", "--offline")

    assert result.returncode == 0, explain(result)


def test_missing_dependency_names_parent(debian_cli, debian_project, local_archive, signing_keys, tmp_path):
    broken = DebSpec("hello", "1.0", {"usr/bin/hello": b"hello\n"}, depends="libgreet, libgone (>= 2)")
    local_archive.publish(signing_keys["archive"], broken, LIBGREET, GREET_DATA)
    run = Run(debian_cli, debian_project(SOURCES), local_archive, signing_keys["archive"].keyring, tmp_path / "cache")

    result = run("lock")

    assert_failed(result, 3, "hello 1.0 depends on libgone (>= 2)", local_archive.uri, "suite bookworm")
    assert not run.lock_path.exists()
    assert_not_cached(run.cache, *(deb.read_bytes() for deb in local_archive.debs.values()))


def test_missing_requested_package(debian_cli, debian_project, archive, signing_keys, tmp_path):
    project = debian_project({"test-ghost": {"suite": "bookworm", "packages": ["ghost"]}})
    run = Run(debian_cli, project, archive, signing_keys["archive"].keyring, tmp_path / "cache")

    result = run("lock")

    assert_failed(result, 3, "requested package ghost is not in", archive.uri)
    assert not run.lock_path.exists()


def test_unmatched_path_rejected(debian_cli, debian_project, archive, signing_keys, tmp_path):
    sources = {"test-hello": {**SOURCES["test-hello"], "paths": {"bin/hello": "usr/sbin/hello"}}}
    run = Run(debian_cli, debian_project(sources), archive, signing_keys["archive"].keyring, tmp_path / "cache")
    assert run("lock").returncode == 0
    locked = run.lock_path.read_bytes()

    result = run.build()

    assert_failed(result, 2, "'paths' target 'bin/hello'", "'usr/sbin/hello' matches nothing")
    assert run.lock_path.read_bytes() == locked
    assert not run.output.exists()


def test_paths_mapping_in_output(debian_cli, debian_project, archive, signing_keys, tmp_path):
    paths = {"bin/hello": "usr/bin/hello", "etc/greet.tar": "usr/share/greet"}
    sources = {"test-hello": {**SOURCES["test-hello"], "paths": paths}}
    run = Run(debian_cli, debian_project(sources), archive, signing_keys["archive"].keyring, tmp_path / "cache")
    assert run("lock").returncode == 0

    result = run.build()

    assert result.returncode == 0, explain(result)
    with tarfile.open(run.output / "debian-test.tar") as output:
        names = set(output.getnames())
        hello = output.extractfile("bin/hello").read()
        inner = tarfile.open(fileobj=io.BytesIO(output.extractfile("etc/greet.tar").read()))
    assert hello == HELLO.files["usr/bin/hello"]
    assert "usr/bin/hello" not in names
    assert "usr/share/greet/words" in inner.getnames()


def test_bad_mirror_uri_rejected(debian_cli, debian_project, tmp_path):
    project = debian_project(SOURCES)

    result = debian_cli("lock", project, "--debian-mirror", "ftp://127.0.0.1/debian", "--cache", tmp_path / "cache",
                  cwd=project)

    assert_failed(result, 2, "--debian-mirror 'ftp://127.0.0.1/debian' is not an archive URI")
    assert not (project / "assembly.lock").exists()


def test_suite_without_mirror_rejected(debian_cli, debian_project, tmp_path):
    # Without --debian-mirror the mirrors come from apt's sources, and none of them serves this suite.
    project = debian_project({"test-hello": {"suite": "no-such-suite", "packages": ["hello"]}})

    result = debian_cli("lock", project, "--cache", tmp_path / "cache", cwd=project)

    assert_failed(result, 2, "component 'test-hello' requests Debian suite 'no-such-suite'", "--debian-mirror")
    assert not (project / "assembly.lock").exists()
