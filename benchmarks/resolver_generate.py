"""Seeded generators of the resolver benchmark's problems.

The synthetic catalog plants a solution. Every component has a planted release, its
newest one for nine components in ten. A planted release requires ranges that contain
the planted releases of its targets, and the assembly requirements contain planted
releases too, so every assembly is satisfiable. Releases newer than the planted one
require old releases of their targets, so resolvers that pick them may run into conflicts
deep in the graph. Older releases require target releases of about the same age.

The hard cases and the singletons are built so that the newest releases conflict and
only old ones lead to a solution.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from resolver_model import Catalog, Problem, Release, Requirement
from synthetic import WORDS, component_names

from moby_asm.versions import Range, Version

PLANTED_NEWEST = 0.9
"""Share of synthetic components whose newest release is the planted one."""

CORE_SHARE = 20
"""One component in CORE_SHARE is a core library that many components depend on."""

WINDOW = 200
"""A non-core component depends on components at most this many places after it."""


@dataclass
class SyntheticCatalog:
    """A generated catalog with the histories and planted releases it was built from."""

    catalog: Catalog
    names: list[str]
    histories: list[list[str]]
    planted: list[int]
    core_start: int


def synthetic_catalog(count: int, versions: tuple[int, int], seed: int,
                      planted_newest: float = PLANTED_NEWEST) -> SyntheticCatalog:
    """Generate `count` components with between `versions[0]` and `versions[1]` releases.

    `planted_newest` is the share of components whose newest release is planted. At 1.0
    the newest releases of all components are consistent, so resolving needs no backtracking.
    """
    rng = random.Random(seed)
    names = component_names(count)
    histories = [_history(rng, rng.randint(*versions)) for _ in names]
    planted = [_planted_index(rng, len(history), planted_newest) for history in histories]
    core_start = count - max(1, count // CORE_SHARE)
    targets = [_targets(rng, index, core_start, count) for index in range(count)]
    provides, capability_requires = _capabilities(rng, histories, planted, core_start)
    components = {}
    for index, name in enumerate(names):
        releases = []
        for position, version in enumerate(histories[index]):
            requires = [(names[target], _dependency_range(rng, histories, planted, index, target, position))
                        for target in targets[index]]
            requires += [requirement(position) for requirement in capability_requires.get(index, ())]
            provided = tuple((capability, aligned[position])
                             for capability, aligned in provides.get(index, ()))
            releases.append(Release(version, tuple(requires), provided))
        components[name] = releases
    return SyntheticCatalog(Catalog(components), names, histories, planted, core_start)


def synthetic_problem(generated: SyntheticCatalog, size: int, seed: int, name: str) -> Problem:
    """Return an assembly of `size` non-core components, half of them with a range."""
    rng = random.Random(f"{seed}-{size}")
    requires = []
    for index in rng.sample(range(generated.core_start), size):
        history = generated.histories[index]
        if rng.random() < 0.5:
            requires.append((generated.names[index], "*"))
        else:
            range_text = _range_containing(rng, history, generated.planted[index])
            requires.append((generated.names[index], range_text))
    return Problem(name, generated.catalog, requires)


def _history(rng: random.Random, count: int) -> list[str]:
    """Return `count` ascending versions, bumping patch, minor or major at random."""
    major, minor, patch = rng.choice((0, 1, 1, 2)), rng.randint(0, 3), 0
    result = [f"{major}.{minor}.{patch}"]
    while len(result) < count:
        roll = rng.random()
        if roll < 0.08:
            major, minor, patch = major + 1, 0, 0
        elif roll < 0.35:
            minor, patch = minor + 1, 0
        else:
            patch += 1
        result.append(f"{major}.{minor}.{patch}")
    return result


def _planted_index(rng: random.Random, count: int, planted_newest: float) -> int:
    if rng.random() < planted_newest:
        return count - 1
    return max(0, count - 1 - rng.randint(1, 3))


def _targets(rng: random.Random, index: int, core_start: int, count: int) -> list[int]:
    """Pick the components that `index` depends on: later ones nearby, and core libraries."""
    targets: set[int] = set()
    if index < core_start:
        nearby = range(index + 1, min(core_start, index + 1 + WINDOW))
        dependency_count = rng.choices((0, 1, 2, 3), weights=(45, 30, 15, 10))[0]
        targets.update(rng.sample(nearby, min(dependency_count, len(nearby))))
        core = range(core_start, count)
        dependency_count = rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
        targets.update(rng.sample(core, min(dependency_count, len(core))))
    else:
        later = range(index + 1, count)
        dependency_count = rng.choices((0, 1), weights=(60, 40))[0]
        targets.update(rng.sample(later, min(dependency_count, len(later))))
    return sorted(targets)


def _dependency_range(rng: random.Random, histories: list[list[str]], planted: list[int],
                      source: int, target: int, position: int) -> str:
    """Return the range that release `position` of `source` requires of `target`."""
    history = histories[target]
    if position == planted[source]:
        return _range_containing(rng, history, planted[target])
    if position > planted[source]:
        # A release newer than the planted one requires an old release of its target.
        old = rng.randint(0, max(0, planted[target] - 1))
        newest = Version.parse(history[planted[target]])
        text = _range_containing(rng, history, old)
        for _ in range(3):
            if not Range.parse(text).contains(newest):
                break
            text = _range_containing(rng, history, old)
        return text
    aligned = _aligned_index(position, len(histories[source]), len(history)) + rng.randint(-2, 2)
    return _range_containing(rng, history, min(len(history) - 1, max(0, aligned)))


def _range_containing(rng: random.Random, history: list[str], index: int) -> str:
    """Return a random caret, tilde, x or comparison range that contains `history[index]`."""
    target = Version.parse(history[index])
    for _ in range(4):
        text = _random_range(rng, history, index)
        if Range.parse(text).contains(target):
            return text
    return f">={history[index]}"


def _random_range(rng: random.Random, history: list[str], index: int) -> str:
    target = history[index]
    base = history[max(0, index - rng.randint(0, 3))]
    major, minor, _ = base.split(".")
    roll = rng.random()
    if roll < 0.40:
        return f"^{base}"
    if roll < 0.55:
        return f"~{base}"
    if roll < 0.62:
        return f"~{major}.{minor}"
    if roll < 0.75:
        return f">={base} <{int(major) + 1}.0.0"
    if roll < 0.82:
        return f">={base}"
    if roll < 0.88:
        return f"{major}.x"
    if roll < 0.93:
        return f">={base} <={target}"
    if roll < 0.97:
        return f"={target}"
    return "*"


def _capabilities(rng: random.Random, histories: list[list[str]], planted: list[int],
                  core_start: int):
    """Create capabilities, their providers and the components that require them.

    Returns the provided capabilities by component index, each as a name and the
    capability version of every release, and functions that build the capability
    requirement of each release of a requiring component.
    """
    provides: dict[int, list[tuple[str, list[str]]]] = {}
    requires: dict[int, list] = {}
    for number in range(max(2, core_start // 40)):
        capability = f"api-{WORDS[number % len(WORDS)]}-{number:03d}"
        api = _api_history(rng)
        providers = rng.sample(range(core_start), rng.randint(2, 5))
        for provider in providers:
            provides.setdefault(provider, []).append((capability, _aligned(api, len(histories[provider]))))
        anchor = rng.choice(providers)
        anchor_api = _aligned_index(planted[anchor], len(histories[anchor]), len(api))
        for user in rng.sample(range(core_start), max(1, core_start // 12)):
            if user in providers:
                continue
            requires.setdefault(user, []).append(
                _capability_requirement(rng, capability, api, anchor_api,
                                        planted[user], len(histories[user])))
    return provides, requires


def _aligned_index(position: int, count: int, other_count: int) -> int:
    """Map release `position` of `count` releases to the release of the same age among `other_count`."""
    return round(position * (other_count - 1) / max(1, count - 1))


def _aligned(api: list[str], count: int) -> list[str]:
    return [api[_aligned_index(position, count, len(api))] for position in range(count)]


def _api_history(rng: random.Random) -> list[str]:
    major, minor = rng.randint(1, 2), 0
    result = [f"{major}.{minor}.0"]
    for _ in range(rng.randint(2, 5)):
        if rng.random() < 0.3:
            major, minor = major + 1, 0
        else:
            minor += 1
        result.append(f"{major}.{minor}.0")
    return result


def _capability_requirement(rng: random.Random, capability: str, api: list[str], anchor: int,
                            planted: int, count: int):
    """Return a function from a release position to that release's capability requirement."""
    ranges = {}
    for position in range(count):
        index = anchor if position == planted else _aligned_index(position, count, len(api))
        ranges[position] = _range_containing(rng, api, index)
    return lambda position: (capability, ranges[position])


