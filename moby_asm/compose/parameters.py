"""Component parameters: check the assembly's values and put them into `${NAME}` placeholders.

A placeholder is `${NAME}` inside any string of a component's config, files or kernel
settings; `$${` stands for a literal `${`. A `list` parameter that is a whole list item
(`command: ["/bin/app", "${args}"]`) is spliced into the list; inside a longer string
its items are joined with spaces. Booleans become `true` or `false`.
"""

from __future__ import annotations

import re
from typing import Any

from moby_asm.catalog.model import ComponentVersion, Parameter, parameter_value_error
from moby_asm.catalog.placeholders import PLACEHOLDER
from moby_asm.documents import Diagnostic, Document, InvalidDocuments
from moby_asm.documents.diagnostics import suggest
from moby_asm.resolve.resolution import Resolution


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """Return `value` with every placeholder replaced by its parameter's value."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: _text(match, values), value)
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        result = []
        for item in value:
            whole = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
            if whole and whole.group(1) and isinstance(values.get(whole.group(1)), list):
                result.extend(values[whole.group(1)])
            else:
                result.append(substitute(item, values))
        return result
    return value


def _text(match: re.Match, values: dict[str, Any]) -> str:
    name = match.group(1)
    if name is None:
        return "${"
    value = values[name]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def parameter_values(resolution: Resolution, document: Document) -> dict[str, dict[str, Any]]:
    """Return every selected component's parameter values: the assembly's, else the defaults.

    Raises `InvalidDocuments` listing every unknown component or parameter, value of the
    wrong type and missing required value, positioned in the assembly file.
    """
    problems: list[Diagnostic] = []
    given = resolution.assembly.parameters
    for name in given:
        if name not in resolution.selected:
            hint = suggest(name, resolution.selected) or "; only selected components take parameters"
            problems.append(document.diagnostic(("parameters", name), f"parameters given for component {name!r}, "
                                                                      f"which is not selected{hint}", at_key=True))
    for stage, names in resolution.assembly.order.items():
        for index, name in enumerate(names):
            if name not in resolution.selected:
                problems.append(document.diagnostic(("order", stage, index), f"'order' lists {name!r}, which is "
                                                    "not selected" + suggest(name, resolution.selected)))
            elif resolution.selected[name][1].stage != stage:
                problems.append(document.diagnostic(("order", stage, index), f"'order' lists {name!r} under "
                                                    f"{stage}, but it is a {resolution.selected[name][1].stage} "
                                                    "component"))
    for name in resolution.assembly.config:
        if name not in resolution.selected:
            hint = suggest(name, resolution.selected) or "; only selected components take settings"
            problems.append(document.diagnostic(("config", name), f"settings given for component {name!r}, "
                                                                  f"which is not selected{hint}", at_key=True))
    result = {}
    for name, (_, version) in resolution.selected.items():
        result[name] = _component_values(name, version, given.get(name, {}), document, problems)
    if problems:
        raise InvalidDocuments(problems)
    return result


def _component_values(name: str, version: ComponentVersion, given: dict[str, Any], document: Document,
                      problems: list[Diagnostic]) -> dict[str, Any]:
    declared = version.parameters
    values = {key: parameter.default for key, parameter in declared.items() if parameter.default is not None}
    for key, value in given.items():
        loc = ("parameters", name, key)
        parameter = declared.get(key)
        if parameter is None:
            problems.append(document.diagnostic(loc, _unknown(name, version, key), at_key=True))
            continue
        problem = _value_problem(parameter, value)
        if problem:
            problems.append(document.diagnostic(loc, f"invalid value for parameter {key!r} of component {name!r} "
                                                     f"(type {parameter.type}): {problem}"))
            continue
        values[key] = value
    for key, parameter in declared.items():
        if parameter.required and key not in given:
            loc = _required_location(name, document)
            problems.append(document.diagnostic(loc, f"component {name!r} {version.version} needs a value for "
                                                     f"parameter {key!r} (type {parameter.type}): set "
                                                     f"parameters.{name}.{key} in the assembly"))
    for key in declared:
        values.setdefault(key, "")
    return values


def _unknown(name: str, version: ComponentVersion, key: str) -> str:
    declared = ", ".join(f"{k} ({p.type})" for k, p in version.parameters.items()) or "none"
    return (f"component {name!r} {version.version} has no parameter {key!r}" + suggest(key, version.parameters)
            + f"; its parameters: {declared}")


def _value_problem(parameter: Parameter, value: Any) -> str | None:
    problem = parameter_value_error(parameter.type, value)
    if problem:
        return problem
    if parameter.choices and value not in parameter.choices:
        return f"{value!r} is not one of {parameter.choices!r}"
    return None


def _required_location(name: str, document: Document) -> tuple:
    """Point at the component's parameters if given, else at the requirement that names it."""
    if name in (document.data.get("parameters") or {}):
        return ("parameters", name)
    for index, requirement in enumerate(document.data.get("requires") or []):
        text = requirement if isinstance(requirement, str) else (requirement or {}).get("name", "")
        if isinstance(text, str) and text.split(" ")[0] == name:
            return ("requires", index)
    return ("requires",)
