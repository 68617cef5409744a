"""An ordered tree of entries in which a later entry for a path replaces the earlier one.

The tree keeps the order in which entries are written. A directory that is added again
keeps its place and takes the new metadata, so it still comes before its children. Any
other replacement removes the old entry (and a replaced directory's children) and goes to
the end. Missing parent directories are created, so every entry follows its parent.
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Iterator

from moby_asm.builders.errors import PathConflict
from moby_asm.builders.native.entries import Entry, Origin, directory


class FileTree:
    """Entries by normalised relative path, in writing order (see the module docstring).

    With `replace_directories` False, adding a non-directory in place of a directory that
    has children raises PathConflict. Layers of one image replace directories, as OCI
    layers do, but the parts of the root filesystem do not, because LinuxKit appends them
    to one tar in which a later file cannot remove a directory with contents.
    """

    def __init__(self, *, replace_directories: bool = True):
        self._entries: dict[str, Entry] = {}
        self._children: dict[str, set[str]] = {"": set()}
        self._counter = itertools.count()
        self._replace_directories = replace_directories

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: str) -> bool:
        return path in self._entries

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def children(self, path: str) -> list[str]:
        """Return the paths directly below `path`, sorted."""
        return sorted(self._children.get(path, ()))

    def ordered(self) -> list[Entry]:
        """Return the entries in writing order."""
        return sorted(self._entries.values(), key=lambda entry: entry.seq)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.ordered())

    def add(self, entry: Entry) -> None:
        """Add `entry` at `entry.path`, replacing what is there (see the class docstring)."""
        path = entry.path
        if not path:
            raise PathConflict(path, "the root directory cannot be replaced")
        self.ensure_parents(path, entry.origin)
        existing = self._entries.get(path)
        if existing is not None and existing.is_directory and entry.is_directory:
            entry.seq = existing.seq
            self._entries[path] = entry
            return
        if existing is not None:
            self._check_replaceable(existing, entry)
            self.remove(path)
        self._insert(entry)

    def ensure_parents(self, path: str, origin: Origin) -> None:
        """Create the missing parent directories of `path` (mode 0755, owned by root).

        Raise PathConflict when a parent exists but is not a directory, because writing
        through it would follow a symlink or need a file to become a directory.
        """
        parent = posixpath.dirname(path)
        if not parent:
            return
        existing = self._entries.get(parent)
        if existing is None:
            self.ensure_parents(parent, origin)
            created = directory(parent, origin)
            created.implicit = True
            self._insert(created)
        elif not existing.is_directory:
            raise PathConflict(
                path,
                f"its parent {parent!r} is a {existing.kind.value} from {existing.origin.location}, not a directory",
            )

    def remove(self, path: str) -> None:
        """Remove the entry at `path` and everything below it, if present."""
        if path not in self._entries:
            return
        self.remove_children(path)
        self._children.pop(path, None)
        del self._entries[path]
        self._children[posixpath.dirname(path)].discard(path)

    def remove_children(self, path: str) -> None:
        """Remove everything below `path` but keep `path` itself."""
        for child in list(self._children.get(path, ())):
            self.remove(child)

    def _check_replaceable(self, existing: Entry, entry: Entry) -> None:
        if self._replace_directories or not existing.is_directory or not self._children.get(existing.path):
            return
        raise PathConflict(
            entry.path,
            f"{entry.origin.location} has a {entry.kind.value} there but {existing.origin.location} "
            "made it a directory with contents",
        )

    def _insert(self, entry: Entry) -> None:
        entry.seq = next(self._counter)
        self._entries[entry.path] = entry
        self._children[posixpath.dirname(entry.path)].add(entry.path)
        if entry.is_directory:
            self._children.setdefault(entry.path, set())
