"""`moby-asm components list|show|search`: browse the catalog."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import console, escape, print_json, table

app = typer.Typer(help="Browse the component catalog.", no_args_is_help=True)

ProjectOption = typer.Option(Path("."), "--project", "-C", help="Project folder whose components/ comes first.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _catalog(project: Path):
    from moby_asm.catalog import default_sources, load_catalog

    return load_catalog(default_sources(project))


def _summary(entry, shadowed) -> dict:
    component = entry.component
    return {
        "name": component.name,
        "description": component.description,
        "versions": [v.version for v in _newest_first(component.versions)],
        "stages": sorted({v.stage for v in component.versions}),
        "source": entry.source.label,
        "path": str(entry.path),
        "shadows": [str(hidden.path) for hidden in shadowed.get(component.name, [])],
    }


def _newest_first(versions):
    return sorted(versions, key=lambda v: v.parsed_version, reverse=True)


def _print_summaries(rows: list[dict], title: str) -> None:
    output = table("name", "versions", "stage", "source", "description", title=title)
    for row in rows:
        source = row["source"] + (" (shadows " + ", ".join(row["shadows"]) + ")" if row["shadows"] else "")
        output.add_row(row["name"], ", ".join(row["versions"]), ", ".join(row["stages"]),
                       escape(source), escape(row["description"]))
    console().print(output)


@app.command("list")
def list_components(project: Path = ProjectOption, json: bool = JsonOption) -> None:
    """List every component with its versions, stage and catalog source."""
    catalog = _catalog(project)
    rows = [_summary(entry, catalog.shadowed) for entry in catalog]
    if json:
        print_json(rows)
    else:
        _print_summaries(rows, f"{len(rows)} components")


@app.command("search")
def search_components(text: str = typer.Argument(..., help="Text to look for in names, descriptions, "
                                                             "labels and capabilities."),
                      project: Path = ProjectOption, json: bool = JsonOption) -> None:
    """List the components whose name, description, labels or capabilities contain TEXT."""
    catalog = _catalog(project)
    needle = text.lower()
    rows = [_summary(entry, catalog.shadowed) for entry in catalog if needle in _search_text(entry.component)]
    if json:
        print_json(rows)
    elif rows:
        noun = "component" if len(rows) == 1 else "components"
        _print_summaries(rows, f"{len(rows)} {noun} matching {text!r}")
    else:
        console().print(f"No component matches {text!r}.", markup=False)


def _search_text(component) -> str:
    parts = [component.name, component.description, *component.labels.values()]
    for version in component.versions:
        parts.extend(capability.name for capability in version.provides)
    return " ".join(parts).lower()


@app.command("show")
def show_component(reference: str = typer.Argument(..., metavar="NAME[@VERSION]"),
                   project: Path = ProjectOption, json: bool = JsonOption) -> None:
    """Show a component's descriptor; with @VERSION, only that version."""
    from moby_asm.catalog.query import find_versions

    catalog = _catalog(project)
    entry, versions = find_versions(catalog, reference)
    data = entry.component.model_dump(by_alias=True, exclude_defaults=True)
    data["versions"] = [v.model_dump(by_alias=True, exclude_defaults=True) for v in versions]
    if json:
        print_json({"path": str(entry.path), "source": entry.source.label, "component": data})
        return
    _print_component(entry, data, catalog.shadowed.get(entry.name, []))


def _print_component(entry, data: dict, shadowed: list) -> None:
    import yaml

    console().print(f"[bold]{escape(entry.name)}[/bold]  {escape(entry.component.description)}")
    console().print(f"from {escape(str(entry.path))} ({entry.source.label} catalog)")
    for hidden in shadowed:
        console().print(f"shadows {escape(str(hidden.path))} ({hidden.source.label} catalog)")
    console().print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), markup=False)
