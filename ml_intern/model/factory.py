"""The chat model for a model id: a ChatLiteLLM, with litellm imported only when a model is needed."""

from __future__ import annotations

from typing import Any

from ml_intern.model.ids import ModelSpec


def make_chat_model(spec: ModelSpec, stream: bool, request_timeout: float = 600.0) -> Any:
    """A ChatLiteLLM for `spec`; litellm is imported here, never at start-up."""
    import litellm
    from langchain_litellm import ChatLiteLLM

    litellm.suppress_debug_info = True  # else provider errors print a help banner on stdout
    return ChatLiteLLM(
        model=spec.litellm_model,
        api_base=spec.api_base,
        api_key=spec.api_key,
        streaming=stream,
        max_retries=0,
        model_kwargs={
            "max_retries": 0
        },  # the OpenAI SDK under litellm would retry silently; model/retry.py retries
        request_timeout=request_timeout,
    )


def model_window(litellm_model: str) -> int | None:
    """The model's input window from litellm's table, None when unknown (local servers)."""
    import litellm

    try:
        return litellm.get_model_info(litellm_model).get("max_input_tokens")
    except Exception:  # litellm raises for models missing from its table
        return None
