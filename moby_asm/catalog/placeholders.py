"""`${NAME}` placeholders that refer to a component's parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\$\$\{|\$\{([a-z_][a-z0-9_]*)\}")
"""A parameter reference `${NAME}`, or `$${`, which stands for a literal `${`."""


def iter_placeholders(value: Any, loc: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Yield (location, parameter name) for every placeholder in nested data."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            if match.group(1):
                yield loc, match.group(1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_placeholders(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_placeholders(item, loc + (index,))


MALFORMED = re.compile(r"(?<!\$)\$\{(?![a-z_][a-z0-9_]*\})[^}]*\}?")
"""A `${` that does not start a valid placeholder, such as `${Name}` or an unclosed `${name`."""


def iter_malformed(value: Any, loc: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Yield (location, text) for every malformed placeholder in nested data."""
    if isinstance(value, str):
        for match in MALFORMED.finditer(value):
            yield loc, match.group(0)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_malformed(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_malformed(item, loc + (index,))
