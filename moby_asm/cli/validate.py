"""`moby-asm validate`: check descriptors, assemblies and whole folders."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import console, error_console, print_json


def validate(
    paths: list[Path] = typer.Argument(None, help="Files or folders to check; default: the current folder."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check every file and report all problems at once as FILE:LINE:COLUMN: MESSAGE."""
    from moby_asm.validate import validate_paths

    report = validate_paths(paths or [Path(".")])
    if json:
        print_json({
            "ok": report.ok,
            "checked": {str(path): kind for path, kind in report.checked.items()},
            "problems": [
                {"path": str(d.path), "line": d.line, "column": d.column, "message": d.message}
                for d in report.diagnostics
            ],
        })
    else:
        for diagnostic in report.diagnostics:
            error_console().print(str(diagnostic), markup=False, soft_wrap=True)
        summary = f"{_count(len(report.checked), 'file')} checked, {_count(len(report.diagnostics), 'problem')}"
        (console() if report.ok else error_console()).print(summary, markup=False)
    if not report.ok:
        raise typer.Exit(2)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
