"""The chat model for a model id: a ChatLiteLLM, with litellm imported only when a model is needed."""

from __future__ import annotations

from typing import Any

from ml_intern.model.ids import ModelSpec
from ml_intern.model.router import split_suffix


def make_chat_model(spec: ModelSpec, stream: bool, request_timeout: float = 600.0) -> Any:
    """A ChatLiteLLM for `spec`; litellm is imported here, never at start-up."""
    import litellm
    from langchain_litellm import ChatLiteLLM

    litellm.suppress_debug_info = True  # else provider errors print a help banner on stdout
    litellm.drop_params = True  # a parameter a provider does not take is dropped, not an error (original)
    litellm.modify_params = True  # e.g. Anthropic's rules on message order are met by litellm (original)
    return ChatLiteLLM(
        model=spec.litellm_model,
        api_base=spec.api_base,
        api_key=spec.api_key,
        streaming=stream,
        max_retries=0,
        model_kwargs={"max_retries": 0},  # the OpenAI SDK would retry silently; model/retry.py retries
        extra_headers=dict(spec.headers) or None,  # X-HF-Bill-To; per-call headers must merge these
        request_timeout=request_timeout,
    )


def model_window(spec: ModelSpec | str) -> int | None:
    """The model's input window from litellm's table, None when unknown (local servers)."""
    import litellm

    names = [spec] if isinstance(spec, str) else [spec.litellm_model]
    if not isinstance(spec, str) and spec.kind == "router":  # `openai/<org>/<model>:<provider>`
        base = split_suffix(spec.served_id)[0]
        names = [base, base.partition("/")[2]]
    for name in names:
        try:
            window = litellm.get_model_info(name).get("max_input_tokens")
        except Exception:  # litellm raises for models missing from its table
            continue
        if window:
            return int(window)
    return None
