"""A scripted LangChain chat model for fast graph tests that need no HTTP.

    model = ScriptedChatModel([tool_call("bash", {"command": "ls"}), "All done."])

Script items are AIMessages, strings, response dicts from the `tests.fakes.llm_server` builders (text,
tool_call, tool_calls, raw_tool_call) or exceptions (raised when their turn comes). Every call records the
messages it was sent in `model.calls` (and its extra kwargs, e.g. the bound tools, in `model.call_kwargs`);
a call after the script ran out raises `ScriptExhausted`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field


class ScriptExhausted(AssertionError):
    """The scripted model was called more times than its script has answers."""


class ScriptedChatModel(BaseChatModel):
    """Answers each call with the next scripted message; never cycles."""

    script: list[Any] = Field(default_factory=list)  # answers still to give, in order
    calls: list[list[BaseMessage]] = Field(default_factory=list)  # the messages of every call, in order
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)  # extra kwargs of every call (tools, ...)
    tool_schemas: list[dict[str, Any]] = Field(
        default_factory=list
    )  # OpenAI schemas from the last bind_tools
    model_name: str = "scripted"

    def __init__(self, script: list[Any] | tuple[Any, ...] = (), **kwargs: Any) -> None:
        super().__init__(script=list(script), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: list[Any], **kwargs: Any) -> Any:
        """Record the tools' OpenAI schemas and bind them, as a real provider model would."""
        self.tool_schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=self.tool_schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next_answer(messages, kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _as_chunks(self._next_answer(messages, kwargs)):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk

    def _next_answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        """Record the call, then turn the next script item into an AIMessage (or raise it)."""
        self.calls.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        if not self.script:
            raise ScriptExhausted(
                f"ScriptedChatModel: script exhausted on call {len(self.calls)}; "
                f"last message sent: {str(messages[-1].content)[:200] if messages else None!r}"
            )
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        message = _as_message(item)
        if message.usage_metadata is None:
            message.usage_metadata = _estimate_usage(messages, message)
        return message


def _as_message(item: Any) -> AIMessage:
    """Convert one script item into a fresh AIMessage."""
    if isinstance(item, AIMessage):
        return item.model_copy(deep=True)
    if isinstance(item, str):
        return AIMessage(content=item)
    if isinstance(item, dict) and item.get("kind") == "message":
        return _message_from_builder(item)
    raise TypeError(f"ScriptedChatModel cannot play script item {item!r}")


def _message_from_builder(response: dict[str, Any]) -> AIMessage:
    """Turn an llm_server builder dict into the AIMessage a provider would have parsed."""
    calls, invalid = [], []
    for index, call in enumerate(response["tool_calls"]):
        call_id = call.get("id") or f"call_{index}"
        try:
            calls.append({"name": call["name"], "args": json.loads(call["arguments"]), "id": call_id})
        except ValueError as exc:
            invalid.append(
                {"name": call["name"], "args": call["arguments"], "id": call_id, "error": str(exc)}
            )
    usage = response.get("usage")
    return AIMessage(
        content=response["content"],
        tool_calls=calls,
        invalid_tool_calls=invalid,
        response_metadata={"finish_reason": response["finish_reason"]},
        usage_metadata=_usage_from_openai(usage) if usage else None,
    )


def _usage_from_openai(usage: dict[str, Any]) -> dict[str, Any]:
    """Map OpenAI usage numbers (as the builders take them) onto LangChain's usage_metadata."""
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    metadata: dict[str, Any] = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": usage.get("total_tokens", prompt + completion),
    }
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        metadata["input_token_details"] = {"cache_read": cached}
    return metadata


def _estimate_usage(messages: list[BaseMessage], answer: AIMessage) -> dict[str, int]:
    """Deterministic token counts: a quarter of the characters sent and produced."""
    sent = sum(len(str(message.content)) for message in messages)
    produced = len(str(answer.content)) + sum(len(json.dumps(call["args"])) for call in answer.tool_calls)
    input_tokens, output_tokens = max(1, sent // 4), max(1, produced // 4)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _as_chunks(message: AIMessage) -> Iterator[AIMessageChunk]:
    """Split a message into streaming chunks: content pieces, tool-call fragments, then usage."""
    text = str(message.content)
    size = max(1, -(-len(text) // 3))
    for start in range(0, len(text), size):
        yield AIMessageChunk(content=text[start : start + size])
    for index, call in enumerate([*message.tool_calls, *message.invalid_tool_calls]):
        args = call["args"] if isinstance(call["args"], str) else json.dumps(call["args"])
        middle = len(args) // 2
        head = {"name": call["name"], "args": args[:middle], "id": call["id"], "index": index}
        yield AIMessageChunk(content="", tool_call_chunks=[head])
        yield AIMessageChunk(content="", tool_call_chunks=[{"args": args[middle:], "index": index}])
    yield AIMessageChunk(
        content="",
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        chunk_position="last",
    )
