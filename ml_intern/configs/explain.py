"""Config validation errors in plain words: what is wrong with a value, which key was probably meant."""

from __future__ import annotations

import difflib
import json

from pydantic_core import ErrorDetails

from ml_intern.configs.fields import Section
from ml_intern.configs.schema import AgentConfig

EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "an object",
    "model": "an object",
}
BOUNDS = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}


def describe_error(error: ErrorDetails) -> str:
    """Say in plain words what is wrong with one value, e.g. 'expected an integer, got "many"'."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        what = f"expected {ctx['expected']}"
    elif kind.split("_")[0] in EXPECTED and kind.endswith(("_type", "_parsing", "_from_float")):
        what = f"expected {EXPECTED[kind.split('_')[0]]}"
    elif kind in BOUNDS:
        what = BOUNDS[kind].format(**ctx)
    else:
        what = error["msg"][:1].lower() + error["msg"][1:]
    shown = json.dumps(error["input"], default=str)
    return f"{what}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def suggest_key(key: str) -> str:
    """' (did you mean X?)' for a near miss among the schema's key names, else ''."""
    names = {name for model in [AgentConfig, *Section.__subclasses__()] for name in model.model_fields}
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
