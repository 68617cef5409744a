"""The contract between the solver and whatever supplies packages and versions.

The solver works on packages identified by strings. A provider lists each package's
candidates in preference order (the first is tried first) and the dependencies of
each candidate. Sets of candidates are bit masks over that list: bit `i` stands for
`candidates(package)[i]`, so set operations on versions are integer operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

DependencyKind = Literal["requires", "optional", "conflicts"]


@dataclass(frozen=True)
class Origin:
    """The declaration site of a constraint: a file and the path of keys and indexes to it."""

    path: str
    loc: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """One version of a package; `unavailable` gives the reason it may never be chosen."""

    label: str
    sort_key: tuple
    unavailable: str | None = None


@dataclass(frozen=True)
class Dependency:
    """A constraint of one candidate on another package.

    `mask` is the set of the other package's candidates the constraint talks about:
    `requires` selects one of them, `optional` allows only them if the package is
    selected at all, and `conflicts` forbids them.
    """

    package: str
    mask: int
    kind: DependencyKind
    text: str
    origin: Origin | None = None


class Provider(Protocol):
    root: str
    """The package the solver starts from; it has exactly one candidate."""

    def candidates(self, package: str) -> Sequence[Candidate]:
        """Return the package's candidates, most preferred first; an unknown package has none."""

    def dependencies(self, package: str, index: int) -> Sequence[Dependency]:
        """Return the constraints of `candidates(package)[index]`."""

    def choose(self, package: str, allowed: int, decided: dict[str, int]) -> int:
        """Return the index of the candidate to try next among the `allowed` mask.

        `decided` maps already decided packages to their candidate index, so a provider
        can prefer a candidate that adds nothing new. Return the lowest set bit to keep
        plain preference order.
        """

    def describe(self, package: str, mask: int) -> str:
        """Return a phrase for "the package as one of the `mask` candidates", such as `containerd >=1.6.0`."""

    def locate(self, origin: Origin) -> str:
        """Return where `origin` is, as FILE:LINE:COLUMN."""
