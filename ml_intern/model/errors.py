"""One clear line, and the exit code DESIGN.md gives it, for each way a model call can fail."""

from __future__ import annotations

from ml_intern.model.ids import credential_variable
from ml_intern.secrets import redact

__all__ = ["explain_model_error"]


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


def explain_model_error(exc: BaseException, model_id: str) -> tuple[str, int]:
    """The line to print for an exception raised while calling the model, and the exit code."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    detail = _first_line(exc)
    if name in ANSWERS:
        return f"{exc}{ANSWERS[name][0]}", ANSWERS[name][1]
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
