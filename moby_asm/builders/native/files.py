"""The `files` section: contents, directories, symlinks, files from disk and the config itself.

Facts from LinuxKit's `filesystem` (src/cmd/linuxkit/moby/build/build.go, v1.x): the mode
is an octal string, by default 0600 for files and 0700 for directories. Missing parent
directories get the entry's owner and its mode with the search bit added wherever a
read or write bit is set. Unlike LinuxKit, a parent that already exists keeps its mode
and owner, so a file in /etc does not change the mode of /etc.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from moby_asm.builders.errors import InvalidBuildConfig, PathConflict
from moby_asm.builders.native.bundle import resolve_id
from moby_asm.builders.native.entries import (
    BytesData,
    Entry,
    FileData,
    Kind,
    Origin,
    UnsafePath,
    directory,
    normalise_path,
)
from moby_asm.builders.native.tree import FileTree

FILES_SOURCE = "linuxkit.files"


def add_files(
    tree: FileTree, files: list[Mapping[str, Any]], ids: Mapping[str, int], config: Mapping[str, Any]
) -> None:
    """Add each entry of `files` to `tree`. A `metadata` entry writes `config`."""
    for index, spec in enumerate(files):
        where = f"files[{index}] ({spec.get('path')})"
        origin = Origin(FILES_SOURCE, f"files[{index}]")
        entry = _file_entry(spec, ids, config, origin, where)
        if entry is None:
            continue
        try:
            _add_parents(tree, entry)
            tree.add(entry)
        except PathConflict as conflict:
            raise InvalidBuildConfig(where, conflict.reason) from None


def _file_entry(
    spec: Mapping[str, Any], ids: Mapping[str, int], config: Mapping[str, Any], origin: Origin, where: str
) -> Entry | None:
    path = _path(spec, where)
    is_directory = bool(spec.get("directory"))
    mode = _mode(spec, 0o700 if is_directory else 0o600, where)
    try:
        uid = resolve_id(spec.get("uid"), ids, "uid")
        gid = resolve_id(spec.get("gid"), ids, "gid")
    except ValueError as error:
        raise InvalidBuildConfig(where, str(error)) from None
    entry = Entry(path, Kind.FILE, mode, origin, uid=uid, gid=gid)
    if is_directory:
        if spec.get("contents") is not None:
            raise InvalidBuildConfig(where, "a directory cannot have contents")
        entry.kind = Kind.DIRECTORY
    elif spec.get("symlink"):
        entry.kind = Kind.SYMLINK
        entry.linkname = spec["symlink"]
    else:
        data = _contents(spec, config, where)
        if data is None:
            return None
        entry.data = data
        entry.size = len(data.content) if isinstance(data, BytesData) else data.size
    return entry


def _path(spec: Mapping[str, Any], where: str) -> str:
    try:
        path = normalise_path(str(spec.get("path") or ""))
    except UnsafePath:
        raise InvalidBuildConfig(where, "the path leaves the root filesystem") from None
    if not path:
        raise InvalidBuildConfig(where, "the path must name a file below the root")
    return path


def _mode(spec: Mapping[str, Any], default: int, where: str) -> int:
    text = spec.get("mode")
    if text is None or text == "":
        return default
    try:
        return int(str(text), 8)
    except ValueError:
        raise InvalidBuildConfig(where, f'invalid mode {text!r}; expected an octal string such as "0644"') from None


def _contents(spec: Mapping[str, Any], config: Mapping[str, Any], where: str) -> BytesData | FileData | None:
    """Return the contents of a file entry, or None for an `optional` source that is missing."""
    present = [key for key in ("contents", "source", "metadata") if spec.get(key) is not None]
    if len(present) != 1:
        raise InvalidBuildConfig(where, "set exactly one of contents, source, metadata, directory and symlink")
    if spec.get("contents") is not None:
        return BytesData(str(spec["contents"]).encode())
    if spec.get("metadata") is not None:
        return BytesData(render_metadata(config, spec["metadata"], where))
    return _source(Path(os.path.expanduser(spec["source"])), bool(spec.get("optional")), where)


def _source(path: Path, optional: bool, where: str) -> FileData | None:
    try:
        size = path.stat().st_size
        readable = path.is_file() and os.access(path, os.R_OK)
    except OSError:
        readable, size = False, 0
    if readable:
        return FileData(path, size)
    if optional:
        return None
    raise InvalidBuildConfig(where, f"the source {str(path)!r} is not a readable file")


def render_metadata(config: Mapping[str, Any], kind: str, where: str) -> bytes:
    """Return the config as `yaml` or `json`, the two metadata kinds LinuxKit writes."""
    if kind == "yaml":
        return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False).encode()
    if kind == "json":
        return json.dumps(config, indent=4).encode()
    raise InvalidBuildConfig(where, f"unsupported metadata {kind!r}; expected 'yaml' or 'json'")


def parent_mode(mode: int) -> int:
    """Return `mode` with the search bit added for owner, group and others that may read or write."""
    for rwx, search in ((0o700, 0o100), (0o070, 0o010), (0o007, 0o001)):
        if mode & rwx:
            mode |= search
    return mode


def _add_parents(tree: FileTree, entry: Entry) -> None:
    parents = []
    parent = posixpath.dirname(entry.path)
    while parent and parent not in tree:
        parents.append(parent)
        parent = posixpath.dirname(parent)
    for path in reversed(parents):
        tree.add(directory(path, entry.origin, parent_mode(entry.mode), entry.uid, entry.gid))
