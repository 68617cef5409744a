"""Check LinuxKit YAML configs against `schema.json` and word every error for people.

jsonschema is imported inside the functions that validate, because importing it adds
about 0.1 s (python -X importtime, jsonschema 4.26, 2-CPU machine) and most commands never
check a LinuxKit config.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Any

from yaml.nodes import ScalarNode

from moby_asm.documents import Document, InvalidDocuments
from moby_asm.documents.diagnostics import suggest

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

Location = tuple[str | int, ...]
RawText = Callable[[Location], str | None]

SECTIONS = ("kernel", "init", "onboot", "onshutdown", "services", "files", "volumes")
"""Top-level keys that mark a mapping as a LinuxKit config (`trust` alone does not)."""

FILE_NAMES = ("linuxkit.yml", "linuxkit.yaml")
"""File names that are LinuxKit configs whatever keys they contain."""

_MOBY_ASM_KEYS = ("versions", "requires")
"""Keys of component descriptors and assemblies, which never appear in a LinuxKit config."""


@dataclass(frozen=True)
class Problem:
    """One invalid part of a config. With `at_key` it is shown at the mapping key."""

    loc: Location
    message: str
    at_key: bool = False


def is_linuxkit_config(document: Document) -> bool:
    """Return whether a file is a LinuxKit config, by its name or by its top-level keys."""
    if document.path.name in FILE_NAMES:
        return True
    data = document.data
    if not isinstance(data, dict) or any(key in data for key in _MOBY_ASM_KEYS):
        return False
    if document.path.name.startswith(("docker-compose.", "compose.")) or "version" in data and "services" in data:
        # A Compose file also has a top-level 'services' key, as a mapping.
        return False
    return any(key in data for key in SECTIONS)


@functools.cache
def load_schema() -> dict[str, Any]:
    """Return the JSON Schema of LinuxKit configs. It is cached, so callers must not change it."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator() -> Validator:
    from jsonschema.validators import validator_for

    schema = load_schema()
    return validator_for(schema)(schema)


def validate_linuxkit(document: Document) -> None:
    """Check a loaded LinuxKit config and raise `InvalidDocuments` listing every problem."""
    if document.data is None:
        message = "file is empty; expected a mapping with sections such as 'kernel' and 'services'"
        raise InvalidDocuments([document.diagnostic((), message)])
    problems = find_problems(document.data, functools.partial(_raw_text, document))
    if problems:
        raise InvalidDocuments(
            document.diagnostic(problem.loc, problem.message, problem.at_key) for problem in problems
        )


def check_config(data: dict[str, Any]) -> list[str]:
    """Return a message for each problem in a config held in memory, or [] when it is valid."""
    return [problem.message for problem in find_problems(data)]


def find_problems(data: Any, raw_text: RawText | None = None) -> list[Problem]:
    """Return the schema errors of `data` and the problems that the schema cannot express.

    `raw_text` returns a scalar as written in the file, so that messages can show `0644`
    where YAML has already turned it into the number 420.
    """
    raw_text = raw_text or (lambda loc: None)
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_explain(error, raw_text))
    problems.extend(_duplicate_services(data))
    return problems


def _raw_text(document: Document, loc: Location) -> str | None:
    node = document.node_at(loc)
    return node.value if isinstance(node, ScalarNode) else None


# Turning jsonschema errors into messages


def _explain(error: ValidationError, raw_text: RawText) -> list[Problem]:
    loc: Location = tuple(error.absolute_path)
    explain = _EXPLAINERS.get(str(error.validator), _explain_other)
    return explain(error, loc, raw_text)


