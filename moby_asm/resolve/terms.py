"""Terms and incompatibilities, the vocabulary of the PubGrub algorithm.

A term states something about one package as a set: `mask` is the set of allowed
candidates and `absent` says whether leaving the package out of the selection is
allowed too. A positive term ("p is selected as one of S") has `absent` false; a
negative term ("p is not selected as one of S") has it true. Intersection, union and
complement are then plain bit operations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from moby_asm.resolve.provider import Dependency


@dataclass(frozen=True, slots=True)
class Term:
    package: str
    mask: int
    absent: bool
    full: int

    @property
    def positive(self) -> bool:
        return not self.absent

    @property
    def empty(self) -> bool:
        return self.mask == 0 and not self.absent

    def inverse(self) -> Term:
        return Term(self.package, self.full & ~self.mask, not self.absent, self.full)

    def intersect(self, other: Term) -> Term:
        return Term(self.package, self.mask & other.mask, self.absent and other.absent, self.full)

    def difference(self, other: Term) -> Term:
        return self.intersect(other.inverse())

    def subset_of(self, other: Term) -> bool:
        return self.mask & ~other.mask == 0 and (other.absent or not self.absent)

    def disjoint(self, other: Term) -> bool:
        return self.mask & other.mask == 0 and not (self.absent and other.absent)


def anything(package: str, full: int) -> Term:
    return Term(package, full, True, full)


class Kind(Enum):
    """The reason an incompatibility is known."""

    ROOT = "root"
    DEPENDENCY = "dependency"
    NO_VERSIONS = "no versions"
    UNAVAILABLE = "unavailable"
    DERIVED = "derived"


@dataclass(eq=False)
class Incompatibility:
    """A set of terms that must not all hold at once, with the reason it is known.

    A derived incompatibility keeps the two it was derived from in `causes`, which
    forms the derivation graph that failure explanations walk.
    """

    terms: dict[str, Term]
    kind: Kind
    causes: tuple[Incompatibility, Incompatibility] | None = None
    package: str = ""
    dependencies: tuple[tuple[int, Dependency], ...] = ()
    detail: str = ""

    @property
    def dependency(self) -> Dependency | None:
        """The first dependency this incompatibility stands for; all share target, mask and kind."""
        return self.dependencies[0][1] if self.dependencies else None

    @classmethod
    def of(cls, terms: Iterable[Term], kind: Kind, **fields) -> Incompatibility:
        merged: dict[str, Term] = {}
        for term in terms:
            previous = merged.get(term.package)
            merged[term.package] = term if previous is None else previous.intersect(term)
        # A term that any assignment satisfies adds nothing; drop it unless it is the only one.
        kept = {package: term for package, term in merged.items() if not _is_anything(term)}
        return cls(kept if kept or not merged else {}, kind, **fields)

    @property
    def derived(self) -> bool:
        return self.causes is not None


def _is_anything(term: Term) -> bool:
    return term.absent and term.mask == term.full


class Relation(Enum):
    SATISFIED = 1
    CONTRADICTED = 2
    INCONCLUSIVE = 3
