"""Templates as OCI artifacts: publish, pull and list against a real registry on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fixtures_registry
import pytest
from conftest import run_cli as cli_run

from moby_asm.errors import InputError
from moby_asm.store.errors import DigestMismatch
from moby_asm.templates.artifacts import (
    EMPTY_CONFIG,
    EMPTY_CONFIG_BYTES,
    MAX_ENTRIES,
    MAX_UNPACKED_BYTES,
    TEMPLATE_ARTIFACT_TYPE,
    TEMPLATE_LAYER_TYPE,
    NotATemplate,
    UnsafeArchive,
    UnsafeTemplateArchive,
    list_templates,
    publish_template,
    pull_template,
    template_metadata,
    unpack_template,
)

TITLE = "org.opencontainers.image.title"
VERSION = "org.opencontainers.image.version"
DESCRIPTION = "org.opencontainers.image.description"
SOURCE = "org.opencontainers.image.source"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))



@pytest.fixture(scope="module", autouse=True)
def isolated_environment(tmp_path_factory) -> Iterator[None]:
    """Keep requests to 127.0.0.1 off any proxy and read no Docker config of the user."""
    with pytest.MonkeyPatch.context() as patch:
        fixtures_registry.isolate_registry_access(patch, tmp_path_factory.mktemp("docker-config"))
        yield


def write_template(folder: Path, template: dict | None = None) -> Path:
    """Write a small cookiecutter template with an executable script, a nested folder and a symlink."""
    project = folder / "{{cookiecutter.project_name}}"
    (project / "config").mkdir(parents=True)
    questions = {"project_name": "demo"}
    if template is not None:
        questions["_moby_asm"] = template
    (folder / "cookiecutter.json").write_text(json.dumps(questions))
    (project / "assembly.yml").write_text("name: {{cookiecutter.project_name}}\n")
    (project / "start.sh").write_text("#!/bin/sh\necho start\n")
    (project / "start.sh").chmod(0o755)
    (project / "config" / "secret.txt").write_text("kept private\n")
    (project / "config" / "secret.txt").chmod(0o600)
    (project / "run").symlink_to("start.sh")
    return folder


def tree(folder: Path) -> dict[str, tuple]:
    """Return each path under `folder` with its kind, permission bits and content or link target."""
    result = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            result[name] = ("link", os.readlink(path))
        elif path.is_dir():
            result[name] = ("folder", path.stat().st_mode & 0o777)
        else:
            result[name] = ("file", path.stat().st_mode & 0o777, path.read_bytes())
    return result


def push_layer(registry: fixtures_registry.RunningRegistry, repository: str, tag: str, layer: bytes) -> str:
    """Push a template manifest with `layer` by plain HTTP requests; return oci://HOST/REPOSITORY:TAG."""
    for content in (EMPTY_CONFIG_BYTES, layer):
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        start = urllib.request.Request(f"{registry.url}/v2/{repository}/blobs/uploads/", method="POST")
        with _DIRECT.open(start, timeout=10) as response:
            location = response.headers["Location"]
        separator = "&" if "?" in location else "?"
        upload = urllib.request.Request(f"{location}{separator}digest={digest}", data=content, method="PUT",
                                        headers={"Content-Type": "application/octet-stream"})
        _DIRECT.open(upload, timeout=10).close()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": TEMPLATE_ARTIFACT_TYPE,
        "config": EMPTY_CONFIG,
        "layers": [{"mediaType": TEMPLATE_LAYER_TYPE, "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer)}],
    }
    request = urllib.request.Request(f"{registry.url}/v2/{repository}/manifests/{tag}", method="PUT",
                                     data=json.dumps(manifest).encode(),
                                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    _DIRECT.open(request, timeout=10).close()
    return f"oci://{registry.host}/{repository}:{tag}"


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as output:
        for info, content in members:
            output.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, content: bytes = b"x", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(content)
        return info, content
    return info, None


# Metadata


def test_metadata_reads_template_object(tmp_path):
    folder = write_template(tmp_path / "node", {"name": "node", "version": "1.2.0", "description": "A node",
                                                "source": "https://example.invalid/node"})

    metadata = template_metadata(folder)

    assert metadata == {"name": "node", "version": "1.2.0", "description": "A node",
                        "source": "https://example.invalid/node"}


def test_publish_without_version_is_rejected(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"description": "no version"})

    with pytest.raises(InputError) as raised:
        publish_template(folder, f"oci://{registry.host}/team/noversion:1")

    assert "cookiecutter.json" in str(raised.value)
    assert '"_moby_asm": {"version": "1.0.0"}' in str(raised.value)


def test_publish_without_cookiecutter_json_is_rejected(tmp_path, registry):
    (tmp_path / "plain").mkdir()

    with pytest.raises(InputError, match="not a cookiecutter template"):
        publish_template(tmp_path / "plain", f"{registry.host}/team/plain:1")


def test_publish_rejects_link_leaving_folder(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0"})
    (folder / "passwords").symlink_to("/etc/passwd")

    with pytest.raises(InputError) as raised:
        publish_template(folder, f"{registry.host}/team/links:1")

    assert "passwords" in str(raised.value)


# Publish and pull


def test_round_trip_keeps_bytes_and_modes(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0", "description": "A node"})

    published = publish_template(folder, f"oci://{registry.host}/team/node:1.0.0")
    pulled = pull_template(f"oci://{registry.host}/team/node:1.0.0", tmp_path / "copy")

    assert tree(tmp_path / "copy") == tree(folder)
    assert pulled.digest == published.digest
    assert pulled.reference == f"{registry.host}/team/node:1.0.0"
    assert pulled.annotations[VERSION] == "1.0.0"
    assert pulled.annotations[TITLE] == "node"
    assert pulled.annotations[DESCRIPTION] == "A node"
    assert published.digest == fixtures_registry.manifest_digest(registry.url, "team/node", "1.0.0")


def test_pull_by_digest(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0"})
    published = publish_template(folder, f"{registry.host}/team/pinned:1.0.0")

    pulled = pull_template(f"{registry.host}/team/pinned@{published.digest}", tmp_path / "copy")

    assert pulled.digest == published.digest
    assert tree(tmp_path / "copy") == tree(folder)


def test_publish_twice_gives_same_digest(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0"})
    first = publish_template(folder, f"{registry.host}/team/stable:a")
    for path in folder.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)

    second = publish_template(folder, f"{registry.host}/team/stable:b")

    assert second.digest == first.digest


def test_manifest_is_oci_artifact(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "2.0.0"})
    publish_template(folder, f"{registry.host}/team/shape:2")

    raw, _ = fixtures_registry.fetch_manifest(registry.url, "team/shape", "2")
    manifest = json.loads(raw)

    assert manifest["artifactType"] == TEMPLATE_ARTIFACT_TYPE
    assert manifest["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}
    assert [layer["mediaType"] for layer in manifest["layers"]] == [TEMPLATE_LAYER_TYPE]
    assert "org.opencontainers.image.created" not in manifest["annotations"]


def test_list_shows_templates_with_annotations(tmp_path, registry):
    folder = write_template(tmp_path / "web", {"name": "web", "version": "1.0.0", "description": "Web node"})
    publish_template(folder, f"{registry.host}/team/web:1.0.0")
    (folder / "cookiecutter.json").write_text(json.dumps({"_moby_asm": {"name": "web", "version": "1.1.0"}}))
    publish_template(folder, f"{registry.host}/team/web:1.1.0")
    fixtures_registry.make_busybox_image(registry.url, "team/web", "image")

    listed = list_templates(f"oci://{registry.host}/team/web")

    assert [tag for tag, _ in listed] == ["1.0.0", "1.1.0"]
    assert [artifact.annotations[VERSION] for _, artifact in listed] == ["1.0.0", "1.1.0"]
    assert listed[0][1].annotations[DESCRIPTION] == "Web node"
    assert listed[0][1].reference == f"{registry.host}/team/web:1.0.0"


def test_list_rejects_tagged_repository(registry):
    with pytest.raises(InputError, match="without a tag"):
        list_templates(f"oci://{registry.host}/team/web:1.0.0")


def test_pull_rejects_container_image(tmp_path, registry):
    image = fixtures_registry.make_busybox_image(registry.url, "team/busybox", "v1")

    with pytest.raises(NotATemplate) as raised:
        pull_template(f"oci://{image}", tmp_path / "copy")

    assert str(raised.value).startswith(f"{image} is not a moby-asm template (artifact type ")
    assert "application/vnd.oci.image.config.v1+json" in str(raised.value)
    assert not (tmp_path / "copy").exists()


def test_pull_detects_altered_blob(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0"})
    published = publish_template(folder, f"{registry.host}/team/altered:1")
    raw, _ = fixtures_registry.fetch_manifest(registry.url, "team/altered", "1")
    layer_digest = json.loads(raw)["layers"][0]["digest"]
    blob = registry.blob_file(layer_digest)
    content = bytearray(blob.read_bytes())
    content[len(content) // 2] ^= 0xFF
    blob.write_bytes(bytes(content))
    target = tmp_path / "pulled"
    target.mkdir()

    with pytest.raises(DigestMismatch) as raised:
        pull_template(f"{registry.host}/team/altered:1", target / "copy")

    assert f"{registry.host}/team/altered:1" in str(raised.value)
    assert layer_digest in str(raised.value)
    assert published.digest != layer_digest
    assert list(target.iterdir()) == []


def test_pull_into_existing_folder_is_rejected(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "1.0.0"})
    publish_template(folder, f"{registry.host}/team/exists:1")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "mine.txt").write_text("keep")

    with pytest.raises(InputError, match="already exists"):
        pull_template(f"{registry.host}/team/exists:1", tmp_path / "copy")

    assert [path.name for path in (tmp_path / "copy").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("tag", "member", "named"),
    [
        ("parent", entry("../escape"), "../escape"),
        ("absolute", entry("/tmp/absolute-escape"), "/tmp/absolute-escape"),
        ("etc-link", entry("etc", tarfile.SYMTYPE, link="/etc"), "'etc' -> '/etc'"),
    ],
)
def test_pull_rejects_hostile_layer(tmp_path, registry, tag, member, named):
    layer = archive(entry("cookiecutter.json", content=b"{}"), member)
    reference = push_layer(registry, "team/hostile", tag, layer)
    target = tmp_path / "pulled"
    target.mkdir()

    with pytest.raises(UnsafeTemplateArchive) as raised:
        pull_template(reference, target / "copy")

    assert named in str(raised.value)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "escape").exists()


# Unpacking without a registry


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([entry("null", tarfile.CHRTYPE)], "character device"),
        ([entry("a"), entry("b", tarfile.LNKTYPE, link="a")], "hard link"),
        ([entry("up", tarfile.SYMTYPE, link="../outside")], "outside"),
        ([entry("d1/d2/l1", tarfile.SYMTYPE, link="../.."), entry("l2", tarfile.SYMTYPE, link="d1/d2/l1/..")],
         "outside the template"),
        ([entry("a"), entry("a")], "appears twice"),
    ],
)
def test_unpack_rejects_unsafe_entry(tmp_path, members, reason):
    with pytest.raises(UnsafeArchive, match=reason):
        unpack_template(io.BytesIO(archive(*members)), tmp_path / "copy")

    assert list(tmp_path.iterdir()) == []


def test_unpack_rejects_too_many_entries(tmp_path):
    members = [entry(f"file-{number}") for number in range(MAX_ENTRIES + 1)]

    with pytest.raises(UnsafeArchive, match="more than 10000 entries"):
        unpack_template(io.BytesIO(archive(*members)), tmp_path / "copy")

    assert list(tmp_path.iterdir()) == []


def test_unpack_rejects_too_many_bytes(tmp_path):
    big = tarfile.TarInfo("big")
    big.size = MAX_UNPACKED_BYTES + 1
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as output:
        output.addfile(big, io.BytesIO(bytes(big.size)))

    with pytest.raises(UnsafeArchive, match="more than 104857600 bytes"):
        unpack_template(io.BytesIO(buffer.getvalue()), tmp_path / "copy")

    assert list(tmp_path.iterdir()) == []


def test_unpack_rejects_corrupt_archive(tmp_path):
    with pytest.raises(UnsafeArchive, match="not a valid tar"):
        unpack_template(io.BytesIO(b"not gzip at all"), tmp_path / "copy")

    assert list(tmp_path.iterdir()) == []


# Command line


def test_cli_publish_pull_and_list(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"version": "3.0.0", "description": "CLI node"})
    reference = f"oci://{registry.host}/team/cli-node:3.0.0"

    published = cli_run("publish", "template", folder, reference, "--json", cwd=tmp_path)
    pulled = cli_run("pull", reference, cwd=tmp_path)
    listed = cli_run("template", "list", f"oci://{registry.host}/team/cli-node", cwd=tmp_path)

    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["annotations"][VERSION] == "3.0.0"
    assert pulled.returncode == 0, pulled.stderr
    assert tree(tmp_path / "cli-node") == tree(folder)
    assert listed.returncode == 0, listed.stderr
    assert "3.0.0" in listed.stdout
    assert "CLI node" in listed.stdout
    assert json.loads(published.stdout)["digest"] in listed.stdout


def test_cli_exit_codes_for_failures(tmp_path, registry):
    folder = write_template(tmp_path / "node", {"description": "no version"})
    image = fixtures_registry.make_busybox_image(registry.url, "team/cli-image", "v1")
    (tmp_path / "taken").mkdir()

    no_version = cli_run("publish", "template", folder, f"oci://{registry.host}/team/cli-bad:1", cwd=tmp_path)
    not_template = cli_run("pull", f"oci://{image}", "-o", tmp_path / "image", cwd=tmp_path)
    taken = cli_run("pull", f"oci://{image}", "-o", tmp_path / "taken", cwd=tmp_path)
    missing = cli_run("template", "list", f"oci://{registry.host}/team/no-such-repository", cwd=tmp_path)

    assert no_version.returncode == 2, no_version.stderr
    assert "cookiecutter.json" in no_version.stderr
    assert not_template.returncode == 1, not_template.stderr
    assert "is not a moby-asm template" in not_template.stderr
    assert taken.returncode == 2, taken.stderr
    assert missing.returncode == 1, missing.stderr
