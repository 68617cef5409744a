"""Load YAML into plain Python data while keeping the position of every node.

The loader uses libyaml's parser when PyYAML was built with it and builds Python
values itself, so that it can reject what a project file must never contain:
several documents, duplicate keys, non-string keys, merge keys, unknown tags, and
aliases that expand into more than `MAX_ALIAS_NODES` nodes (an "alias bomb" of a few
hundred bytes can otherwise grow into gigabytes when the data is walked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import yaml.reader
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from moby_asm.documents.diagnostics import Diagnostic, InvalidDocuments

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_ALIAS_NODES = 10_000
"""Maximum number of nodes that aliases may add to one document by repeating anchored nodes."""

_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_SCALAR_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: its data and the node tree that records every position."""

    path: Path
    data: Any
    root: Node | None

    def position(self, loc: Sequence[str | int], at_key: bool = False) -> tuple[int, int]:
        """Return the 1-based (line, column) of the node at `loc`.

        `loc` is a path of mapping keys and sequence indexes. When part of the path
        does not exist, the position of the deepest node that does is returned. With
        `at_key`, a mapping entry is located by its key instead of its value.
        """
        node = self.root
        mark_node = node
        for step in loc:
            child, key_node = _child(node, step)
            if child is None:
                break
            mark_node = key_node if (at_key and key_node is not None) else child
            node = child
        if mark_node is None:
            return (1, 1)
        mark = mark_node.start_mark
        return (mark.line + 1, mark.column + 1)

    def node_at(self, loc: Sequence[str | int]) -> Node | None:
        """Return the node at `loc`, or None when the path does not exist."""
        node = self.root
        for step in loc:
            node, _ = _child(node, step)
            if node is None:
                return None
        return node

    def diagnostic(self, loc: Sequence[str | int], message: str, at_key: bool = False) -> Diagnostic:
        line, column = self.position(loc, at_key)
        return Diagnostic(self.path, line, column, message)


def _child(node: Node | None, step: str | int) -> tuple[Node | None, Node | None]:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == step:
                return value_node, key_node
    elif isinstance(node, SequenceNode) and isinstance(step, int):
        if 0 <= step < len(node.value):
            return node.value[step], None
    return None, None


def load_document(path: Path) -> Document:
    """Read and parse the YAML file at `path`; raise `InvalidDocuments` when it is not valid."""
    try:
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise InvalidDocuments([Diagnostic(path, 1, 1, f"expected a YAML file, but this is {kind}")])
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise InvalidDocuments([Diagnostic(path, 1, 1, "file not found")]) from error
    except OSError as error:
        raise InvalidDocuments([Diagnostic(path, 1, 1, f"cannot read file: {error.strerror}")]) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"file is not valid UTF-8: byte 0x{raw[error.start]:02x} ({error.reason}); save it as UTF-8"
        raise InvalidDocuments([Diagnostic(path, line, column, message)]) from error
    return parse_document(text, path)


def parse_document(text: str, path: Path) -> Document:
    """Parse `text` as one YAML document; `path` names it in diagnostics."""
    try:
        root = _compose_single(text)
    except yaml.MarkedYAMLError as error:
        raise InvalidDocuments([_syntax_diagnostic(error, path, text)]) from error
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        message = f"invalid YAML: character {error.character!r} is not allowed in YAML text; remove it or escape it"
        raise InvalidDocuments([Diagnostic(path, line, column, message)]) from error
    builder = _Builder(path)
    data = builder.build(root) if root is not None else None
    if builder.diagnostics:
        raise InvalidDocuments(builder.diagnostics)
    return Document(path, data, root)


def _syntax_diagnostic(error: yaml.MarkedYAMLError, path: Path, text: str) -> Diagnostic:
    problem = error.problem or "invalid YAML"
    mark = error.problem_mark or error.context_mark
    if error.context and error.context_mark is not None:
        # "found unexpected end of stream" is best shown where the unclosed construct starts.
        if "end of stream" in problem or error.context.startswith("while parsing a flow"):
            mark = error.context_mark
        problem = f"{error.context} at line {error.context_mark.line + 1}, {problem}"
    if mark is not None and "\t" in _line(text, mark.line)[: mark.column + 1]:
        problem += "; indent with spaces, YAML does not allow tabs there"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Diagnostic(path, line, column, f"invalid YAML: {problem}")


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def _compose_single(text: str) -> Node | None:
    loader = Loader(text)
    try:
        root = loader.get_node() if loader.check_node() else None
        if loader.check_node():
            extra = loader.get_node()
            raise yaml.MarkedYAMLError(
                problem="a project file holds one YAML document; found a second one",
                problem_mark=extra.start_mark,
            )
        return root
    finally:
        loader.dispose()


class _Builder:
    """Turns a node tree into Python values and collects every problem on the way."""

    def __init__(self, path: Path):
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.alias_nodes = 0
        self.alias_target: Node | None = None

    def report(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.diagnostics.append(Diagnostic(self.path, mark.line + 1, mark.column + 1, message))

    def build(self, node: Node, via_alias: bool = False) -> Any:
        ident = id(node)
        if ident in self.active:
            self.report(node, "recursive alias: a node contains itself")
            return None
        if ident in self.seen and not via_alias:
            via_alias = True
            self.alias_target = node
        self.seen.add(ident)
        if via_alias:
            self.alias_nodes += 1
            if self.alias_nodes == MAX_ALIAS_NODES + 1:
                # The composer keeps no position for an alias, so the repeated anchor is shown.
                self.report(self.alias_target, f"aliases of the anchor defined here expand to more than "
                                               f"{MAX_ALIAS_NODES} nodes; write the repeated content out "
                                               "or use fewer aliases")
            if self.alias_nodes > MAX_ALIAS_NODES:
                return None
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            self.report(node, f"unsupported YAML tag {node.tag!r} on a collection; remove the tag")
            return None
        self.active.add(ident)
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, via_alias) for item in node.value]
            return self.mapping(node, via_alias)
        finally:
            self.active.discard(ident)

    def scalar(self, node: ScalarNode) -> Any:
        constructor = SafeConstructor.yaml_constructors.get(node.tag)
        if constructor is None:
            self.report(node, f"unsupported YAML tag {node.tag!r} on value {node.value!r}; remove the tag")
            return None
        try:
            return constructor(_SCALAR_CONSTRUCTOR, node)
        except (ConstructorError, ValueError) as error:
            self.report(node, f"invalid value {node.value!r} for tag {node.tag!r}: {error}")
            return None

    def mapping(self, node: MappingNode, via_alias: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.report(key_node, "merge keys ('<<') are not supported; write the keys out")
                continue
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, "mapping keys must be strings, got a list or mapping")
                continue
            if key_node.tag != _STR_TAG:
                self.report(key_node, f"mapping keys must be strings, got {key_node.value!r}; quote the key")
                continue
            key = key_node.value
            if key in result:
                self.report(key_node, f"duplicate key {key!r}; each key may appear once in a mapping")
                continue
            result[key] = self.build(value_node, via_alias)
        return result
