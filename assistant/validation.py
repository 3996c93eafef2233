"""Turn pydantic's validation errors into lines a person editing a file can act on.

Each line reads `key.path: what is wrong; what is allowed`. For a misspelt key it lists the
keys allowed at that place and suggests the closest one, which is what catches typos.
"""

from __future__ import annotations

import difflib
import types
import typing

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


def describe_validation_error(
    err: ValidationError, model: type[BaseModel] | None = None
) -> list[str]:
    return [_describe_one(error, model) for error in err.errors(include_url=False)]


def _describe_one(error: ErrorDetails, model: type[BaseModel] | None) -> str:
    if not error["loc"]:  # a whole-document check; its message names its own keys
        return _plain(error["msg"])
    location = _format_location(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key{_known_keys_hint(error['loc'], model)}"
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    message = error["msg"]
    if error["type"] not in ("value_error", "assertion_error"):
        message += f" (got {error['input']!r})"
    return f"{location}: {_plain(message)}"


def _plain(message: str) -> str:
    # pydantic prefixes the text of validator errors with "Value error, ".
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _format_location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_keys_hint(loc: tuple, model: type[BaseModel] | None) -> str:
    parent = _model_at(model, loc[:-1]) if model else None
    if parent is None:
        return ""
    allowed = list(parent.model_fields)
    hint = f"; allowed here: {', '.join(allowed)}"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        hint = f" (did you mean {close[0]!r}?)" + hint
    return hint


def _model_at(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The model class found by walking field names (and list indexes / dict keys) from model."""
    current: object = model
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            model_fields = typing.cast(type[BaseModel], current).model_fields
            if not isinstance(part, str) or part not in model_fields:
                return None
            current = model_fields[part].annotation
            continue
        origin = typing.get_origin(current)
        if origin in (list, tuple, dict):
            current = typing.get_args(current)[-1]  # the item type, or a dict's value type
            continue
        return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: object) -> object:
    """`X | None` and `Optional[X]` -> X, so the walk can look inside optional sections."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
