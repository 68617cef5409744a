"""Explain a failed resolution as numbered sentences a person can follow.

The derivation graph of the final incompatibility is walked from its leaves (facts
from descriptors and the assembly) to the root, one sentence per derived fact, in the
style of PubGrub's error reports. A derived fact that is used more than once gets a
number so later sentences can refer back to it.
"""

from __future__ import annotations

from collections import Counter

from moby_asm.resolve.provider import Provider
from moby_asm.resolve.terms import Incompatibility, Kind, Term


def explain(failure: Incompatibility, provider: Provider) -> str:
    return _Explainer(provider).run(failure)


class _Explainer:
    def __init__(self, provider: Provider):
        self.provider = provider
        self.lines: list[list] = []  # [text, number or None]
        self.numbers: dict[int, int] = {}
        self.uses: Counter[int] = Counter()

    def run(self, failure: Incompatibility) -> str:
        if not failure.derived:
            return f"Because {self.text(failure)}, no selection exists."
        self._count(failure, set())
        self._visit(failure)
        width = len(str(len(self.numbers)))
        rendered = []
        for text, number in self.lines:
            if number:
                prefix = f"({number}) ".ljust(width + 3)
            elif self.numbers:
                prefix = " " * (width + 3)
            else:
                prefix = ""
            rendered.append(prefix + text)
        return "\n".join(rendered)

    def _count(self, incompatibility: Incompatibility, seen: set[int]) -> None:
        for cause in incompatibility.causes or ():
            if cause.derived:
                self.uses[id(cause)] += 1
                if id(cause) not in seen:
                    seen.add(id(cause))
                    self._count(cause, seen)

    def _write(self, text: str, numbered: bool, incompatibility: Incompatibility) -> None:
        number = None
        if numbered:
            number = len(self.numbers) + 1
            self.numbers[id(incompatibility)] = number
        self.lines.append([text, number])

    def _ref(self, incompatibility: Incompatibility) -> str:
        number = self.numbers.get(id(incompatibility))
        return self.text(incompatibility) + (f" ({number})" if number else "")

    def _visit(self, incompatibility: Incompatibility, force_number: bool = False) -> None:
        numbered = force_number or self.uses[id(incompatibility)] > 1
        first, second = incompatibility.causes
        conclusion = self.text(incompatibility)
        if first.derived and second.derived:
            self._visit_both_derived(first, second, conclusion, numbered, incompatibility)
        elif first.derived or second.derived:
            derived, external = (first, second) if first.derived else (second, first)
            if id(derived) in self.numbers:
                self._write(f"Because {self.text(external)} and {self._ref(derived)}, {conclusion}.",
                            numbered, incompatibility)
            else:
                self._visit(derived)
                self._write(f"And because {self.text(external)}, {conclusion}.", numbered, incompatibility)
        else:
            self._write(f"Because {self.text(first)} and {self.text(second)}, {conclusion}.", numbered, incompatibility)

    def _visit_both_derived(self, first, second, conclusion, numbered, incompatibility) -> None:
        first_known, second_known = id(first) in self.numbers, id(second) in self.numbers
        if first_known and second_known:
            self._write(f"Because {self._ref(first)} and {self._ref(second)}, {conclusion}.", numbered, incompatibility)
        elif first_known or second_known:
            known, unknown = (first, second) if first_known else (second, first)
            self._visit(unknown)
            self._write(f"And because {self._ref(known)}, {conclusion}.", numbered, incompatibility)
        else:
            self._visit(first, force_number=True)
            self._visit(second)
            self._write(f"And because {self._ref(first)}, {conclusion}.", numbered, incompatibility)

    def text(self, incompatibility: Incompatibility) -> str:
        kind = incompatibility.kind
        if kind is Kind.DEPENDENCY:
            return self._dependency_text(incompatibility)
        if kind is Kind.UNAVAILABLE:
            (term,) = incompatibility.terms.values()
            return f"{self.term(term)} is not available: {incompatibility.detail}"
        if kind is Kind.NO_VERSIONS:
            (term,) = incompatibility.terms.values()
            return f"no version of {self.term(term, bare=True)} meets every constraint"
        return self._derived_text(incompatibility)

    def _dependency_text(self, incompatibility: Incompatibility) -> str:
        """Word a dependency; one that several versions declare alike names every declaration."""
        declared = incompatibility.dependencies
        dependency = declared[0][1]
        texts = {d.text for _, d in declared}
        if len(texts) == 1:
            subject = self.provider.describe(incompatibility.package, _mask(declared))
            return self._clause(subject, dependency, [d for _, d in declared], incompatibility)
        clauses = [self._clause(self.provider.describe(incompatibility.package, 1 << index), d, [d], incompatibility)
                   for index, d in declared]
        return " and ".join(clauses)

    def _clause(self, subject: str, dependency, declared: list, incompatibility: Incompatibility) -> str:
        places = [self.provider.locate(d.origin) for d in declared if d.origin]
        where = f" ({', '.join(dict.fromkeys(places))})" if places else ""
        if dependency.kind == "conflicts":
            return f"{subject} conflicts with {dependency.text}{where}"
        if dependency.kind == "optional":
            return f"{subject} allows only {dependency.text} if it is selected{where}"
        text = f"{subject} requires {dependency.text}{where}"
        if dependency.package not in incompatibility.terms:
            text += f", which no version of {self.provider.describe(dependency.package, 0)} matches"
        return text

    def _derived_text(self, incompatibility: Incompatibility) -> str:
        terms = list(incompatibility.terms.values())
        root = self.provider.root
        if not terms or (len(terms) == 1 and terms[0].package == root):
            return f"{self.provider.describe(root, 1)} cannot be composed"
        if len(terms) == 1:
            (term,) = terms
            if term.positive:
                return f"{self.term(term)} cannot be selected"
            return f"{self.term(term.inverse())} is required"
        if len(terms) == 2:
            positive = [t for t in terms if t.positive]
            negative = [t for t in terms if not t.positive]
            if len(positive) == 1:
                return f"{self.term(positive[0])} requires {self.term(negative[0].inverse())}"
            if len(positive) == 2:
                first, second = sorted(positive, key=lambda t: t.package != root)
                if first.package == root:
                    return f"{self.term(first)} cannot include {self.term(second)}"
                return f"{self.term(first)} is incompatible with {self.term(second)}"
        parts = [self.term(t) if t.positive else f"not {self.term(t.inverse())}" for t in terms]
        return "these cannot all hold: " + "; ".join(parts)

    def term(self, term: Term, bare: bool = False) -> str:
        if term.package == self.provider.root:
            return self.provider.describe(term.package, term.mask)
        if bare:
            return self.provider.describe(term.package, 0)
        return self.provider.describe(term.package, term.mask)


def _mask(declared) -> int:
    mask = 0
    for index, _ in declared:
        mask |= 1 << index
    return mask
