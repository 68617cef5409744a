"""Semantic versions (semver.org 2.0.0) and ranges with npm's semantics.

Range syntax is parsed by `nodesemver`, the Python port of npm's `semver` package:
comparisons, `^`, `~`, x-ranges (`1.x`, `1.2.*`), hyphen ranges (`1.2 - 2.3.4`) and `||`.
Each comparator set becomes an interval of `Version`s, so that membership tests are
tuple comparisons. npm's prerelease rule applies: a prerelease such as `1.3.0-rc.1`
matches only when a comparator of the same set names a prerelease of `1.3.0`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

import nodesemver

from moby_asm.errors import InputError

_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class InvalidVersion(InputError):
    """A version or range string does not follow the syntax."""

    def __init__(self, text: str, reason: str, kind: str = "version"):
        self.text = text
        self.reason = reason
        super().__init__(f"invalid {kind} {text!r}: {reason}")


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A semantic version; ordering and equality ignore build metadata."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        if not isinstance(text, str):
            raise InvalidVersion(str(text), "a version must be a string such as 1.4.0")
        return _parse_version(text) if cls is Version else cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidVersion(str(text), "expected MAJOR.MINOR.PATCH, for example 1.4.0 or 2.0.0-rc.1")
        major, minor, patch, pre, build = match.groups()
        identifiers = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()
        return cls(int(major), int(minor), int(patch), identifiers, build or "")

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def sort_key(self) -> tuple:
        key = self.__dict__.get("_sort_key")
        if key is None:
            key = self._make_sort_key()
            object.__setattr__(self, "_sort_key", key)
        return key

    def _make_sort_key(self) -> tuple:
        # A release sorts after its prereleases; numeric identifiers sort before text.
        if not self.prerelease:
            return (self.release, 1, ())
        parts = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.release, 0, parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.sort_key == other.sort_key

    def __lt__(self, other: Version) -> bool:
        return self.sort_key < other.sort_key

    def __hash__(self) -> int:
        return hash(self.sort_key)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"


@dataclass(frozen=True)
class Interval:
    low: Version | None
    low_inclusive: bool
    high: Version | None
    high_inclusive: bool
    prerelease_releases: frozenset[tuple[int, int, int]]

    def contains(self, version: Version) -> bool:
        if version.prerelease and version.release not in self.prerelease_releases:
            return False
        if self.low is not None:
            if version < self.low or (version == self.low and not self.low_inclusive):
                return False
        if self.high is not None:
            if version > self.high or (version == self.high and not self.high_inclusive):
                return False
        return True


@dataclass(frozen=True)
class Range:
    """A version range such as `^1.2.0`, `>=1.0.0 <2.0.0 || 3.x`; `*` matches every release."""

    text: str
    intervals: tuple[Interval, ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        if not isinstance(text, str):
            raise InvalidVersion(str(text), "a range must be a string", "range")
        return _parse_range(text)

    @classmethod
    def _parse(cls, text: str) -> Range:
        if not isinstance(text, str):
            raise InvalidVersion(str(text), "a range must be a string", "range")
        try:
            parsed = nodesemver.make_range(text.strip() or "*", loose=False)
        except (ValueError, TypeError) as error:
            raise InvalidVersion(
                text, f"{error}; use forms such as ^1.2.0, ~1.2, >=1.0.0 <2.0.0 or 1.x", "range"
            ) from None
        return cls(text.strip() or "*", tuple(_interval(comparators) for comparators in parsed.set))

    @classmethod
    def any(cls) -> Range:
        return cls.parse("*")

    def contains(self, version: Version) -> bool:
        return any(interval.contains(version) for interval in self.intervals)

    def __str__(self) -> str:
        return self.text


def _interval(comparators) -> Interval:
    low, low_inclusive, high, high_inclusive = None, True, None, True
    prerelease_releases = set()
    for comparator in comparators:
        if comparator.value == "":
            continue
        version = Version.parse(str(comparator.semver))
        if version.prerelease:
            prerelease_releases.add(version.release)
        operator = comparator.operator
        if operator in (">", ">=", "", "="):
            inclusive = operator != ">"
            if low is None or version > low or (version == low and not inclusive):
                low, low_inclusive = version, inclusive
        if operator in ("<", "<=", "", "="):
            inclusive = operator != "<"
            if high is None or version < high or (version == high and not inclusive):
                high, high_inclusive = version, inclusive
    return Interval(low, low_inclusive, high, high_inclusive, frozenset(prerelease_releases))


@lru_cache(maxsize=65536)
def _parse_version(text: str) -> Version:
    # Versions are immutable, so parsing each distinct text once is safe and saves
    # most of the cost when a catalog names the same versions many times.
    return Version._parse(text)


@lru_cache(maxsize=65536)
def _parse_range(text: str) -> Range:
    return Range._parse(text)
