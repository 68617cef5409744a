"""Order the selected components of each stage for boot.

`init` images are unpacked, and `onboot` and `onshutdown` containers run, one after
another. A component goes after every component of the same stage that it requires,
after those it names in `after`, and before those it names in `before`; hints that
name a component outside the selection are ignored. Among components that these rules
leave unordered, names sort alphabetically, so the order is stable from run to run.
Services start together at boot and are listed by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from moby_asm.errors import ResolutionError
from moby_asm.resolve.provider import Origin
from moby_asm.resolve.resolution import Resolution

ORDERED_STAGES = ("init", "onboot", "onshutdown")
STAGES = ("kernel", "init", "onboot", "service", "onshutdown", "files")


@dataclass(frozen=True)
class OrderEdge:
    """`first` must come before `second`, for the reason `reason` declared at `origin`."""

    first: str
    second: str
    reason: str
    origin: Origin | None


class OrderCycle(ResolutionError):
    """The ordering constraints of a stage form a cycle; `edges` lists every edge of it."""

    def __init__(self, stage: str, edges: list[OrderEdge], locate):
        self.stage = stage
        self.edges = edges
        lines = [f"  {e.second} runs after {e.first}: {e.reason}" + (f" ({locate(e.origin)})" if e.origin else "")
                 for e in edges]
        super().__init__(f"the {stage} components cannot be ordered because their constraints form a cycle:\n"
                         + "\n".join(lines) + "\nRemove one of these constraints to break the cycle.")


def boot_order(resolution: Resolution, locate) -> dict[str, list[str]]:
    """Return the selected component names of every stage in boot order."""
    by_stage: dict[str, list[str]] = {stage: [] for stage in STAGES}
    for name, (_, version) in resolution.selected.items():
        by_stage[version.stage].append(name)
    for stage in ORDERED_STAGES:
        by_stage[stage] = _order_stage(resolution, stage, sorted(by_stage[stage]), locate)
    return {stage: names for stage, names in by_stage.items()}


def _order_stage(resolution: Resolution, stage: str, names: list[str], locate) -> list[str]:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for edge in _stage_edges(resolution, stage, set(names)):
        if not graph.has_edge(edge.first, edge.second):
            graph.add_edge(edge.first, edge.second, edge=edge)
    try:
        return list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        raise OrderCycle(stage, _cycle(graph), locate) from None


def _stage_edges(resolution: Resolution, stage: str, names: set[str]) -> list[OrderEdge]:
    edges = []
    for edge in resolution.edges:
        if edge.parent in names and edge.child in names and edge.parent != edge.child:
            edges.append(OrderEdge(edge.child, edge.parent, f"{edge.parent} requires {edge.text}", edge.origin))
    for name in sorted(names):
        entry, version = resolution.selected[name]
        position = entry.component.versions.index(version)
        for index, other in enumerate(version.after):
            if other in names:
                origin = Origin(str(entry.path), ("versions", position, "after", index))
                edges.append(OrderEdge(other, name, f"{name} lists {other} in 'after'", origin))
        for index, other in enumerate(version.before):
            if other in names:
                origin = Origin(str(entry.path), ("versions", position, "before", index))
                edges.append(OrderEdge(name, other, f"{name} lists {other} in 'before'", origin))
    return edges + _assembly_edges(resolution, stage, names)


def _assembly_edges(resolution: Resolution, stage: str, names: set[str]) -> list[OrderEdge]:
    """Return the edges of the assembly's `order` list for `stage`: each name after the previous one."""
    listed = [(index, name) for index, name in enumerate(resolution.assembly.order.get(stage, ())) if name in names]
    edges = []
    for (_, first), (index, second) in zip(listed, listed[1:]):
        origin = Origin(resolution.assembly_path, ("order", stage, index))
        edges.append(OrderEdge(first, second, f"the assembly orders {second} after {first}", origin))
    return edges


def _cycle(graph) -> list[OrderEdge]:
    """Return the edges of one cycle, searched only inside a strongly connected component.

    networkx's `find_cycle` on a whole large graph is slow, so it runs on the smallest
    component that has a cycle.
    """
    import networkx as nx

    components = [c for c in nx.strongly_connected_components(graph)
                  if len(c) > 1 or graph.has_edge(next(iter(c)), next(iter(c)))]
    component = min(components, key=lambda c: (len(c), sorted(c)))
    subgraph = graph.subgraph(component)
    start = min(component)
    cycle = nx.find_cycle(subgraph, source=start)
    return [graph.edges[first, second]["edge"] for first, second in cycle]
