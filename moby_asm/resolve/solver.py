"""A version solver in the manner of PubGrub (Natalie Weizenbaum, Dart pub, 2018).

Each conflict is turned into a learned incompatibility, so that no dead end is
explored twice, and the solver jumps straight back to the decision that caused it.
Unit propagation only visits incompatibilities of packages whose terms just changed.
Dependencies that several candidates of a package share are added as one
incompatibility covering all of them. The next package to decide is the one with the
fewest allowed candidates, ties broken by name, so results are deterministic.

When no solution exists, the final incompatibility and its derivation graph explain
why; `moby_asm.resolve.explain` turns that into text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moby_asm.resolve.provider import Dependency, Provider
from moby_asm.resolve.solution import PartialSolution
from moby_asm.resolve.terms import Incompatibility, Kind, Relation, Term


class SolveFailure(Exception):
    """No solution exists; `incompatibility` is the root of the derivation graph."""

    def __init__(self, incompatibility: Incompatibility):
        self.incompatibility = incompatibility
        super().__init__("no solution")


@dataclass
class Solution:
    """The chosen candidate index of every selected package, and the number of decisions made."""

    selected: dict[str, int]
    decisions: int
    conflicts: int


_CONFLICT = object()


class Solver:
    def __init__(self, provider: Provider, on_decision: Callable[[str, int], None] | None = None):
        self.provider = provider
        self.on_decision = on_decision
        self.full_masks: dict[str, int] = {}
        self.solution = PartialSolution(self.full_masks)
        self.incompatibilities: dict[str, list[Incompatibility]] = {}
        self.loaded_dependencies: set[str] = set()
        self.decision_count = 0
        self.conflict_count = 0

    def full(self, package: str) -> int:
        mask = self.full_masks.get(package)
        if mask is None:
            mask = (1 << len(self.provider.candidates(package))) - 1
            self.full_masks[package] = mask
        return mask

    def solve(self) -> Solution:
        root = self.provider.root
        full = self.full(root)
        # The root must be selected: "root is absent" is the first incompatibility.
        self._add(Incompatibility.of([Term(root, 0, True, full)], Kind.ROOT))
        next_package: str | None = root
        while next_package is not None:
            self._propagate(next_package)
            next_package = self._decide_next()
        return Solution(dict(self.solution.decisions), self.decision_count, self.conflict_count)

    def _add(self, incompatibility: Incompatibility) -> None:
        for package in incompatibility.terms:
            self.incompatibilities.setdefault(package, []).append(incompatibility)

    def _propagate(self, package: str) -> None:
        # Packages whose terms changed and whose incompatibilities need a visit; each is
        # queued once however often it changes, in a deterministic order.
        changed = [package]
        queued = {package}
        terms = self.solution.terms
        while changed:
            current = changed.pop()
            queued.discard(current)
            current_term = terms.get(current)
            for incompatibility in reversed(self.incompatibilities.get(current, ())):
                # Fast path: most incompatibilities of a package talk about other versions
                # of it, which the current term already contradicts.
                own = incompatibility.terms[current]
                if current_term is not None and not (current_term.mask & own.mask) and not (
                        current_term.absent and own.absent):
                    continue
                result = self._propagate_one(incompatibility)
                if result is _CONFLICT:
                    root_cause = self._resolve_conflict(incompatibility)
                    changed.clear()
                    queued.clear()
                    derived = self._propagate_one(root_cause)
                    assert isinstance(derived, str), "a learned incompatibility must derive a term"
                    changed.append(derived)
                    queued.add(derived)
                    break
                if result is not None and result not in queued:
                    changed.append(result)
                    queued.add(result)

    def _propagate_one(self, incompatibility: Incompatibility):
        """Derive the one term the incompatibility forces, or report a conflict."""
        unsatisfied: Term | None = None
        for term in incompatibility.terms.values():
            relation = self.solution.relation(term)
            if relation is Relation.CONTRADICTED:
                return None
            if relation is Relation.INCONCLUSIVE:
                if unsatisfied is not None:
                    return None
                unsatisfied = term
        if unsatisfied is None:
            return _CONFLICT
        self.solution.derive(unsatisfied.inverse(), incompatibility)
        return unsatisfied.package

    def _resolve_conflict(self, incompatibility: Incompatibility) -> Incompatibility:
        self.conflict_count += 1
        learned = False
        while not self._is_failure(incompatibility):
            term, satisfier, previous_level, difference = self._most_recent_satisfier(incompatibility)
            if satisfier.cause is None or previous_level < satisfier.decision_level:
                self.solution.backtrack(previous_level)
                if learned:
                    self._add(incompatibility)
                return incompatibility
            terms = [t for t in incompatibility.terms.values() if t is not term]
            terms += [t for t in satisfier.cause.terms.values() if t.package != satisfier.term.package]
            if difference is not None:
                terms.append(difference.inverse())
            incompatibility = Incompatibility.of(terms, Kind.DERIVED, causes=(incompatibility, satisfier.cause))
            learned = True
        raise SolveFailure(incompatibility)

    def _most_recent_satisfier(self, incompatibility: Incompatibility):
        """Find the term satisfied last, its satisfier, and the level to jump back to."""
        most_recent_term = None
        most_recent = None
        difference = None
        previous_level = 1
        for term in incompatibility.terms.values():
            satisfier = self.solution.satisfier(term)
            if most_recent is None or most_recent.index < satisfier.index:
                if most_recent is not None:
                    previous_level = max(previous_level, most_recent.decision_level)
                most_recent_term, most_recent, difference = term, satisfier, None
            else:
                previous_level = max(previous_level, satisfier.decision_level)
            if most_recent_term is term:
                # The satisfier may allow less than the term needs: what it adds beyond the
                # term must also have been satisfied earlier.
                rest = most_recent.term.difference(term)
                difference = None if rest.empty else rest
                if difference is not None:
                    previous_level = max(previous_level, self.solution.satisfier(difference.inverse()).decision_level)
        return most_recent_term, most_recent, previous_level, difference

    def _is_failure(self, incompatibility: Incompatibility) -> bool:
        terms = incompatibility.terms
        if not terms:
            return True
        if len(terms) == 1:
            (term,) = terms.values()
            return term.package == self.provider.root and term.positive
        return False

    def _decide_next(self) -> str | None:
        pending = self.solution.undecided_positive()
        if not pending:
            return None
        package = min(pending, key=lambda p: (self.solution.terms[p].mask.bit_count(), p))
        allowed = self.solution.terms[package].mask
        if allowed == 0:
            self._add(Incompatibility.of([self.solution.terms[package]], Kind.NO_VERSIONS))
            return package
        index = self.provider.choose(package, allowed, self.solution.decisions)
        if self._load_dependencies(package, index):
            return package
        self.solution.decide(package, index)
        self.decision_count += 1
        if self.on_decision is not None:
            self.on_decision(package, index)
        return package

    def _load_dependencies(self, package: str, index: int) -> bool:
        """Add the incompatibilities of the package's candidates; True when one already conflicts."""
        if package in self.loaded_dependencies:
            return False
        self.loaded_dependencies.add(package)
        conflict = False
        for incompatibility in self._package_incompatibilities(package):
            self._add(incompatibility)
            own = incompatibility.terms.get(package)
            if own is None or not own.mask >> index & 1:
                continue
            others = (t for p, t in incompatibility.terms.items() if p != package)
            if all(self.solution.relation(t) is Relation.SATISFIED for t in others):
                conflict = True
        return conflict

    def _package_incompatibilities(self, package: str) -> list[Incompatibility]:
        full = self.full(package)
        candidates = self.provider.candidates(package)
        shared: dict[tuple, tuple[int, list[tuple[int, Dependency]]]] = {}
        result = []
        for index, candidate in enumerate(candidates):
            bit = 1 << index
            if candidate.unavailable is not None:
                term = Term(package, bit, False, full)
                result.append(Incompatibility.of([term], Kind.UNAVAILABLE, detail=candidate.unavailable))
                continue
            for dependency in self.provider.dependencies(package, index):
                key = (dependency.package, dependency.mask, dependency.kind)
                mask, declared = shared.get(key, (0, []))
                declared.append((index, dependency))
                shared[key] = (mask | bit, declared)
        for mask, declared in shared.values():
            result.append(self._dependency_incompatibility(package, mask, tuple(declared)))
        return result

    def _dependency_incompatibility(self, package: str, mask: int,
                                    declared: tuple[tuple[int, Dependency], ...]) -> Incompatibility:
        dependency = declared[0][1]
        own = Term(package, mask, False, self.full(package))
        target = dependency.package
        target_full = self.full(target)
        if dependency.kind == "requires":
            other = Term(target, target_full & ~dependency.mask, True, target_full)
        elif dependency.kind == "conflicts":
            other = Term(target, dependency.mask, False, target_full)
        else:
            other = Term(target, target_full & ~dependency.mask, False, target_full)
        fields = {"package": package, "dependencies": declared}
        if target == package or (other.absent and other.mask == target_full):
            # A constraint on another version of the same package folds into one term, and
            # a requirement that no candidate satisfies leaves only the package's own term.
            return Incompatibility.of([own, other], Kind.DEPENDENCY, **fields)
        return Incompatibility({package: own, target: other}, Kind.DEPENDENCY, **fields)