def deep_conflict(chains: int, depth: int, versions: int) -> Problem:
    """Chains whose newest releases lead, `depth` levels down, to a base that a pin excludes.

    Release k of every chain level requires release k of the next level, and the last
    level requires `deep-base ^k.0.0`, while every release of `deep-pin` requires
    `deep-base <2.0.0`, so only release 1 of every chain is part of a solution.
    """
    components = {"deep-base": [Release(f"{k}.0.0") for k in range(1, versions + 1)],
                  "deep-pin": [Release(f"{k}.0.0", (("deep-base", "<2.0.0"),))
                               for k in range(1, versions + 1)]}
    for chain in range(chains):
        for level in range(depth):
            below = f"deep-c{chain:02d}-l{level + 1:02d}" if level + 1 < depth else "deep-base"
            components[f"deep-c{chain:02d}-l{level:02d}"] = [
                Release(f"{k}.0.0", ((below, f"^{k}.0.0"),)) for k in range(1, versions + 1)]
    requires = [("deep-pin", "*")] + [(f"deep-c{chain:02d}-l00", "*") for chain in range(chains)]
    return Problem("deep-conflict", Catalog(components), requires)


def wide_conflict(packages: int, versions: int) -> Problem:
    """Packages whose newer half each requires its own major of a shared core.

    The newer half of `wide-pNNN`'s releases requires `wide-core ^(NNN+2).0.0`, which
    no other package accepts, and the older half requires `wide-core ^1.0.0`, so the
    only solutions take an old release of every package.
    """
    core = [Release(f"{major}.{minor}.0") for major in range(1, packages + 2) for minor in range(3)]
    components = {"wide-core": core}
    for number in range(packages):
        releases = []
        for k in range(1, versions + 1):
            major = number + 2 if k > versions // 2 else 1
            releases.append(Release(f"{k}.0.0", (("wide-core", f"^{major}.0.0"),)))
        components[f"wide-p{number:03d}"] = releases
    requires = [(f"wide-p{number:03d}", "*") for number in range(packages)]
    return Problem("wide-conflict", Catalog(components), requires)


def singletons(count: int, versions: int) -> Problem:
    """Component i at release v requires component i+1 at exactly v; the last has only v0.

    Only release 0.0.0 of the first component leads to a solution.
    """
    components = {}
    for index in range(count - 1):
        below = f"single-{index + 1:03d}"
        components[f"single-{index:03d}"] = [Release(f"{v}.0.0", ((below, f"={v}.0.0"),))
                                             for v in range(versions)]
    components[f"single-{count - 1:03d}"] = [Release("0.0.0")]
    requires: list[Requirement] = [("single-000", "*")]
    return Problem(f"singletons-{count}x{versions}", Catalog(components), requires)
