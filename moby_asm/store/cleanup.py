"""Reachability of blobs from references, and the prune and disk usage built on it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from moby_asm.store.images import index_entries, manifest_parts
from moby_asm.store.model import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, Descriptor, DiskUsage, PruneResult

if TYPE_CHECKING:
    from moby_asm.store.content import ContentStore

logger = logging.getLogger(__name__)


def reachable_blobs(store: ContentStore, roots: Iterable[Descriptor]) -> set[str]:
    """Return the digests of `roots` and of every blob their indexes and manifests refer to.

    Children that are not stored (index entries for platforms never pulled) are counted as
    reachable but not read. A stored manifest that cannot be parsed keeps only itself.
    """
    reachable: set[str] = set()
    pending = list(roots)
    while pending:
        descriptor = pending.pop()
        if descriptor.digest in reachable:
            continue
        reachable.add(descriptor.digest)
        if store.has_blob(descriptor.digest):
            pending.extend(_children(store, descriptor))
    return reachable


def _children(store: ContentStore, descriptor: Descriptor) -> list[Descriptor]:
    try:
        if descriptor.media_type in INDEX_MEDIA_TYPES:
            return index_entries(store.read_json(descriptor.digest))
        if descriptor.media_type in MANIFEST_MEDIA_TYPES:
            config, layers = manifest_parts(store.read_json(descriptor.digest))
            return [config, *layers]
    except ValueError as error:
        logger.warning("cannot read the children of %s: %s", descriptor.digest, error)
    return []


def prune(store: ContentStore, keep: set[str] | None) -> PruneResult:
    """Untag the references not in `keep` (none when None), then delete blobs that no reference reaches.

    Temporary files in blobs/sha256 and staging folders are deleted too: the exclusive
    content lock proves that no write is in progress, so interrupted processes left them.
    """
    with store.removing_content():
        removed = [name for name, _ in store.iter_images() if keep is not None and name not in keep]
        for name in removed:
            store.untag(name)
        reachable = reachable_blobs(store, store.index_descriptors())
        count, freed = 0, 0
        for path in store.iter_blob_files():
            if f"sha256:{path.name}" in reachable:
                continue
            freed += path.stat().st_size
            count += 1
            path.unlink()
        freed += _remove_staging(store)
    logger.debug("pruned %d references and %d blobs (%d bytes)", len(removed), count, freed)
    return PruneResult(removed_references=removed, removed_blobs=count, freed_bytes=freed)


def _remove_staging(store: ContentStore) -> int:
    """Delete staging folders left by interrupted imports and return the bytes freed."""
    from moby_asm.store.content import STAGING_PREFIX

    freed = 0
    for folder in store.root.glob(f"{STAGING_PREFIX}*"):
        freed += sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
        shutil.rmtree(folder, ignore_errors=True)
    return freed


def disk_usage(store: ContentStore) -> DiskUsage:
    """Count references, blobs and bytes. Temporary files count toward the bytes, as reclaimable, but not as blobs."""
    reachable = reachable_blobs(store, store.index_descriptors())
    blobs, total, reclaimable = 0, 0, 0
    for path in store.iter_blob_files():
        size = path.stat().st_size
        total += size
        if not path.name.startswith("."):
            blobs += 1
        if f"sha256:{path.name}" not in reachable:
            reclaimable += size
    images = sum(1 for _ in store.iter_images())
    return DiskUsage(images=images, blobs=blobs, total_bytes=total, reclaimable_bytes=reclaimable)
