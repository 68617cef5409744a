"""Check loaded documents against pydantic models and word every error for people."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from yaml.nodes import CollectionNode, ScalarNode

from moby_asm.documents.diagnostics import Diagnostic, InvalidDocuments, suggest
from moby_asm.documents.loader import Document

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every file model: unknown keys are errors and no type is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def validate_document(document: Document, model: type[Model]) -> Model:
    """Validate `document.data` as `model`; raise `InvalidDocuments` listing every error."""
    if document.data is None:
        raise InvalidDocuments([document.diagnostic((), "file is empty; expected a mapping")])
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        raise InvalidDocuments(diagnose(document, model, error)) from None


def diagnose(document: Document, model: type[BaseModel], error: ValidationError) -> list[Diagnostic]:
    """Turn pydantic's errors into positioned diagnostics, one for each problem."""
    diagnostics = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        at_key = item["type"] == "extra_forbidden"
        if loc and loc[-1] == "[key]":
            # pydantic marks an invalid mapping key with a "[key]" step after the key.
            loc, at_key = loc[:-1], True
        if item["type"] in ("value_error", "id_type") and isinstance(document.node_at(loc), CollectionNode):
            # A check on a whole mapping or list reads best at the key that names it.
            at_key = True
        message = _message(item, _model_at(model, loc[:-1]), _raw_text(document, loc))
        if item["type"] == "missing":
            loc = loc[:-1]
        diagnostics.append(document.diagnostic(loc, message, at_key=at_key))
    return diagnostics


def _raw_text(document: Document, loc: tuple) -> str | None:
    """Return a scalar as written in the file, before YAML turned it into a number or date."""
    node = document.node_at(loc)
    return node.value if isinstance(node, ScalarNode) else None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Return the model class that validates the mapping at `loc`, when one is known."""
    current: Any = model
    for step in loc:
        if isinstance(step, int) or current is None:
            continue
        field = _field_by_key(current, step)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_by_key(model: Any, key: str):
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _message(item: dict[str, Any], model: type[BaseModel] | None, raw: str | None) -> str:
    kind = item["type"]
    value = item.get("input")
    key = item["loc"][-1] if item["loc"] else ""
    if kind == "extra_forbidden":
        keys = allowed_keys(model) if model else []
        return f"unknown key {key!r}" + suggest(str(key), keys)
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "literal_error":
        expected = item["ctx"]["expected"]
        return f"invalid value {value!r}; expected {expected}" + suggest(str(value), _literals(expected))
    if kind == "too_short":
        return f"expected at least {item['ctx']['min_length']} item, got none"
    if kind == "id_type":
        return f"expected a number or a name, got {_describe(value, raw)}"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {_describe(value, raw)}" + _quote_hint(kind, value, raw, key)
    if kind in ("value_error", "assertion_error"):
        return str(item["ctx"]["error"])
    return f"invalid value {value!r}: {item['msg']}"


def _literals(expected: str) -> list[str]:
    return [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]


def _describe(value: Any, raw: str | None) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    shown = raw if raw is not None else repr(value)
    return f"{shown} ({_python_kind(value)})"


def _python_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (date, datetime)):
        return "a date"
    return type(value).__name__


def _quote_hint(kind: str, value: Any, raw: str | None, key: Any = None) -> str:
    if kind == "string_type" and key == "version" and isinstance(value, (int, float)):
        return "; write a full semantic version such as \"1.0.0\""
    if kind == "string_type" and raw is not None and not isinstance(value, (str, list, dict)) and value is not None:
        return f"; quote it as \"{raw}\" to keep it a string"
    return ""


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
}
