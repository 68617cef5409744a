"""Find a template by what the user typed: a shipped name, a folder, a git URL or an oci:// reference.

Each source gives a local folder to render, a digest that pins what was rendered, and
whether its hooks may run. Shipped and local templates are trusted. Templates from git
or a registry run hooks only with `--trust`, or when their reference starts with an
entry of `trusted_templates` in the user's configuration file.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moby_asm.errors import InputError
from moby_asm.shipped import shipped_folder
from moby_asm.treehash import tree_digest

DEFAULT_TEMPLATE = "minimal-node"
GIT_URL = re.compile(r"^(git\+|git@|git://|ssh://|file://|https?://)")
CLONE_TIMEOUT_SECONDS = 300


class TemplateNotFound(InputError):
    """The template reference names no template."""


@dataclass(frozen=True)
class TemplateSource:
    """A template ready to render: its folder, how it was named, a pinning digest and whether hooks may run."""

    reference: str
    kind: str
    folder: Path
    digest: str
    trusted: bool


def shipped_templates() -> list[str]:
    """Return the names of the shipped templates."""
    root = shipped_folder("templates")
    return sorted(path.parent.name for path in root.glob("*/cookiecutter.json"))


@contextmanager
def open_template(reference: str | None, trust: bool = False, insecure: set[str] | None = None,
                  project: Path | None = None) -> Iterator[TemplateSource]:
    """Yield the template `reference` names; fetched templates live in a temporary folder until the block ends.

    A registry template is verified under the user's template rules, and under those of
    `project`'s assembly when given.
    """
    reference = reference or DEFAULT_TEMPLATE
    if reference.startswith("oci://"):
        with tempfile.TemporaryDirectory(prefix="moby-asm-template-") as scratch:
            yield _pulled(reference, Path(scratch) / "template", trust, insecure or set(), project)
    elif GIT_URL.match(reference):
        with tempfile.TemporaryDirectory(prefix="moby-asm-template-") as scratch:
            yield _cloned(reference, Path(scratch) / "template", trust)
    else:
        yield _local(reference)


def _local(reference: str) -> TemplateSource:
    shipped = shipped_folder("templates") / reference
    if "/" not in reference and (shipped / "cookiecutter.json").is_file():
        return TemplateSource(reference, "shipped", shipped, _folder_digest(shipped), True)
    folder = Path(reference).expanduser()
    if (folder / "cookiecutter.json").is_file():
        return TemplateSource(str(folder.resolve()), "folder", folder.resolve(), _folder_digest(folder), True)
    raise TemplateNotFound(f"template {reference!r} not found: give a shipped template "
                           f"({', '.join(shipped_templates())}), a folder holding cookiecutter.json, "
                           "a git URL or oci://HOST/REPOSITORY:TAG")


def _cloned(url: str, folder: Path, trust: bool) -> TemplateSource:
    from moby_asm.tools import run_tool

    source, _, revision = url.removeprefix("git+").partition("#")
    command = ["git", "clone", "--quiet", "--depth", "1", *(["--branch", revision] if revision else []),
               "--", source, str(folder)]
    run_tool(command, hint="install git (Debian package git)", timeout=CLONE_TIMEOUT_SECONDS)
    commit = run_tool(["git", "-C", str(folder), "rev-parse", "HEAD"]).decode().strip()
    shutil.rmtree(folder / ".git")
    _require_cookiecutter(folder, url)
    return TemplateSource(url, "git", folder, f"git:{commit}", trust or is_trusted(url))


def _pulled(reference: str, folder: Path, trust: bool, insecure: set[str], project: Path | None) -> TemplateSource:
    from moby_asm.templates.artifacts import pull_template

    check_signature(reference, insecure, project)
    artifact = pull_template(reference, folder, insecure=insecure)
    _require_cookiecutter(folder, reference)
    return TemplateSource(reference, "oci", folder, artifact.digest, trust or is_trusted(reference))


def check_signature(reference: str, insecure: set[str], project: Path | None = None) -> list[str]:
    """Verify a registry template under the `trust.templates` rules of the user and of `project`'s assembly."""
    from moby_asm.assembly.model import ASSEMBLY_FILE, load_assembly
    from moby_asm.trust.policy import enforce, load_policy

    assembly_file = project / ASSEMBLY_FILE if project is not None else None
    assembly_policy = load_assembly(assembly_file)[0].trust if assembly_file and assembly_file.is_file() else None
    return enforce(load_policy(assembly_policy, assembly_file), "templates", reference, insecure=insecure)


def _require_cookiecutter(folder: Path, reference: str) -> None:
    if not (folder / "cookiecutter.json").is_file():
        raise TemplateNotFound(f"{reference} is not a cookiecutter template: it has no cookiecutter.json at its root")


def _folder_digest(folder: Path) -> str:
    return "sha256:" + tree_digest(folder.resolve())


def is_trusted(reference: str) -> bool:
    """Return whether the user's configuration trusts the hooks of templates under `reference`."""
    from moby_asm.catalog.loading import user_config

    return any(_under(reference, prefix) for prefix in user_config().trusted_templates if prefix)


def _under(reference: str, prefix: str) -> bool:
    """Return whether `prefix` names `reference` or a whole part of it: a registry, repository or URL path."""
    if not reference.startswith(prefix):
        return False
    return len(reference) == len(prefix) or prefix[-1] in "/:#@" or reference[len(prefix)] in "/:#@"
