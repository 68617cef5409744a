"""Explain a selection: why a component is selected, the requirement tree, and graph exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from moby_asm.resolve.resolution import Edge, Resolution
from moby_asm.resolve.universe import ROOT

ROOT_LABEL = "assembly"


@dataclass(frozen=True)
class Step:
    """One requirement on a path: `parent` requires `child` with the range text `text`."""

    parent: str
    child: str
    text: str


def children(resolution: Resolution) -> dict[str, list[Edge]]:
    result: dict[str, list[Edge]] = {}
    for edge in resolution.edges:
        result.setdefault(edge.parent, []).append(edge)
    return result


def iter_paths(resolution: Resolution, target: str, limit: int = 100) -> Iterator[list[Edge]]:
    """Yield up to `limit` paths of requirements from the assembly to `target`, shortest first."""
    by_parent = children(resolution)
    frontier: list[list[Edge]] = [[edge] for edge in by_parent.get(ROOT, [])]
    found = 0
    while frontier and found < limit:
        next_frontier = []
        for path in frontier:
            last = path[-1].child
            if last == target:
                found += 1
                yield path
                if found >= limit:
                    return
                continue
            visited = {edge.parent for edge in path} | {last}
            for edge in by_parent.get(last, []):
                if edge.child not in visited or edge.child == target:
                    next_frontier.append(path + [edge])
        frontier = next_frontier


def tree_lines(resolution: Resolution) -> list[tuple[int, str, str, bool]]:
    """Return (depth, name, range text, already shown) rows of the requirement tree, depth first."""
    by_parent = children(resolution)
    rows: list[tuple[int, str, str, bool]] = []
    shown: set[str] = set()

    def visit(parent: str, depth: int) -> None:
        for edge in by_parent.get(parent, []):
            repeated = edge.child in shown
            rows.append((depth, edge.child, edge.text, repeated))
            if not repeated:
                shown.add(edge.child)
                visit(edge.child, depth + 1)

    visit(ROOT, 0)
    return rows


def _label(name: str) -> str:
    return ROOT_LABEL if name == ROOT else name


def _nodes(resolution: Resolution) -> list[dict]:
    nodes = [{"id": ROOT_LABEL, "kind": "assembly", "version": resolution.assembly.version}]
    for name, (_, version) in resolution.selected.items():
        nodes.append({"id": name, "kind": "component", "version": version.version, "stage": version.stage})
    return nodes


def to_json(resolution: Resolution) -> str:
    edges = [{"from": _label(e.parent), "to": e.child, "requirement": e.text, "kind": e.kind}
             for e in resolution.edges]
    return json.dumps({"nodes": _nodes(resolution), "edges": edges}, indent=2, sort_keys=True) + "\n"


def to_dot(resolution: Resolution) -> str:
    lines = ["digraph assembly {", "  rankdir=LR;", "  node [shape=box];"]
    for node in _nodes(resolution):
        # json.dumps writes the newlines as \n, which is DOT's line break inside a quoted label.
        label = f"{node['id']}\n{node['version']}" + (f"\n{node['stage']}" if "stage" in node else "")
        lines.append(f"  {json.dumps(node['id'])} [label={json.dumps(label)}];")
    for edge in resolution.edges:
        lines.append(f"  {json.dumps(_label(edge.parent))} -> {json.dumps(edge.child)} "
                     f"[label={json.dumps(edge.text)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(resolution: Resolution) -> str:
    ids = {node["id"]: f"n{index}" for index, node in enumerate(_nodes(resolution))}
    lines = ["graph LR"]
    for node in _nodes(resolution):
        lines.append(f'  {ids[node["id"]]}["{node["id"]} {node["version"]}"]')
    for edge in resolution.edges:
        text = edge.text.replace('"', "'").replace("|", "/")
        lines.append(f'  {ids[_label(edge.parent)]} -->|"{text}"| {ids[edge.child]}')
    return "\n".join(lines) + "\n"
