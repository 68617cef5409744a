"""Console output shared by the commands: rich for people, JSON for programs.

Rich honours NO_COLOR and plain pipes on its own; it is imported on first use so that
`moby-asm --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Any


@cache
def console():
    from rich.console import Console

    return Console(highlight=False)


@cache
def error_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Write `data` as indented JSON with sorted keys, so output is stable."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def table(*columns: str, title: str | None = None):
    from rich.table import Table

    result = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        result.add_column(column)
    return result


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
