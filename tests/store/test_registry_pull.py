"""Pulls from a real registry on 127.0.0.1: tags, digests, platforms, caching, corruption and concurrency."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import fixtures_registry
import pytest

from moby_asm.registry import ImageNotFound, InvalidReference, RegistryClient
from moby_asm.store import ContentStore, DigestMismatch, InvalidPlatform
from moby_asm.store.model import DOCKER_MANIFEST, OCI_INDEX

from .conftest import LABEL_CONFIG


def via(proxy, reference: str) -> str:
    """Return `reference` with its registry host replaced by the proxy's."""
    return proxy.host + reference[reference.index("/") :]


def blob_files_intact(store: ContentStore) -> list[str]:
    """Return the names of blob files whose content does not match their name (none when intact)."""
    broken = []
    for path in (store.root / "blobs" / "sha256").iterdir():
        if path.name.startswith(".") or hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            broken.append(path.name)
    return broken


def test_pull_by_tag(client, store, busybox_image, registry):
    image = client.pull(busybox_image, "linux/amd64", store)

    expected = fixtures_registry.manifest_digest(registry.url, "test/busybox", "v1")
    labels = image.config["config"]["Labels"]
    assert image.manifest.digest == expected
    assert store.resolve(busybox_image).digest == expected
    assert image.config["config"]["Entrypoint"] == ["/bin/sh"]
    assert json.loads(labels["org.mobyproject.config"]) == LABEL_CONFIG
    assert len(image.layers) == 1
    assert store.has_blob(image.layers[0].digest)
    assert blob_files_intact(store) == []


def test_pull_by_digest(client, store, busybox_image, registry):
    digest = fixtures_registry.manifest_digest(registry.url, "test/busybox", "v1")
    pinned = f"{registry.host}/test/busybox@{digest}"

    image = client.pull(pinned, "linux/amd64", store)

    assert image.manifest.digest == digest
    assert image.reference == pinned
    assert store.resolve(pinned).digest == digest


def test_resolve_returns_manifest_digest(client, busybox_image, registry):
    descriptor = client.resolve(busybox_image)

    assert descriptor.digest == fixtures_registry.manifest_digest(registry.url, "test/busybox", "v1")


def test_pull_docker_media_types(client, store, docker_image):
    image = client.pull(docker_image, "linux/amd64", store)

    assert image.manifest.media_type == DOCKER_MANIFEST
    assert image.layers[0].media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert image.config["architecture"] == "amd64"


def test_pull_selects_platform_from_index(client, store, multiplatform_image, registry):
    index = json.loads(fixtures_registry.fetch_manifest(registry.url, "test/multi", "v1")[0])
    by_architecture = {entry["platform"]["architecture"]: entry["digest"] for entry in index["manifests"]}

    image = client.pull(multiplatform_image, "linux/arm64", store)

    assert image.manifest.digest == by_architecture["arm64"]
    assert image.manifest.platform["variant"] == "v8"
    assert image.config["architecture"] == "arm64"
    assert store.resolve(multiplatform_image).media_type == OCI_INDEX
    assert not store.has_blob(by_architecture["amd64"])


def test_pull_second_platform_keeps_first(client, store, multiplatform_image):
    arm64 = client.pull(multiplatform_image, "linux/arm64/v8", store)
    amd64 = client.pull(multiplatform_image, "linux/amd64", store)

    assert store.image(multiplatform_image, "linux/arm64").manifest.digest == arm64.manifest.digest
    assert store.image(multiplatform_image, "linux/amd64").manifest.digest == amd64.manifest.digest
    assert arm64.layers != amd64.layers


def test_pull_platform_not_in_index(client, store, multiplatform_image):
    with pytest.raises(ImageNotFound) as caught:
        client.pull(multiplatform_image, "linux/s390x", store)

    assert caught.value.platform == "linux/s390x"
    assert "linux/amd64, linux/arm64/v8" in caught.value.reason
    assert store.resolve(multiplatform_image) is None


def test_pull_platform_of_single_image(client, store, busybox_image):
    with pytest.raises(ImageNotFound) as caught:
        client.pull(busybox_image, "linux/arm64", store)

    assert "linux/amd64" in caught.value.reason


def test_pull_rejects_invalid_input(client, store):
    with pytest.raises(InvalidReference):
        client.pull("127.0.0.1:1/Bad/Name:v1", "linux/amd64", store)
    with pytest.raises(InvalidPlatform):
        client.pull("127.0.0.1:1/test/busybox:v1", "linux", store)


def test_unknown_tag_not_found(client, store, busybox_image, registry):
    reference = f"{registry.host}/test/busybox:no-such-tag"

    with pytest.raises(ImageNotFound) as caught:
        client.pull(reference, "linux/amd64", store)

    assert caught.value.reference == reference
    assert caught.value.host == registry.host
    assert "MANIFEST_UNKNOWN" in str(caught.value)


def test_unknown_repository_not_found(client, store, registry):
    with pytest.raises(ImageNotFound) as caught:
        client.pull(f"{registry.host}/test/absent:v1", "linux/amd64", store)

    assert caught.value.host == registry.host