def _explain_unknown_keys(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    known = list(error.schema.get("properties", {}))
    unknown = [key for key in error.instance if key not in known]
    problems = []
    for key in unknown:
        message = f"unknown key {str(key)!r}{_inside(loc)}" + suggest(str(key), known)
        problems.append(Problem((*loc, key), message, at_key=True))
    return problems


def _explain_missing_keys(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    missing = [key for key in error.validator_value if key not in error.instance]
    return [Problem(loc, f"missing required key {key!r}{_inside(loc)}") for key in missing]


def _explain_type(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    expected = error.validator_value
    if not isinstance(expected, list):
        expected = [expected]
    value, raw = error.instance, raw_text(loc)
    message = f"expected {_type_names(expected)} for {_subject(loc)}, got {_describe(value, raw)}"
    if "string" in expected and raw is not None and isinstance(value, (bool, int, float, date)):
        message += f'; quote it as "{raw}" to keep it a string'
    return [Problem(loc, message, at_key=_is_container_or_empty(value))]


def _explain_enum(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    choices = [str(choice) for choice in error.validator_value]
    expected = " or ".join(repr(choice) for choice in choices)
    shown = _show(error.instance, raw_text(loc))
    message = f"invalid value {shown} for {_subject(loc)}; expected {expected}"
    if isinstance(error.instance, str):
        # Compare in lower case so that 'OCI' still finds 'oci'.
        message += suggest(error.instance.lower(), choices)
    return [Problem(loc, message)]


def _explain_pattern(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    expected = error.schema.get("description") or f"a value matching {error.validator_value}"
    return [Problem(loc, f"invalid value {error.instance!r} for {_subject(loc)}; expected {expected}")]


def _explain_min_length(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    if error.validator_value == 1:
        return [Problem(loc, f"{_subject(loc)} must not be empty", at_key=True)]
    return [Problem(loc, f"{_subject(loc)} must be at least {error.validator_value} characters long")]


def _explain_range(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    bound = "at least" if error.validator == "minimum" else "at most"
    shown = _show(error.instance, raw_text(loc))
    message = f"{_subject(loc)} must be {bound} {error.validator_value}, got {shown}"
    return [Problem(loc, message)]


def _explain_exactly_one(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    """Explain a `oneOf` whose branches each require one key, such as a file's content keys."""
    if not isinstance(error.instance, dict):
        return []  # The type error of the same value already reports the problem.
    branches = error.validator_value
    if not all(len(branch.get("required", ())) == 1 for branch in branches):
        return _explain_other(error, loc, raw_text)
    keys = [branch["required"][0] for branch in branches]
    present = [key for key, branch in zip(keys, branches, strict=True) if _matches(branch, error.instance)]
    choices = _join([repr(key) for key in keys], "or")
    if not present:
        return [Problem(loc, f"{_subject(loc)} sets none of {choices}; set exactly one")]
    found = _join([repr(key) for key in present], "and")
    message = f"{_subject(loc)} sets {found}; set exactly one of {choices}"
    return [Problem((*loc, present[1]), message, at_key=True)]


def _matches(schema: dict[str, Any], instance: Any) -> bool:
    return _validator().evolve(schema=schema).is_valid(instance)


def _explain_other(error: ValidationError, loc: Location, raw_text: RawText) -> list[Problem]:
    return [Problem(loc, f"invalid value for {_subject(loc)}: {error.message}")]


_EXPLAINERS = {
    "additionalProperties": _explain_unknown_keys,
    "required": _explain_missing_keys,
    "type": _explain_type,
    "enum": _explain_enum,
    "pattern": _explain_pattern,
    "minLength": _explain_min_length,
    "minimum": _explain_range,
    "maximum": _explain_range,
    "oneOf": _explain_exactly_one,
}


# Checks that JSON Schema cannot express


def _duplicate_services(data: Any) -> list[Problem]:
    """Report each service that reuses an earlier name, because containerd ids are unique."""
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list):
        return []
    first_index: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(services):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in first_index:
            message = (
                f"duplicate service name {name!r}; service names must be unique "
                f"(services[{first_index[name]}] uses it too)"
            )
            problems.append(Problem(("services", index, "name"), message))
        else:
            first_index[name] = index
    return problems


# Wording helpers


def format_path(loc: Sequence[str | int]) -> str:
    """Return a location as people write it, such as `services[0].runtime.bindNS`."""
    text = ""
    for step in loc:
        if isinstance(step, int):
            text += f"[{step}]"
        elif text:
            text += f".{step}"
        else:
            text = step
    return text


def _inside(loc: Location) -> str:
    return f" in {format_path(loc)}" if loc else ""


def _subject(loc: Location) -> str:
    """Name the value at `loc`: "'image' in services[0]", "env[1] in services[0]", "init[2]"."""
    if not loc:
        return "the top level"
    names = [index for index, step in enumerate(loc) if isinstance(step, str)]
    start = names[-1] if names else 0
    tail, parent = loc[start:], loc[:start]
    named = repr(tail[0]) if len(tail) == 1 and names else format_path(tail)
    return f"{named}{_inside(parent)}"


def _type_names(types: list[str]) -> str:
    return _join([_TYPE_NAMES.get(name, name) for name in types], "or")


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "an empty value",
}


def _join(words: list[str], conjunction: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _describe(value: Any, raw: str | None) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return f"{_show(value, raw)} ({_kind(value)})"


def _show(value: Any, raw: str | None) -> str:
    """Show a value as written in the file when the text is known, else as Python shows it."""
    if isinstance(value, str) or raw is None:
        return repr(value)
    return raw


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


def _is_container_or_empty(value: Any) -> bool:
    return value is None or isinstance(value, (dict, list))
