"""Choose the packages that a Debian source needs, the way apt chooses them for an install.

Each requested package takes its highest version that satisfies its constraint. Then
Pre-Depends and Depends are followed breadth first. A relation already met by a chosen
package, by name or by what it provides, is skipped. Otherwise its first alternative
that the index can satisfy is chosen, a real package before a virtual one. Essential
packages are assumed present unless the source asks for them, and excluded packages
count as present. Conflicts and Breaks are not checked.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from moby_asm.debian.index import PackageIndex, PackageRecord
from moby_asm.errors import ResolutionError

_COMPARE = {"<<": lambda c: c < 0, "<=": lambda c: c <= 0, "=": lambda c: c == 0, ">=": lambda c: c >= 0,
            ">>": lambda c: c > 0}


class UnsatisfiedPackage(ResolutionError):
    """A requested package or a dependency has no version in the suite's index."""


def satisfies(version: str, constraint: tuple[str, str] | None) -> bool:
    """Return whether a Debian `version` meets `constraint`, a pair such as ('>=', '1.6')."""
    if constraint is None:
        return True
    from debian.debian_support import version_compare

    operator, required = constraint
    return _COMPARE[operator](version_compare(version, required))


class Solver:
    """Resolves one Debian source against an index; `where` names the suite and mirrors for messages."""

    def __init__(self, index: PackageIndex, exclude: list[str], essential: bool, where: str):
        self.index = index
        self.exclude = set(exclude)
        self.essential = essential
        self.where = where
        self.chosen: dict[str, PackageRecord] = {}
        self.provided: dict[str, list[str | None]] = {}
        self.skipped_essential: set[str] = set()

    def solve(self, requested: list[dict[str, Any]]) -> list[PackageRecord]:
        """Return the chosen packages sorted by name; raise UnsatisfiedPackage naming the chain that failed."""
        queue: deque[tuple[list[dict[str, Any]], str]] = deque()
        for item in requested:
            self._choose(self._candidate(item, "requested"), queue)
        if self.essential:
            for name in self.index.essential():
                if name not in self.chosen:
                    self._choose(self._candidate({"name": name, "version": None}, "Essential"), queue)
        while queue:
            alternatives, parent = queue.popleft()
            if any(self._met(item) for item in alternatives):
                continue
            self._choose(self._first_available(alternatives, parent), queue)
        return [self.chosen[name] for name in sorted(self.chosen)]

    def _choose(self, record: PackageRecord | None, queue: deque) -> None:
        if record is None or record.name in self.chosen:
            return
        self.chosen[record.name] = record
        self.provided.setdefault(record.name, []).append(record.version)
        for item in record.provides():
            self.provided.setdefault(item["name"], []).append(item["version"][1] if item.get("version") else None)
        for alternatives in record.relations():
            queue.append((alternatives, f"{record.name} {record.version}"))

    def _met(self, item: dict[str, Any]) -> bool:
        name, constraint = item["name"], item.get("version")
        if name in self.exclude:
            return True
        versions = self.provided.get(name, ())
        return any(satisfies(v, constraint) if v is not None else constraint is None for v in versions)

    def _first_available(self, alternatives: list[dict[str, Any]], parent: str) -> PackageRecord | None:
        for item in alternatives:
            record = self._available(item)
            if record is not None:
                if record.essential and not self.essential:
                    self.skipped_essential.add(record.name)
                    return None
                return record
        required = " | ".join(_describe(item) for item in alternatives)
        raise UnsatisfiedPackage(f"{parent} depends on {required}, which {self.where} does not contain; "
                                 "add a mirror or suite that has it, or list it under 'exclude' if the "
                                 "component does not need it")

    def _available(self, item: dict[str, Any]) -> PackageRecord | None:
        constraint = item.get("version")
        for record in self.index.versions(item["name"]):
            if satisfies(record.version, constraint):
                return record
        for provider in self.index.providers(item["name"]):
            for record in self.index.versions(provider):
                if self._provides_matching(record, item["name"], constraint):
                    return record
        return None

    @staticmethod
    def _provides_matching(record: PackageRecord, name: str, constraint: tuple[str, str] | None) -> bool:
        """Return whether `record` provides `name`; a `constraint` needs a versioned Provides that meets it."""
        for provided in record.provides():
            if provided["name"] != name:
                continue
            version = provided.get("version")
            if constraint is None or (version is not None and satisfies(version[1], constraint)):
                return True
        return False

    def _candidate(self, item: dict[str, Any], role: str) -> PackageRecord | None:
        if item["name"] in self.exclude:
            return None
        record = self._available(item)
        if record is None:
            available = ", ".join(r.version for r in self.index.versions(item["name"])) or "none"
            raise UnsatisfiedPackage(f"{role} package {_describe(item)} is not in {self.where} "
                                     f"(versions there: {available}); check the name and version constraint")
        return record


def _describe(item: dict[str, Any]) -> str:
    version = item.get("version")
    return f"{item['name']} ({version[0]} {version[1]})" if version else item["name"]
