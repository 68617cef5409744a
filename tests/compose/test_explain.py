"""`why`, `tree` and `graph` on the swarm-node example, in text, JSON and every graph format."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .helpers import EXAMPLES_FOLDER, explain, files_under, read_yaml

EXAMPLE = "swarm-node"

COMMANDS = {
    "why": ("why", "runc", "."),
    "why-json": ("why", "runc", ".", "--json"),
    "tree": ("tree", "."),
    "tree-json": ("tree", ".", "--json"),
    "dot": ("graph", ".", "--format", "dot"),
    "mermaid": ("graph", ".", "--format", "mermaid"),
    "json": ("graph", ".", "--format", "json"),
    "svg": ("graph", ".", "--format", "svg"),
    "svg-file": ("graph", ".", "--format", "svg", "-o", "../graph.svg"),
    "why-unselected": ("why", "nginx", "."),
    "graph-json-option": ("graph", ".", "--json"),
}


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return Path(shutil.copytree(EXAMPLES_FOLDER / EXAMPLE, tmp_path_factory.mktemp("explain") / EXAMPLE))


@pytest.fixture(scope="module")
def outputs(example, run_all) -> dict:
    """Run every command once in a copy of the example and return the results by key."""
    before = files_under(example)
    results = dict(zip(COMMANDS, run_all((args, example) for args in COMMANDS.values()), strict=True))
    results["unchanged"] = files_under(example) == before
    return results


@pytest.fixture(scope="module")
def selected(example) -> dict[str, str]:
    """Return the locked version of every selected component."""
    return {item["name"]: item["version"] for item in read_yaml(example / "assembly.lock")["components"]}


def succeeded(outputs: dict, key: str) -> str:
    result = outputs[key]
    assert result.returncode == 0, explain(result)
    return result.stdout


def test_commands_leave_project_unchanged(outputs):
    assert outputs["unchanged"] is True


def test_why_lists_direct_and_indirect_paths(outputs, selected):
    lines = succeeded(outputs, "why").splitlines()

    assert lines[0] == f"runc {selected['runc']} is selected because:"
    assert "  assembly -> runc (requires runc)" in lines
    assert "  assembly -> containerd (requires containerd) -> runc (requires oci-runtime ^1.0.0)" in lines
    assert ("  assembly -> docker (requires docker ^27) -> containerd (requires containerd) "
            "-> runc (requires oci-runtime ^1.0.0)") in lines


def test_why_json_paths_are_chains(outputs, selected):
    report = json.loads(succeeded(outputs, "why-json"))
    text_paths = succeeded(outputs, "why").splitlines()[1:]

    assert report["component"] == "runc"
    assert report["version"] == selected["runc"]
    assert len(report["paths"]) == len(text_paths)
    for path in report["paths"]:
        assert path[0]["from"] == "assembly"
        assert path[-1]["to"] == "runc"
        for step, following in zip(path, path[1:], strict=False):
            assert step["to"] == following["from"]
            assert step["to"] in selected


def test_why_unselected_name_exits_2(outputs):
    result = outputs["why-unselected"]

    assert result.returncode == 2, explain(result)
    assert "'nginx' is not part of the selection" in result.stderr
    assert "Traceback" not in result.stderr


def test_tree_shows_every_component(outputs, selected):
    text = succeeded(outputs, "tree")
    lines = text.splitlines()

    assert lines[0] == f"{EXAMPLE} 1.0.0"
    for name, version in selected.items():
        assert re.search(rf"\b{re.escape(name)} {re.escape(version)}\b", text), name
    assert "(shown above)" in text


def test_tree_json_matches_requirements(outputs, selected, example):
    rows = json.loads(succeeded(outputs, "tree-json"))
    requires = read_yaml(example / "assembly.yml")["requires"]
    first_shown = [row["name"] for row in rows if not row["repeated"]]

    assert sorted(row["name"] for row in rows if row["depth"] == 0) == sorted(r.split()[0] for r in requires)
    assert sorted(first_shown) == sorted(selected)
    assert all(row["version"] == selected[row["name"]] for row in rows)


def graph_json(outputs: dict) -> dict:
    return json.loads(succeeded(outputs, "json"))


def test_graph_json_nodes_and_edges(outputs, selected):
    graph = graph_json(outputs)
    nodes = {node["id"] for node in graph["nodes"]}

    assert nodes == {"assembly"} | set(selected)
    for edge in graph["edges"]:
        assert edge["from"] in nodes
        assert edge["to"] in nodes
    assert {edge["to"] for edge in graph["edges"]} == set(selected)


def test_graph_dot_declares_nodes_and_edges(outputs, selected):
    text = succeeded(outputs, "dot")
    edges = [line for line in text.splitlines() if " -> " in line]

    assert text.startswith("digraph ")
    assert text.rstrip().endswith("}")
    for name in selected:
        assert f'"{name}" [label=' in text
    assert len(edges) == len(graph_json(outputs)["edges"])


def test_graph_mermaid_edges_use_declared_nodes(outputs, selected):
    lines = succeeded(outputs, "mermaid").splitlines()
    declared = dict(re.fullmatch(r'\s+(n\d+)\["([^"]+)"\]', line).groups() for line in lines if "[" in line)
    edges = [re.fullmatch(r'\s+(n\d+) -->\|"[^"]*"\| (n\d+)', line) for line in lines if "-->" in line]

    assert lines[0] == "graph LR"
    assert sorted(label.split()[0] for label in declared.values()) == sorted({"assembly"} | set(selected))
    assert len(edges) == len(graph_json(outputs)["edges"])
    for edge in edges:
        assert edge is not None
        assert edge.group(1) in declared
        assert edge.group(2) in declared


def test_graph_svg_has_svg_header(outputs):
    text = succeeded(outputs, "svg")

    assert text.startswith("<?xml")
    assert "<svg" in text
    assert text.rstrip().endswith("</svg>")


def test_graph_svg_written_to_file(outputs, example):
    succeeded(outputs, "svg-file")
    text = (example.parent / "graph.svg").read_text()

    assert text.startswith("<?xml")
    assert "<svg" in text


def test_graph_svg_labels_have_no_escape_text(outputs):
    text = succeeded(outputs, "svg")

    assert "\\n" not in text


def test_graph_accepts_json_option(outputs):
    assert json.loads(succeeded(outputs, "graph-json-option")) == graph_json(outputs)
