"""Custom tools: config `"tools": ["package.module:attr"]` and plugins (entry-point group ml_intern.tools).

An `attr` (or entry point) may be a LangChain tool, a typed function whose docstring is its description, a
list of those, a factory `f(env)` returning any of those (a callable whose one parameter is named `env` or
annotated `ToolEnv`), or a module with a `make_tools(env)` factory, like ml-intern's own tool families.
Custom tools declare no facts to undo (effect unknown), and every call needs approval unless the config's
`tool_approval` says otherwise or the tool declares itself read-only: a LangChain tool with
`metadata={"read_only": True}`, or a function with the attribute `read_only = True` (tools/undeclared.py).
"""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.errors import UserError
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.undeclared import CUSTOM, READ_ONLY

ENTRY_POINT_GROUP = "ml_intern.tools"
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what model providers accept as a function name


class CustomToolError(UserError):
    """A custom tool that cannot be loaded: one line naming where it was declared."""


def custom_tools(env: ToolEnv, reserved: set[str]) -> list[BaseTool]:
    """The config's custom tools, then the installed plugins' tools; names must not clash with `reserved`."""
    tools: list[BaseTool] = []
    taken = set(reserved)
    for spec in env.config.tools:
        origin = f'custom tool {spec!r} (config "tools")'
        tools += checked_names(resolve(import_spec(spec, origin), env, origin), origin, taken)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = plugin_origin(point)
        try:
            loaded = point.load()
        except Exception as exc:
            raise CustomToolError(f"{origin} cannot be imported: {failure(exc)}") from None
        tools += checked_names(resolve(loaded, env, origin), origin, taken)
    return tools


def plugin_origin(point: EntryPoint) -> str:
    """How error messages name an entry point: its name, value and distribution."""
    dist = f" from {point.dist.name} {point.dist.version}" if point.dist else ""
    return f"plugin tool {point.name} = {point.value!r} (entry point group {ENTRY_POINT_GROUP}{dist})"


def failure(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def import_spec(spec: str, origin: str) -> Any:
    """The object `package.module:attr` names (attr may be dotted)."""
    module_name, _, attr_path = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise CustomToolError(f"{origin} cannot be imported: {failure(exc)}") from None
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise CustomToolError(
                f"{origin}: {getattr(target, '__name__', target)!s} has no attribute {attr!r}"
            )
        target = getattr(target, attr)
    return target


def resolve(obj: Any, env: ToolEnv, origin: str) -> list[BaseTool]:
    """The tools `obj` stands for: a tool, a function, a list, a factory `f(env)`, or a module."""
    if isinstance(obj, BaseTool):
        return [obj]
    if isinstance(obj, list | tuple):
        return [tool for item in obj for tool in resolve(item, env, origin)]
    if isinstance(obj, ModuleType):
        if not callable(getattr(obj, "make_tools", None)):
            raise CustomToolError(f"{origin}: module {obj.__name__} has no make_tools(env) function")
        obj = obj.make_tools
    if callable(obj) and is_factory(obj):
        try:
            made = obj(env)
        except Exception as exc:
            raise CustomToolError(f"{origin}: the factory failed: {failure(exc)}") from None
        return resolve(made, env, origin)
    if inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return [function_tool(obj, origin)]
    raise CustomToolError(
        f"{origin} is a {type(obj).__name__}; expected a LangChain tool, a typed function with a docstring, "
        "a list of them, or a factory taking `env`"
    )


def is_factory(obj: Any) -> bool:
    """A factory takes one parameter: annotated ToolEnv, or named `env` and unannotated."""
    try:
        parameters = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return False
    if len(parameters) != 1:
        return False
    annotation = parameters[0].annotation
    if annotation is inspect.Parameter.empty:
        return parameters[0].name == "env"
    return annotation is ToolEnv or str(annotation).endswith("ToolEnv")


def function_tool(function: Any, origin: str) -> BaseTool:
    """A typed (sync or async) function as a tool; its docstring is the description the model sees."""
    if not inspect.getdoc(function):
        raise CustomToolError(
            f"{origin}: {function.__name__} needs a docstring (the description the model sees)"
        )
    key = "coroutine" if inspect.iscoroutinefunction(function) else "func"
    metadata = {READ_ONLY: True} if getattr(function, READ_ONLY, False) is True else None
    try:
        return StructuredTool.from_function(**{key: function}, name=function.__name__, metadata=metadata)
    except Exception as exc:
        raise CustomToolError(
            f"{origin}: {function.__name__} cannot be made a tool: {failure(exc)}"
        ) from None


def checked_names(tools: list[BaseTool], origin: str, taken: set[str]) -> list[BaseTool]:
    """`tools`, after checking each name is valid for model providers and not already taken."""
    for tool in tools:
        if not TOOL_NAME.match(tool.name):
            raise CustomToolError(f"{origin}: tool name {tool.name!r} must match {TOOL_NAME.pattern}")
        if tool.name in taken:
            raise CustomToolError(f"{origin}: a tool named {tool.name!r} already exists; rename yours")
        taken.add(tool.name)
        tool.metadata = {**(tool.metadata or {}), CUSTOM: origin}  # how approval knows it is a custom tool
    return tools
