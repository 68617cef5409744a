"""A Packages index, read lazily: paragraphs are found by name and parsed only when asked for.

Parsing all 63,000 paragraphs of Debian's main index with python-debian takes about six
seconds, while a resolution visits a few hundred of them. So the index is split into
paragraphs once, keyed by `Package` and `Provides`, and each paragraph a resolution
reaches is parsed by python-debian then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from moby_asm.debian.model import parse_relation

_PACKAGE = re.compile(rb"^Package:[ \t]*(\S+)", re.MULTILINE)
_PROVIDES = re.compile(rb"^Provides:(.*(?:\n[ \t].*)*)", re.MULTILINE)


@dataclass(frozen=True)
class PackageRecord:
    """One binary package of an index: what the lock records, and its relations."""

    name: str
    version: str
    architecture: str
    filename: str
    sha256: str
    size: int
    mirror: str
    fields: Any

    @cached_property
    def parsed_version(self):
        from debian.debian_support import Version

        return Version(self.version)

    @property
    def essential(self) -> bool:
        return self.fields.get("Essential", "no") == "yes"

    def relations(self) -> list[list[dict[str, Any]]]:
        """Return Pre-Depends then Depends, each an AND of OR-lists."""
        text = ", ".join(value for value in (self.fields.get("Pre-Depends"), self.fields.get("Depends")) if value)
        return parse_relation(text) if text else []

    def provides(self) -> list[dict[str, Any]]:
        text = self.fields.get("Provides")
        return [alternatives[0] for alternatives in parse_relation(text)] if text else []

    def record(self) -> dict[str, Any]:
        """Return the lock entry that fetches exactly this package's bytes again."""
        return {"name": self.name, "version": self.version, "architecture": self.architecture,
                "filename": self.filename, "sha256": self.sha256, "size": self.size}


class PackageIndex:
    """The packages of one or more Packages files, by name and by the virtual names they provide."""

    def __init__(self) -> None:
        self._paragraphs: dict[str, list[tuple[bytes, str]]] = {}
        self._providers: dict[str, list[str]] = {}
        self._records: dict[str, list[PackageRecord]] = {}

    def add(self, data: bytes, mirror: str) -> None:
        """Add the paragraphs of one Packages file served by `mirror`."""
        for paragraph in data.split(b"\n\n"):
            # Package is the first field of every paragraph that Debian's archive tools write.
            found = _PACKAGE.match(paragraph) or _PACKAGE.search(paragraph)
            if found is None:
                continue
            name = found.group(1).decode("ascii", "replace")
            self._paragraphs.setdefault(name, []).append((paragraph, mirror))
            match = _PROVIDES.search(paragraph) if b"Provides:" in paragraph else None
            if match:
                for provided in re.split(rb"[,\s]+", re.sub(rb"\([^)]*\)", b"", match.group(1))):
                    if provided:
                        self._providers.setdefault(provided.decode("ascii", "replace").partition(":")[0], []).append(
                            name)

    def versions(self, name: str) -> list[PackageRecord]:
        """Return every record of a real package called `name`, highest version first."""
        if name not in self._records:
            records = [_checked_record(name, paragraph, mirror) for paragraph, mirror in self._paragraphs.get(name, ())]
            records.sort(key=lambda record: record.parsed_version, reverse=True)
            self._records[name] = records
        return self._records[name]

    def providers(self, name: str) -> list[str]:
        """Return the packages that list `name` under Provides, in index order, each once."""
        return list(dict.fromkeys(self._providers.get(name, ())))

    def essential(self) -> list[str]:
        """Return the names of the packages marked `Essential: yes`."""
        return sorted(name for name, paragraphs in self._paragraphs.items()
                      if any(b"\nEssential: yes" in paragraph for paragraph, _ in paragraphs))

    def __contains__(self, name: str) -> bool:
        return name in self._paragraphs


def _checked_record(name: str, paragraph: bytes, mirror: str) -> PackageRecord:
    from moby_asm.debian.errors import ArchiveError

    try:
        record = _record(paragraph, mirror)
        record.relations()
        record.provides()
    except KeyError as error:
        raise ArchiveError(f"the index of {mirror} has an entry for package {name} without the {error} field; "
                           "the archive is damaged, so use another mirror") from None
    except ValueError as error:
        raise ArchiveError(f"the index of {mirror} has an invalid entry for package {name} ({error}); "
                           "the archive is damaged, so use another mirror") from None
    if len(record.sha256) != 64:
        raise ArchiveError(f"the index of {mirror} lists no valid SHA256 for package {name}; the archive is "
                           "damaged, so use another mirror")
    return record


def _record(paragraph: bytes, mirror: str) -> PackageRecord:
    from debian.deb822 import Packages

    fields = Packages(paragraph.decode("utf-8", "replace"))
    return PackageRecord(fields["Package"], fields["Version"], fields.get("Architecture", ""), fields["Filename"],
                         fields["SHA256"], int(fields["Size"]), mirror, fields)
