"""Tool arguments: compact JSON schemas for the prompt, and validation that fails with a readable message."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ml_intern.tools.base import ToolError

M = TypeVar("M", bound=BaseModel)


def tool_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without titles, null branches or empty defaults: fewer prompt bytes."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        options = prop.pop("anyOf", None)
        if options:
            prop.update(next(option for option in options if option.get("type") != "null"))
        if prop.get("default", 1) in ("", None, [], 0, False):
            del prop["default"]
    return schema


def parse_args(model: type[M], kwargs: dict[str, Any]) -> M:
    """Validate the model's arguments, failing with one short line per problem."""
    try:
        return model(**kwargs)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ToolError(f"Invalid arguments: {problems}") from None
