"""Trust policies: which images and templates must be signed, and by which keys.

A policy is a list of rules per kind. A rule's `match` is a shell-style pattern over the
repository, written as moby-asm normalises it (`docker.io/linuxkit/*`,
`127.0.0.1:5000/templates/*`; an `oci://` prefix is allowed for templates). Every rule
that matches must be satisfied by a signature from one of its keys. Key paths are
relative to the file that declares the rule. The assembly's `trust` section and the
`trust` section of the user's configuration file both apply.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from moby_asm.documents import StrictModel
from moby_asm.errors import InputError, MobyAsmError

OCI_PREFIX = "oci://"


class TrustRule(StrictModel):
    """A pattern over repositories and the public keys whose signatures they need."""

    match: str
    keys: list[str] = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _pattern(cls, value: str) -> str:
        bare = value.removeprefix(OCI_PREFIX)
        last = bare.rsplit("/", 1)[-1]
        if not bare or bare != bare.lower() or "@" in bare or (":" in last and "/" in bare):
            raise ValueError(f"invalid match {value!r}: write a repository pattern in lowercase without tag or "
                             "digest, such as docker.io/linuxkit/* or 127.0.0.1:5000/team/app")
        return value


class TrustPolicy(StrictModel):
    """The trust section of an assembly or of the user's configuration file."""

    images: list[TrustRule] = Field(default_factory=list)
    templates: list[TrustRule] = Field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """A rule with its key files resolved, and the file that declared it."""

    match: str
    keys: tuple[Path, ...]
    declared_in: Path


class PolicyViolation(MobyAsmError):
    """Something a policy rule covers is not signed by one of the rule's keys."""


@dataclass(frozen=True)
class Policy:
    images: tuple[Rule, ...] = ()
    templates: tuple[Rule, ...] = ()

    def rules_for(self, kind: str, reference: str) -> list[Rule]:
        """Return the rules of `kind` ("images" or "templates") whose pattern matches the reference's repository."""
        repository = repository_of(reference)
        return [rule for rule in getattr(self, kind) if fnmatch.fnmatchcase(repository, normalized_pattern(rule.match))]


WILDCARD = "wildcard0"


def normalized_pattern(pattern: str) -> str:
    """Spell a pattern's repository the way references are normalised: linuxkit/* becomes docker.io/linuxkit/*."""
    from moby_asm.registry.errors import InvalidReference

    bare = pattern.removeprefix(OCI_PREFIX)
    if bare == "*":
        return bare
    placeholder = bare.replace("*", WILDCARD).replace("?", WILDCARD)
    try:
        return repository_of(placeholder).replace(WILDCARD, "*")
    except InvalidReference:
        return bare


def repository_of(reference: str) -> str:
    from moby_asm.registry.reference import parse_reference

    return parse_reference(reference.removeprefix(OCI_PREFIX)).name


def load_policy(assembly_policy: TrustPolicy | None = None, assembly_file: Path | None = None) -> Policy:
    """Combine the assembly's policy with the user's; the user's configuration file is read here."""
    from moby_asm.catalog.loading import config_file, user_config

    parts = [(user_config().trust, config_file())]
    if assembly_policy is not None and assembly_file is not None:
        parts.append((assembly_policy, assembly_file))
    images, templates = [], []
    for policy, declared_in in parts:
        if policy is None:
            continue
        images += [_resolved(rule, declared_in) for rule in policy.images]
        templates += [_resolved(rule, declared_in) for rule in policy.templates]
    return Policy(tuple(images), tuple(templates))


def _resolved(rule: TrustRule, declared_in: Path) -> Rule:
    keys = tuple((declared_in.parent / Path(key).expanduser()) for key in rule.keys)
    return Rule(rule.match, keys, declared_in)


def enforce(policy: Policy, kind: str, reference: str, *, insecure: set[str] | None = None,
            mirrors: dict[str, str] | None = None) -> list[str]:
    """Verify `reference` under every matching rule; return the key ids that verified it.

    Raise PolicyViolation naming the reference, the rule, its keys and why each failed.
    """
    from moby_asm.trust.errors import TrustError
    from moby_asm.trust.signatures import verify

    verified = []
    for rule in policy.rules_for(kind, reference):
        keys = [_public_key(path, rule) for path in rule.keys]
        try:
            result = verify(reference, keys, insecure=insecure or set(), mirrors=mirrors)
        except TrustError as error:
            raise PolicyViolation(f"{reference} must be signed by {', '.join(str(k) for k in rule.keys)} "
                                  f"(rule {rule.match!r} in {rule.declared_in}): {error}") from error
        verified.append(result.key_id)
    return verified


def _public_key(path: Path, rule: Rule):
    from moby_asm.trust.keys import load_public_key

    try:
        return load_public_key(path)
    except InputError as error:
        raise InputError(f"{rule.declared_in}: trust rule {rule.match!r}: {error}") from error


def enforce_all(policy: Policy, kind: str, references: list[str], **options) -> dict[str, list[str]]:
    """Verify every reference; raise one PolicyViolation that lists each one that failed."""
    verified, failures = {}, []
    for reference in references:
        try:
            verified[reference] = enforce(policy, kind, reference, **options)
        except PolicyViolation as error:
            failures.append(str(error))
    if failures:
        raise PolicyViolation("\n".join(failures))
    return verified
