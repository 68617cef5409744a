"""The content store on its own: verified blob writes, references, images, prune and locking."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import sys
import textwrap

import pytest

from moby_asm.store import (
    BlobNotFound,
    ContentStore,
    Descriptor,
    DigestMismatch,
    ImageNotFound,
    InvalidDigest,
    InvalidPlatform,
    StoreLocked,
)
from moby_asm.store.model import OCI_INDEX, OCI_MANIFEST

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def stored_files(store: ContentStore) -> list[str]:
    return sorted(path.name for path in (store.root / "blobs" / "sha256").iterdir())


def add_image(store: ContentStore, architecture: str, layers: list[bytes], variant: str | None = None) -> Descriptor:
    """Write a config, the layers and a manifest for one platform; return the manifest descriptor."""
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if variant:
        config["variant"] = variant
    config_descriptor = store.write_blob(json.dumps(config).encode(), media_type=CONFIG_TYPE)
    layer_descriptors = [store.write_blob(layer, media_type=LAYER_TYPE) for layer in layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_descriptor.to_dict(),
        "layers": [layer.to_dict() for layer in layer_descriptors],
    }
    return store.write_blob(json.dumps(manifest).encode(), media_type=OCI_MANIFEST)


def add_index(store: ContentStore, entries: list[tuple[Descriptor, dict]]) -> Descriptor:
    manifests = [{**descriptor.to_dict(), "platform": platform} for descriptor, platform in entries]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return store.write_blob(json.dumps(index).encode(), media_type=OCI_INDEX)


# Blobs


def test_write_blob_from_bytes(store):
    descriptor = store.write_blob(b"layer content")

    assert descriptor.digest == sha256(b"layer content")
    assert descriptor.size == len(b"layer content")
    assert store.blob_path(descriptor.digest).read_bytes() == b"layer content"
    assert store.has_blob(descriptor.digest)


def test_blob_file_read_only(store):
    descriptor = store.write_blob(b"layer content")

    mode = stat.S_IMODE(store.blob_path(descriptor.digest).stat().st_mode)

    assert mode == 0o444


def test_write_blob_from_stream_and_chunks(store):
    data = b"x" * (3 << 20)

    from_stream = store.write_blob(io.BytesIO(data), sha256(data), len(data))
    store.blob_path(from_stream.digest).chmod(0o644)
    store.blob_path(from_stream.digest).unlink()
    from_chunks = store.write_blob(iter([data[:10], data[10:]]), sha256(data), len(data))

    assert from_stream.digest == sha256(data)
    assert from_chunks.digest == sha256(data)
    assert store.read_blob(from_chunks.digest) == data


def test_digest_mismatch_stores_nothing(store):
    wrong = sha256(b"expected content")

    with pytest.raises(DigestMismatch) as caught:
        store.write_blob(b"other content", wrong)

    assert caught.value.expected == wrong
    assert caught.value.actual == sha256(b"other content")
    assert stored_files(store) == []


def test_size_mismatch_stores_nothing(store):
    data = b"twelve bytes"

    with pytest.raises(DigestMismatch) as too_long:
        store.write_blob(data, sha256(data), 5)
    with pytest.raises(DigestMismatch) as too_short:
        store.write_blob(data, sha256(data), 20)

    assert too_long.value.expected_size == 5
    assert too_short.value.actual_size == 12
    assert stored_files(store) == []


def test_interrupted_write_stores_nothing(store):
    def broken_stream():
        yield b"first chunk"
        raise ConnectionResetError("connection lost")

    with pytest.raises(ConnectionResetError):
        store.write_blob(broken_stream(), sha256(b"first chunk and more"))

    assert stored_files(store) == []


def test_present_blob_is_not_read_again(store):
    descriptor = store.write_blob(b"content")

    def unreadable():
        raise AssertionError("the data was read although the blob is stored")
        yield b""

    again = store.write_blob(unreadable(), descriptor.digest, descriptor.size)

    assert again.digest == descriptor.digest


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha512:" + "0" * 128, "sha256:" + "A" * 64, ""])
def test_invalid_digest_rejected(store, digest):
    with pytest.raises(InvalidDigest):
        store.has_blob(digest)


def test_missing_blob_raises(store):
    with pytest.raises(BlobNotFound) as caught:
        store.blob_path(sha256(b"never stored"))

    assert caught.value.digest == sha256(b"never stored")


def test_verify_blob_removes_changed_file(store):
    descriptor = store.write_blob(b"original")
    path = store.blob_path(descriptor.digest)
    path.chmod(0o644)
    path.write_bytes(b"changed!")

    with pytest.raises(DigestMismatch):
        store.verify_blob(descriptor.digest)

    assert not store.has_blob(descriptor.digest)


# References


def test_tag_and_resolve(store):
    manifest = add_image(store, "amd64", [b"layer"])

    store.tag("127.0.0.1:5000/app:v1", manifest)

    resolved = store.resolve("127.0.0.1:5000/app:v1")
    assert resolved.digest == manifest.digest
    assert resolved.media_type == OCI_MANIFEST
    assert store.resolve("127.0.0.1:5000/app:v2") is None


def test_tag_replaces_previous_descriptor(store):
    first = add_image(store, "amd64", [b"one"])
    second = add_image(store, "amd64", [b"two"])

    store.tag("app:v1", first)
    store.tag("app:v1", second)

    assert [(name, d.digest) for name, d in store.iter_images()] == [("app:v1", second.digest)]


def test_tag_needs_stored_blob(store):
    missing = Descriptor(OCI_MANIFEST, sha256(b"absent"), 6)

    with pytest.raises(BlobNotFound):
        store.tag("app:v1", missing)


def test_iter_images_sorted(store):
    manifest = add_image(store, "amd64", [b"layer"])
    for name in ("zeta:1", "alpha:1", "mid:1"):
        store.tag(name, manifest)

    assert [name for name, _ in store.iter_images()] == ["alpha:1", "mid:1", "zeta:1"]


def test_untag(store):
    manifest = add_image(store, "amd64", [b"layer"])
    store.tag("app:v1", manifest)

    assert store.untag("app:v1") is True
    assert store.untag("app:v1") is False
    assert store.resolve("app:v1") is None


def test_index_json_deterministic(tmp_path):
    names = ["b:1", "a:1", "c:1"]
    contents = []
    for order, folder in ((names, "first"), (list(reversed(names)), "second")):
        store = ContentStore.open(tmp_path / folder)
        manifest = add_image(store, "amd64", [b"layer"])
        for name in order:
            store.tag(name, manifest)
        contents.append((store.root / "index.json").read_bytes())

    assert contents[0] == contents[1]
    assert json.loads(contents[0])["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "a:1"


def test_layout_files(store):
    layout = json.loads((store.root / "oci-layout").read_text())
    index = json.loads((store.root / "index.json").read_text())

    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert index == {"manifests": [], "mediaType": OCI_INDEX, "schemaVersion": 2}


def test_open_uses_cache_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBY_ASM_CACHE_DIR", str(tmp_path / "cache"))

    store = ContentStore.open()

    assert store.root == tmp_path / "cache" / "store"
    assert (store.root / "oci-layout").is_file()


# Images


def test_image_from_manifest(store):
    manifest = add_image(store, "amd64", [b"bottom", b"top"])
    store.tag("app:v1", manifest)

    image = store.image("app:v1", "linux/amd64")

    assert image.manifest.digest == manifest.digest
    assert image.config["config"]["Entrypoint"] == ["/bin/sh"]
    assert [layer.digest for layer in image.layers] == [sha256(b"bottom"), sha256(b"top")]
    assert image.layers[0].media_type == LAYER_TYPE


def test_image_wrong_platform(store):
    store.tag("app:v1", add_image(store, "amd64", [b"layer"]))

    with pytest.raises(ImageNotFound) as caught:
        store.image("app:v1", "linux/arm64")

    assert "linux/amd64" in str(caught.value)
    assert caught.value.platform == "linux/arm64"


def test_image_from_index_selects_platform(store):
    amd64 = add_image(store, "amd64", [b"amd64 layer"])
    arm64 = add_image(store, "arm64", [b"arm64 layer"], variant="v8")
    index = add_index(
        store,
        [
            (amd64, {"os": "linux", "architecture": "amd64"}),
            (arm64, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ],
    )
    store.tag("app:v1", index)

    for platform in ("linux/arm64", "linux/arm64/v8", "linux/aarch64"):
        assert store.image("app:v1", platform).manifest.digest == arm64.digest
    assert store.image("app:v1", "linux/amd64").manifest.digest == amd64.digest


def test_image_index_platform_missing(store):
    amd64 = add_image(store, "amd64", [b"amd64 layer"])
    index = add_index(store, [(amd64, {"os": "linux", "architecture": "amd64"})])
    store.tag("app:v1", index)

    with pytest.raises(ImageNotFound) as caught:
        store.image("app:v1", "linux/s390x")

    assert "offers linux/amd64" in caught.value.reason


def test_image_index_manifest_not_stored(store):
    amd64 = add_image(store, "amd64", [b"amd64 layer"])
    absent = Descriptor(OCI_MANIFEST, sha256(b"arm64 manifest never pulled"), 27)
    index = add_index(
        store, [(amd64, {"os": "linux", "architecture": "amd64"}), (absent, {"os": "linux", "architecture": "arm64"})]
    )
    store.tag("app:v1", index)

    with pytest.raises(ImageNotFound) as caught:
        store.image("app:v1", "linux/arm64")

    assert absent.digest in caught.value.reason


def test_image_unknown_reference(store):
    with pytest.raises(ImageNotFound):
        store.image("app:v1", "linux/amd64")


def test_image_invalid_platform(store):
    store.tag("app:v1", add_image(store, "amd64", [b"layer"]))

    with pytest.raises(InvalidPlatform):
        store.image("app:v1", "amd64")


# Prune and disk usage


def test_prune_keeps_shared_blobs(store):
    shared = b"shared base layer"
    first = add_image(store, "amd64", [shared, b"first only"])
    second = add_image(store, "arm64", [shared, b"second only"])
    store.tag("first:1", first)
    store.tag("second:1", second)

    result = store.prune(keep={"first:1"})

    assert result.removed_references == ["second:1"]
    assert result.removed_blobs == 3  # the second manifest, its config and its own layer
    assert store.has_blob(sha256(shared))
    assert not store.has_blob(sha256(b"second only"))
    assert store.image("first:1", "linux/amd64").manifest.digest == first.digest


def test_prune_without_keep_removes_unreferenced(store):
    store.tag("app:1", add_image(store, "amd64", [b"kept layer"]))
    orphan = store.write_blob(b"left by a failed pull")
    leftover = store.root / "blobs" / "sha256" / ".tmp-interrupted"
    leftover.write_bytes(b"partial")

    result = store.prune()

    assert result.removed_references == []
    assert result.removed_blobs == 2
    assert result.freed_bytes == len(b"left by a failed pull") + len(b"partial")
    assert not store.has_blob(orphan.digest)
    assert not leftover.exists()
    assert store.has_blob(sha256(b"kept layer"))


def test_disk_usage(store):
    manifest = add_image(store, "amd64", [b"layer one"])
    store.tag("app:1", manifest)
    orphan = store.write_blob(b"orphan")

    usage = store.disk_usage()

    total = sum(path.stat().st_size for path in (store.root / "blobs" / "sha256").iterdir())
    assert usage.images == 1
    assert usage.blobs == 4
    assert usage.total_bytes == total
    assert usage.reclaimable_bytes == orphan.size


def test_prune_waits_for_writers(tmp_path):
    writer = ContentStore.open(tmp_path / "store")
    pruner = ContentStore(tmp_path / "store", lock_timeout=0.2)

    with writer.adding_content():
        with pytest.raises(StoreLocked) as caught:
            pruner.prune()

    assert caught.value.timeout == 0.2
    assert pruner.prune().removed_blobs == 0


# Concurrency


TAG_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from moby_asm.store import ContentStore

    store = ContentStore.open(Path(sys.argv[1]))
    manifest = store.write_blob(b"shared manifest", media_type="application/vnd.oci.image.manifest.v1+json")
    for number in range(int(sys.argv[3])):
        store.tag(f"app-{sys.argv[2]}:{number}", manifest)
    """
)


def test_concurrent_tagging_keeps_every_reference(tmp_path):
    workers, count = 4, 40
    root = tmp_path / "store"

    processes = [
        subprocess.Popen([sys.executable, "-c", TAG_SCRIPT, str(root), str(worker), str(count)], stderr=subprocess.PIPE)
        for worker in range(workers)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]

    store = ContentStore.open(root)
    assert [process.returncode for process in processes] == [0] * workers, errors
    assert len(list(store.iter_images())) == workers * count
    assert [name for name in stored_files(store) if name.startswith(".")] == []


def test_prune_removes_abandoned_staging_folders(store):
    from moby_asm.store.content import STAGING_PREFIX

    staging = store.root / f"{STAGING_PREFIX}left-by-kill"
    staging.mkdir()
    (staging / "image.tar").write_bytes(b"x" * 1000)

    result = store.prune()

    assert not staging.exists()
    assert result.freed_bytes == 1000
