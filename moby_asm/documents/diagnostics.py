"""Problems found in input files, each tied to a file, line and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from moby_asm.errors import InputError


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one file; `line` and `column` count from 1."""

    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class InvalidDocuments(InputError):
    """One or more input files are invalid; `diagnostics` lists every problem."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return a "; did you mean 'x'?" hint for `word`, or an empty string."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""
