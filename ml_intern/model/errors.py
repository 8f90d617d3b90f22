"""One clear line, and the exit code DESIGN.md gives it, for each way a model call can fail."""

from __future__ import annotations

from ml_intern.model.ids import LOCAL_SERVERS, credential_variable
from ml_intern.model.router import is_router_only, split_suffix
from ml_intern.secrets import redact

__all__ = ["explain_model_error", "is_context_overflow"]

# What providers say when the prompt is over the window, for the errors litellm does not classify (the
# original's patterns, agent_loop.py `_is_context_overflow_error`, and a few more).
OVERFLOW_PHRASES = (
    "context window exceeded",
    "exceeds the context window",
    "maximum context length",
    "max context length",
    "context length exceeded",
    "context_length_exceeded",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "too many tokens",
)


def is_context_overflow(exc: BaseException) -> bool:
    """The prompt was too large for the model: litellm's class, else the wording of a non-transient error
    (a 429 "too many tokens" is a rate limit, retried elsewhere)."""
    from ml_intern.model.retry import is_transient

    if type(exc).__name__ == "ContextWindowExceededError":
        return True
    text = str(exc).lower()
    return not is_transient(exc) and any(phrase in text for phrase in OVERFLOW_PHRASES)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0][:300]) if text else type(exc).__name__


ANSWERS = {  # model/bounded.py's failures: their message names the server; what to add, and the exit code
    "NotAnApiResponse": ("", 2),
    "StreamIdleTimeout": (
        ", on every try: check that it is running, or raise stream_idle_timeout in the config",
        1,
    ),
    "MalformedReply": (", on every try: check that the base URL is an OpenAI-compatible endpoint", 1),
}


BILLING = "https://huggingface.co/settings/billing"
PRO = "https://huggingface.co/subscribe/pro"
NO_PROVIDER = ("not supported by provider", "no provider supports", "not supported by any provider")


def _routed(model_id: str, kind: str | None) -> bool | None:
    """Whether the call went through the HF router: known from the resolved spec's `kind`; without it a guess
    from the id (True: surely, None: perhaps, as a provider id does when only HF_TOKEN is set; False: no)."""
    if kind is not None:
        return kind == "router"
    prefix = model_id.partition("/")[0]
    if prefix in LOCAL_SERVERS:
        return False
    return True if prefix == "huggingface" or is_router_only(model_id) else None


def router_error(exc: BaseException, model_id: str, certain: bool = True) -> tuple[str, int] | None:
    """The original's friendlier lines for the Hugging Face router's refusals; None for other errors.
    Not `certain` that the call was routed: only the router's own wording is recognised."""
    name, status, detail = type(exc).__name__, getattr(exc, "status_code", None), _first_line(exc)
    text, pinned = str(exc).lower(), split_suffix(model_id.removeprefix("huggingface/"))
    if any(words in text for words in NO_PROVIDER):
        hint = f"drop the ':{pinned[1]}' suffix ({pinned[0]})" if pinned[1] else "try another model"
        return f"no provider serves {model_id} as asked: {hint} to let the router pick one ({detail})", 2
    if not certain:
        return None
    if name == "AuthenticationError" or status == 401:
        return (
            f"the Hugging Face router rejected the token for {model_id}: check HF_TOKEN or run "
            f"hf auth login ({detail})",
            2,
        )
    if name == "PaymentRequiredError" or status == 402 or "insufficient_quota" in text:
        return (
            f"Hugging Face inference credits are exhausted for {model_id}: add credits at {BILLING} "
            f"(a PRO subscription includes monthly credits: {PRO}) ({detail})",
            2,
        )
    if name == "NotFoundError" or status == 404 or "model_not_found" in text or "does not exist" in text:
        return (
            f"model {model_id} was not found on the Hugging Face router: /model lists suggestions ({detail})",
            2,
        )
    return None


def explain_model_error(exc: BaseException, model_id: str, kind: str | None = None) -> tuple[str, int]:
    """The line to print for an exception raised while calling the model, and the exit code. `kind` is the
    resolved ModelSpec's (router: the HF token is what to fix); None: guessed from the id."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    detail = _first_line(exc)
    if name in ANSWERS:
        return f"{exc}{ANSWERS[name][0]}", ANSWERS[name][1]
    routed = _routed(model_id, kind)
    answer = router_error(exc, model_id, bool(routed)) if routed is not False else None
    if answer is not None:
        return answer
    if name == "AuthenticationError" or status == 401:
        key = credential_variable(model_id)
        return (
            f"the provider rejected the credentials for {model_id}: check its API key, {key} ({detail})",
            2,
        )
    if name == "PaymentRequiredError" or status == 402:
        return (
            f"the provider refused {model_id}: insufficient credits, add some or switch model ({detail})",
            2,
        )
    if name == "PermissionDeniedError" or status == 403:
        return f"access to {model_id} was denied: check the API key's permissions or credits ({detail})", 2
    if name == "NotFoundError" or status == 404:
        return f"model {model_id} was not found: check the id with your provider ({detail})", 2
    if name in {"APIConnectionError", "Timeout", "ServiceUnavailableError", "InternalServerError"} or (
        status is not None and status >= 500
    ):
        return f"cannot reach the model server for {model_id}: {detail}; check that it is running", 1
    if name == "RateLimitError" or status == 429:
        return f"the model provider is rate limiting requests for {model_id}: try again later ({detail})", 1
    return f"the model call failed for {model_id}: {name}: {detail}", 1
