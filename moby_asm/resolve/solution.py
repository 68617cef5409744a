"""The partial solution: the decisions and derivations made so far, in order."""

from __future__ import annotations

from dataclasses import dataclass

from moby_asm.resolve.terms import Incompatibility, Relation, Term, anything


@dataclass(frozen=True, slots=True)
class Assignment:
    """A decision (`cause` is None) or a term derived from the incompatibility `cause`."""

    term: Term
    decision_level: int
    index: int
    cause: Incompatibility | None


class PartialSolution:
    def __init__(self, full_masks: dict[str, int]):
        self.full_masks = full_masks
        self.assignments: list[Assignment] = []
        self.by_package: dict[str, list[Assignment]] = {}
        self.terms: dict[str, Term] = {}
        self.decisions: dict[str, int] = {}
        self.decision_level = 0

    def decide(self, package: str, index: int) -> None:
        self.decision_level += 1
        self.decisions[package] = index
        full = self.full_masks[package]
        self._assign(Term(package, 1 << index, False, full), None)

    def derive(self, term: Term, cause: Incompatibility) -> None:
        self._assign(term, cause)

    def _assign(self, term: Term, cause: Incompatibility | None) -> None:
        assignment = Assignment(term, self.decision_level, len(self.assignments), cause)
        self.assignments.append(assignment)
        self.by_package.setdefault(term.package, []).append(assignment)
        previous = self.terms.get(term.package)
        self.terms[term.package] = term if previous is None else previous.intersect(term)

    def term_for(self, package: str) -> Term:
        term = self.terms.get(package)
        return term if term is not None else anything(package, self.full_masks[package])

    def relation(self, term: Term) -> Relation:
        current = self.terms.get(term.package)
        if current is None:
            return Relation.SATISFIED if _covers_everything(term) else Relation.INCONCLUSIVE
        if current.subset_of(term):
            return Relation.SATISFIED
        if current.disjoint(term):
            return Relation.CONTRADICTED
        return Relation.INCONCLUSIVE

    def satisfier(self, term: Term) -> Assignment:
        """Return the earliest assignment after which the package's term lies within `term`."""
        accumulated: Term | None = None
        for assignment in self.by_package.get(term.package, ()):
            accumulated = assignment.term if accumulated is None else accumulated.intersect(assignment.term)
            if accumulated.subset_of(term):
                return assignment
        raise AssertionError(f"no assignment satisfies {term}")

    def backtrack(self, level: int) -> None:
        """Remove every assignment made after decision level `level`."""
        touched = set()
        while self.assignments and self.assignments[-1].decision_level > level:
            removed = self.assignments.pop()
            package = removed.term.package
            self.by_package[package].pop()
            if removed.cause is None:
                del self.decisions[package]
            touched.add(package)
        for package in touched:
            self._recompute(package)
        self.decision_level = level

    def _recompute(self, package: str) -> None:
        remaining = self.by_package.get(package)
        if not remaining:
            self.terms.pop(package, None)
            self.by_package.pop(package, None)
            return
        term = remaining[0].term
        for assignment in remaining[1:]:
            term = term.intersect(assignment.term)
        self.terms[package] = term

    def undecided_positive(self) -> list[str]:
        """Return the packages that must be selected but have no decision yet."""
        return [p for p, term in self.terms.items() if term.positive and p not in self.decisions]


def _covers_everything(term: Term) -> bool:
    return term.absent and term.mask == term.full
