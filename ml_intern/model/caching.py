"""Prompt-cache hints per provider, applied to an outgoing copy of the prompt (the stored history is never
changed): Anthropic `cache_control` breakpoints on the system prompt, the last tool and the conversation;
OpenAI's `prompt_cache_key`; the router's `X-HF-Session-id` header (sticky routing to a warm cache)."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, ToolMessage

from ml_intern.graph.messages import THINKING_BLOCKS
from ml_intern.model.ids import ModelSpec

BREAKPOINT = {"type": "ephemeral"}
CONVERSATION_BREAKPOINTS = 2  # the newest user/tool message and the one before: Anthropic allows 4 in all
SESSION_HEADER = "X-HF-Session-id"
MAX_SESSION_ID = 256  # the router's limit on the header
MAX_CACHE_KEY = 64  # OpenAI's limit on prompt_cache_key
LONG_RETENTION = ("gpt-5.5",)  # models the original asked to keep their cache for 24 h


def cache_style(spec: ModelSpec) -> Literal["anthropic", "openai"] | None:
    """How `spec`'s provider caches prompts: explicit breakpoints, a cache key, or automatically (None)."""
    if spec.kind == "local":
        return None
    name = spec.served_id.lower()
    if name.startswith("anthropic/"):  # Anthropic's own models (a router `org/claude-…` id is not one)
        return "anthropic"
    if name.startswith("openai/"):
        return "openai"
    return None


def as_blocks(message: AnyMessage) -> AnyMessage:
    """`message` with text content as a list of blocks, the one form a message has whether it carries a
    breakpoint or not: the history langchain-litellm digests to replay signed thinking must not change."""
    if isinstance(message.content, str) and message.content:
        return message.model_copy(update={"content": [{"type": "text", "text": message.content}]})
    return message


def with_breakpoint(message: AnyMessage) -> AnyMessage | None:
    """A copy of `message` whose last content block carries a breakpoint (None: no block to mark)."""
    blocks = list(as_blocks(message).content)
    if not blocks:
        return None
    last = blocks[-1]
    if isinstance(last, str):
        last = {"type": "text", "text": last}
    if not isinstance(last, dict) or last.get("type") in THINKING_BLOCKS:
        return None
    blocks[-1] = {**last, "cache_control": BREAKPOINT}
    return message.model_copy(update={"content": blocks})


def marked_prompt(prompt: list[AnyMessage]) -> list[AnyMessage]:
    """`prompt` with breakpoints on the system prompt and the newest user/tool messages (copies only)."""
    marked = [as_blocks(m) if isinstance(m, HumanMessage | ToolMessage) else m for m in prompt]
    if marked and isinstance(marked[0], SystemMessage):
        marked[0] = with_breakpoint(marked[0]) or marked[0]
    left = CONVERSATION_BREAKPOINTS
    for index in range(len(marked) - 1, 0, -1):
        if left == 0:
            break
        if isinstance(marked[index], HumanMessage | ToolMessage):
            copy = with_breakpoint(marked[index])
            if copy is not None:
                marked[index], left = copy, left - 1
    return marked


def marked_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The bound tool specs with a breakpoint on the last one (a copy)."""
    if not tools or not isinstance(tools[-1], dict):
        return None
    return [*tools[:-1], {**tools[-1], "cache_control": BREAKPOINT}]


def cached_request(
    spec: ModelSpec, prompt: list[AnyMessage], tools: list[dict[str, Any]] | None, thread_id: str | None
) -> tuple[list[AnyMessage], dict[str, Any]]:
    """The prompt to send and the call kwargs with the provider's cache hints; `prompt` is not changed."""
    kwargs: dict[str, Any] = {}
    style = cache_style(spec)
    if style == "anthropic":
        prompt = marked_prompt(prompt)
        if (marked := marked_tools(tools)) is not None:
            kwargs["tools"] = marked
    elif style == "openai" and thread_id:
        kwargs["prompt_cache_key"] = thread_id[:MAX_CACHE_KEY]
        if any(name in spec.served_id for name in LONG_RETENTION):
            kwargs["prompt_cache_retention"] = "24h"
    if spec.kind == "router" and thread_id:
        kwargs["extra_headers"] = {**spec.headers, SESSION_HEADER: thread_id[:MAX_SESSION_ID]}
    return prompt, kwargs


def bound_tools(bound_model: Any) -> list[dict[str, Any]] | None:
    """The tool specs bound to the model (a RunnableBinding's `tools`), None when there are none."""
    tools = getattr(bound_model, "kwargs", {}).get("tools")
    return tools if isinstance(tools, list) else None