# Requests and caching


def test_second_pull_requests_no_blob(client, store, proxy, busybox_image):
    reference = via(proxy, busybox_image)
    client.pull(reference, "linux/amd64", store)
    first_blobs = proxy.paths("blobs")
    proxy.clear()

    RegistryClient(docker_config=client.docker_config).pull(reference, "linux/amd64", store)

    assert len(first_blobs) == 2  # config and the one layer
    assert proxy.paths("blobs") == []
    assert len(proxy.paths("manifests")) == 1


def test_pinned_pull_in_store_needs_no_network(client, store, proxy, busybox_image, registry):
    digest = fixtures_registry.manifest_digest(registry.url, "test/busybox", "v1")
    pinned = f"{proxy.host}/test/busybox@{digest}"
    client.pull(pinned, "linux/amd64", store)
    proxy.clear()
    proxy.stop()

    image = RegistryClient(docker_config=client.docker_config, retries=0).pull(pinned, "linux/amd64", store)

    assert image.manifest.digest == digest
    assert proxy.requests == []


def test_pinned_digest_blob_reused_under_new_name(client, store, proxy, busybox_image, registry):
    client.pull(via(proxy, busybox_image), "linux/amd64", store)
    digest = store.resolve(via(proxy, busybox_image)).digest
    proxy.clear()

    pinned = f"{proxy.host}/test/busybox@{digest}"
    client.pull(pinned, "linux/amd64", store)

    assert proxy.requests == []
    assert store.resolve(pinned).digest == digest


def test_progress_reports_each_blob(client, store, busybox_image):
    calls = []

    image = client.pull(busybox_image, "linux/amd64", store, progress=lambda *call: calls.append(call))

    layer = image.layers[0]
    layer_calls = [(done, total) for digest, done, total in calls if digest == layer.digest]
    assert layer_calls[0] == (0, layer.size)
    assert layer_calls[-1] == (layer.size, layer.size)
    assert [done for done, _ in layer_calls] == sorted(done for done, _ in layer_calls)


def test_progress_for_stored_blob(client, store, busybox_image):
    client.pull(busybox_image, "linux/amd64", store)
    calls = []

    image = client.pull(busybox_image, "linux/amd64", store, progress=lambda *call: calls.append(call))

    layer = image.layers[0]
    assert (layer.digest, layer.size, layer.size) in calls


# Verification


def test_corrupted_registry_blob(client, store, registry):
    reference = fixtures_registry.make_busybox_image(registry.url, "test/corrupted", "v1")
    manifest = json.loads(fixtures_registry.fetch_manifest(registry.url, "test/corrupted", "v1")[0])
    layer = manifest["layers"][0]["digest"]
    data_file = registry.blob_file(layer)
    content = bytearray(data_file.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data_file.write_bytes(bytes(content))

    with pytest.raises(DigestMismatch) as caught:
        client.pull(reference, "linux/amd64", store)

    assert caught.value.expected == layer
    assert caught.value.reference == reference
    assert caught.value.host == registry.host
    assert not store.has_blob(layer)
    assert store.resolve(reference) is None
    assert [path.name for path in (store.root / "blobs" / "sha256").iterdir() if path.name.startswith(".")] == []
    assert blob_files_intact(store) == []


def test_pinned_manifest_digest_verified(client, store, proxy, busybox_image, registry):
    digest = fixtures_registry.manifest_digest(registry.url, "test/busybox", "v1")
    proxy.rewrite = lambda path, body: body + b"\n" if "/manifests/" in path else body

    with pytest.raises(DigestMismatch) as caught:
        client.pull(f"{proxy.host}/test/busybox@{digest}", "linux/amd64", store)

    assert caught.value.expected == digest
    assert caught.value.host == proxy.host
    assert list(store.iter_images()) == []


# Concurrency

PULL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from moby_asm.registry import RegistryClient
    from moby_asm.store import ContentStore

    store = ContentStore.open(Path(sys.argv[1]))
    image = RegistryClient(docker_config=Path(sys.argv[3])).pull(sys.argv[2], "linux/amd64", store)
    print(image.manifest.digest)
    """
)


def test_concurrent_pulls_from_two_processes(tmp_path, registry, docker_config):
    reference = fixtures_registry.make_busybox_image(registry.url, "test/concurrent", "v1")
    root = tmp_path / "shared-store"
    command = [sys.executable, "-c", PULL_SCRIPT, str(root), reference, str(docker_config)]

    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [process.communicate(timeout=120) for process in processes]

    store = ContentStore.open(root)
    expected = fixtures_registry.manifest_digest(registry.url, "test/concurrent", "v1")
    assert [process.returncode for process in processes] == [0, 0], results
    assert [stdout.strip() for stdout, _ in results] == [expected, expected]
    assert [name for name, _ in store.iter_images()] == [reference]
    assert len(list((root / "blobs" / "sha256").iterdir())) == 3  # manifest, config, layer
    assert blob_files_intact(store) == []
    assert store.image(reference, "linux/amd64").manifest.digest == expected
