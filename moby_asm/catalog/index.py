"""A compiled index of a catalog folder, so that an unchanged catalog loads without YAML parsing.

After a folder is loaded, the data of each valid descriptor is stored as JSON in one
index file per folder, together with the relative path, size and modification time
(`st_mtime_ns`) of the file it came from. On the next load, a file whose size and
modification time match is validated from the stored data instead of being parsed
again. Any other file is read as usual, and files that are gone are dropped.

The index is only a cache. The stored data goes through the same validation as data
read from YAML, so a damaged or edited index cannot put an invalid component into the
catalog: an entry that fails is read again from its file, which reports the problem
with file:line:column. An edit of the index that stays valid is served as it is, like
an edit of the descriptor itself would be. An index that cannot be read or parsed is ignored and
rebuilt, and a failed write leaves the previous index in place.

Index files live in `moby-asm/catalog-index/` under the user cache folder that
platformdirs returns, or under `$MOBY_ASM_CACHE_DIR` when that variable is set.
NOTE: the index file of a folder that no longer exists is never removed.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moby_asm.catalog.loading import CatalogEntry, CatalogSource, entry_from_document
from moby_asm.documents import Document, load_document
from moby_asm.errors import InputError
from moby_asm.fileio import WriteFailed, atomic_write_text

logger = logging.getLogger(__name__)

CACHE_DIR_VARIABLE = "MOBY_ASM_CACHE_DIR"
INDEX_FORMAT = 1
"""Version of the index file layout; an index of another version is ignored."""

RECENT_WINDOW_NS = 2_000_000_000
"""Files modified less than this long before a load starts are not stored in the index.
File systems store modification times with a coarse step (FAT 2 s, others a clock tick).
A file edited twice within one step keeps its modification time, and maybe its size, so
only a file older than that can be recognised by its stat."""


def cache_root() -> Path:
    """Return the moby-asm cache folder: `$MOBY_ASM_CACHE_DIR`, else the platform's user cache."""
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("moby-asm"))


def index_file(folder: Path) -> Path:
    """Return the index file of a catalog folder, named by a hash of its resolved path."""
    digest = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return cache_root() / "catalog-index" / f"{digest[:32]}.json"


@dataclass
class CatalogIndex:
    """The stored records of one catalog folder and the records to store after this load.

    `stored` maps relative paths (with '/' separators) to records with `mtime_ns`, `size`
    and `data`, as read from the index file. `current` collects the records that are
    still valid or were just read, in the same form. `added` is true once a record was
    read from a file in this load.
    """

    folder: Path
    path: Path
    stored: dict[str, Any]
    started_ns: int = field(default_factory=time.time_ns)
    current: dict[str, Any] = field(default_factory=dict)
    added: bool = False

    @classmethod
    def open(cls, folder: Path) -> CatalogIndex:
        """Read the index of `folder`; an index that is missing or invalid counts as empty."""
        resolved = folder.resolve()
        path = index_file(resolved)
        return cls(resolved, path, read_records(path, resolved))

    def load_entry(self, path: Path, source: CatalogSource) -> CatalogEntry:
        """Load the descriptor at `path`, from the index when the file is unchanged.

        Raises `InvalidDocuments` as `load_descriptor` does; an invalid file is never stored.
        """
        key = path.relative_to(source.path).as_posix()
        try:
            stat = path.stat()
        except OSError:
            stat = None
        if stat is not None:
            entry = self._entry_from_record(key, stat, path, source)
            if entry is not None:
                return entry
        # The stat is taken before the read, so a file that changes during the read
        # gets a newer stat than the stored one and is read again next time.
        document = load_document(path)
        entry = entry_from_document(document, source)
        if stat is not None:
            self._record(key, stat, document.data)
        return entry

    def _entry_from_record(self, key: str, stat: os.stat_result, path: Path,
                           source: CatalogSource) -> CatalogEntry | None:
        record = self.stored.get(key)
        if not isinstance(record, dict) or "data" not in record:
            return None
        if record.get("mtime_ns") != stat.st_mtime_ns or record.get("size") != stat.st_size:
            return None
        try:
            # The stored data gets the same checks as a parsed file. A document without a
            # node tree has no positions, so on a problem the file is parsed to report it.
            entry = entry_from_document(Document(path, record["data"], None), source)
        except InputError as error:
            logger.debug("catalog index entry for %s is invalid, reading the file: %s", path, error)
            return None
        self.current[key] = record
        return entry

    def _record(self, key: str, stat: os.stat_result, data: Any) -> None:
        if stat.st_mtime_ns >= self.started_ns - RECENT_WINDOW_NS:
            return
        try:
            # YAML timestamps and binary values have no JSON form; such files are read each time.
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError):
            return
        self.current[key] = {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "data": data}
        self.added = True

    def save(self) -> None:
        """Write the current records when they differ from the stored ones.

        A failed write is logged at debug level and leaves the old index in place.
        """
        if not self.added and self.current.keys() == self.stored.keys():
            return
        content = {"format": INDEX_FORMAT, "folder": str(self.folder), "files": self.current}
        try:
            atomic_write_text(self.path, json.dumps(content, separators=(",", ":")), mode=0o600)
        except WriteFailed as error:
            logger.debug("failed to write the catalog index %s: %s", self.path, error)


def read_records(path: Path, folder: Path) -> dict[str, Any]:
    """Return the records of the index file at `path`, or {} when it is missing or invalid."""
    try:
        content = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as error:
        logger.debug("ignoring the unreadable catalog index %s: %s", path, error)
        return {}
    valid = (
        isinstance(content, dict)
        and content.get("format") == INDEX_FORMAT
        and content.get("folder") == str(folder)
        and isinstance(content.get("files"), dict)
    )
    if not valid:
        logger.debug("ignoring the catalog index %s: it belongs to another folder or format", path)
        return {}
    return content["files"]


@contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """Turn off the cyclic garbage collector inside the block, and back on after it if it was on.

    Loading a catalog allocates millions of objects that stay alive. The collector
    then runs full collections over all of them again and again. On a generated catalog
    of 10,000 descriptors they took a third of the CPU time of a cold load and half of
    a warm one (benchmarks/catalog_load.py --collector-on, see docs/benchmarks.md).
    Reference counting still frees memory inside the block, and the few reference
    cycles made there are collected by a later full collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _promote_to_oldest_generation()
            gc.enable()


def _promote_to_oldest_generation() -> None:
    # Without this, the first collection after the block walks every object made in it.
    # freeze() followed by unfreeze() moves all tracked objects into the oldest generation
    # without walking them. It is skipped when someone else froze objects on purpose,
    # because unfreeze() would release those too.
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
