"""Debian mirrors: those named by the user, or else the system's apt sources.

apt's own configuration is read as apt reads it: `sources.list` and `sources.list.d/*.list`
in the one-line format, and `sources.list.d/*.sources` in deb822. A mirror's keyring is
its `Signed-By` file; without one, apt's trusted keyrings under `/etc/apt` apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moby_asm.errors import InputError

APT_ROOT = Path("/etc/apt")


class NoMirror(InputError):
    """No configured mirror serves the suite that a component requests."""


@dataclass(frozen=True)
class Mirror:
    """A Debian archive URI, the suites it serves (empty: any), and the keyrings that sign it."""

    uri: str
    suites: tuple[str, ...]
    keyrings: tuple[Path, ...]
    origin: str

    def serves(self, suite: str) -> bool:
        return not self.suites or suite in self.suites


def configured_mirrors(uris: list[str], keyring: Path | None, apt_root: Path = APT_ROOT) -> list[Mirror]:
    """Return the mirrors given by the user (with `keyring`, else apt's trusted keys), or else apt's sources."""
    if uris:
        keyrings = (keyring,) if keyring else trusted_keyrings(apt_root)
        return [Mirror(_check_uri(uri), (), keyrings, "--debian-mirror") for uri in uris]
    return apt_sources(apt_root)


def mirrors_for(mirrors: list[Mirror], suite: str, component: str) -> list[Mirror]:
    """Return the mirrors that serve `suite`; raise NoMirror naming the fix when none does."""
    serving = [mirror for mirror in mirrors if mirror.serves(suite)]
    if not serving:
        known = ", ".join(f"{m.uri} ({' '.join(m.suites)})" for m in mirrors) or "none"
        raise NoMirror(f"component {component!r} requests Debian suite {suite!r}, which no configured mirror "
                       f"serves (configured: {known}); add a mirror with --debian-mirror URI or under "
                       "'debian: mirrors:' in the configuration file")
    return serving


def apt_sources(apt_root: Path = APT_ROOT) -> list[Mirror]:
    """Return the `deb` entries of apt's sources, in the order apt reads them."""
    mirrors: list[Mirror] = []
    parts = apt_root / "sources.list.d"
    files = [apt_root / "sources.list"] + (sorted(parts.iterdir()) if parts.is_dir() else [])
    for path in files:
        if path.suffix == ".sources" and path.is_file():
            mirrors += _deb822_sources(path, apt_root)
        elif (path.suffix == ".list" or path.name == "sources.list") and path.is_file():
            mirrors += _one_line_sources(path, apt_root)
    return mirrors


def trusted_keyrings(apt_root: Path = APT_ROOT) -> tuple[Path, ...]:
    """Return apt's keyrings for sources without `Signed-By`: trusted.gpg and trusted.gpg.d/*."""
    parts = apt_root / "trusted.gpg.d"
    found = [apt_root / "trusted.gpg"] + (sorted(parts.iterdir()) if parts.is_dir() else [])
    return tuple(path for path in found if path.is_file() and path.suffix in (".gpg", ".asc"))


def _deb822_sources(path: Path, apt_root: Path) -> list[Mirror]:
    from debian.deb822 import Deb822

    mirrors = []
    with open(path, encoding="utf-8", errors="replace") as stream:
        for paragraph in Deb822.iter_paragraphs(stream, use_apt_pkg=False):
            if "deb" not in paragraph.get("Types", "").split() or paragraph.get("Enabled", "yes") == "no":
                continue
            keyrings = _keyrings(paragraph.get("Signed-By"), apt_root)
            for uri in paragraph.get("URIs", "").split():
                mirrors.append(Mirror(uri.rstrip("/"), tuple(paragraph.get("Suites", "").split()), keyrings, str(path)))
    return mirrors


def _one_line_sources(path: Path, apt_root: Path) -> list[Mirror]:
    mirrors = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        options: dict[str, str] = {}
        if words[1].startswith("["):
            end = next((i for i, word in enumerate(words) if word.endswith("]")), len(words) - 1)
            for option in " ".join(words[1:end + 1]).strip("[]").split():
                key, _, value = option.partition("=")
                options[key] = value
            words = [words[0], *words[end + 1:]]
        if len(words) >= 3:
            mirrors.append(Mirror(words[1].rstrip("/"), (words[2],), _keyrings(options.get("signed-by"), apt_root),
                                  str(path)))
    return mirrors


def _keyrings(signed_by: str | None, apt_root: Path) -> tuple[Path, ...]:
    if not signed_by or signed_by.lstrip().startswith("-----BEGIN"):
        return trusted_keyrings(apt_root)
    return tuple(Path(item) for item in signed_by.replace(",", " ").split())


def _check_uri(uri: str) -> str:
    if not uri.startswith(("http://", "https://", "file:/")):
        raise InputError(f"--debian-mirror {uri!r} is not an archive URI; give http://HOST/PATH, "
                         "https://HOST/PATH or file:///PATH, the folder that holds 'dists' and 'pool'")
    return uri.rstrip("/")
