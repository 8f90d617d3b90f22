"""The objects a run needs — chat model, tools, system prompt — built once from its settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ml_intern.configs.models import ModelSpec, pick_model, resolve_model
from ml_intern.configs.prompt import system_prompt
from ml_intern.graph.paths import home_dir
from ml_intern.graph.secrets import register_secrets
from ml_intern.tools.base import ToolEnv


@dataclass
class Services:
    """What nodes use to do their work."""

    model: ModelSpec  # which model, and how to reach it
    chat_model: Any  # a LangChain chat model, tools not bound
    tools: list[Any]  # LangChain tools offered to the model
    config: dict[str, Any] = field(default_factory=dict)  # the merged agent config
    prompt: str = ""  # the system prompt
    context_window: int | None = None  # the model's input window in tokens, when litellm knows it

    @cached_property
    def bound_model(self) -> Any:
        """The chat model with every tool bound."""
        return self.chat_model.bind_tools(self.tools) if self.tools else self.chat_model

    @cached_property
    def tools_by_name(self) -> dict[str, Any]:
        return {tool.name: tool for tool in self.tools}


def make_chat_model(spec: ModelSpec, stream: bool, config: Mapping[str, Any]) -> Any:
    """A ChatLiteLLM for `spec`; litellm is imported here, never at start-up."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import logging

    from langchain_litellm import ChatLiteLLM

    logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
    return ChatLiteLLM(
        model=spec.litellm_model,
        api_base=spec.api_base,
        api_key=spec.api_key,
        streaming=stream,
        max_retries=0,
        request_timeout=float(config.get("request_timeout", 600)),
    )


def model_window(litellm_model: str) -> int | None:
    """The model's input window from litellm's table, None when unknown (local servers)."""
    import litellm

    try:
        return litellm.get_model_info(litellm_model).get("max_input_tokens")
    except Exception:  # litellm raises for models missing from its table
        return None


def build_services(
    *,
    model: str | None,
    workdir: Path,
    tool_names: list[str] | None,
    stream: bool,
    environ: Mapping[str, str],
    config: dict[str, Any] | None,
    chat_model: Any = None,
) -> Services:
    """Resolve the model, build the tools and the prompt; `chat_model` replaces the litellm one (tests)."""
    from ml_intern.tools.registry import build_tools

    register_secrets(environ)
    if config is None:
        from ml_intern.configs.loader import default_config

        config = default_config().model_dump()
    spec = resolve_model(pick_model(model, config.get("model_name"), environ), environ)
    env = ToolEnv.from_environ(workdir, home_dir(environ), config, dict(environ))
    tools = build_tools(env, tool_names)
    return Services(
        model=spec,
        chat_model=chat_model or make_chat_model(spec, stream, config),
        context_window=None if chat_model else model_window(spec.litellm_model),
        tools=tools,
        config=config,
        prompt=system_prompt(str(workdir), [tool.name for tool in tools]),
    )
