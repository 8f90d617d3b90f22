"""Turn a model id into ChatLiteLLM settings: hosted litellm ids, or a local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ml_intern.errors import UserError

# prefix -> (environment variable stem, the server's usual localhost port)
LOCAL_SERVERS = {
    "ollama": ("OLLAMA", 11434),
    "vllm": ("VLLM", 8000),
    "lm_studio": ("LMSTUDIO", 1234),
    "llamacpp": ("LLAMACPP", 8080),
}

# credential -> the model picked when none is configured
DEFAULT_MODELS = (
    ("ANTHROPIC_API_KEY", "anthropic/claude-sonnet-4-5"),
    ("OPENAI_API_KEY", "openai/gpt-5"),
    ("HF_TOKEN", "huggingface/moonshotai/Kimi-K2-Instruct"),
)

NO_MODEL_HELP = (
    "no model configured: pass --model ID (e.g. anthropic/claude-sonnet-4-5 or vllm/<name>), "
    "set model_name in ~/.config/ml-intern/config.json, "
    "or export ANTHROPIC_API_KEY, OPENAI_API_KEY or HF_TOKEN"
)


class ModelError(UserError):
    """A model id that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """What ChatLiteLLM needs to reach a model."""

    model_id: str  # the id the user gave, shown in banners and stored with the thread
    litellm_model: str  # the id litellm is called with
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    kind: Literal["litellm", "router", "local"] = "litellm"  # litellm provider, HF router, local server
    headers: dict[str, str] = field(default_factory=dict)  # extra request headers (X-HF-Bill-To, ...)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def pick_model(cli_model: str | None, config_model: str | None, environ: Mapping[str, str]) -> str:
    """`--model`, else config `model_name`, else a default for the first credential present."""
    if cli_model or config_model:
        return cli_model or config_model  # type: ignore[return-value]
    for variable, model in DEFAULT_MODELS:
        if environ.get(variable):
            return model
    raise ModelError(NO_MODEL_HELP)


def resolve_model(model_id: str, environ: Mapping[str, str]) -> ModelSpec:
    """Map local prefixes to an OpenAI-compatible base URL; pass other ids to litellm as they are."""
    prefix, sep, name = model_id.partition("/")
    if not sep or not name:
        raise ModelError(
            f"model id '{model_id}' needs a provider prefix, e.g. openai/{model_id} or vllm/{model_id}"
        )
    if prefix not in LOCAL_SERVERS:
        _check_provider(prefix, model_id)
        return ModelSpec(model_id=model_id, litellm_model=model_id)
    stem, port = LOCAL_SERVERS[prefix]
    base = environ.get(f"{stem}_BASE_URL") or environ.get("LOCAL_LLM_BASE_URL") or f"http://localhost:{port}"
    base = base.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    key = environ.get(f"{stem}_API_KEY") or environ.get("LOCAL_LLM_API_KEY") or "sk-local"
    return ModelSpec(model_id, f"openai/{name}", api_base=base, api_key=key, kind="local")


def _check_provider(prefix: str, model_id: str) -> None:
    """Reject a provider prefix litellm does not know, without importing litellm (slow) for known ones."""
    from litellm.types.utils import LlmProviders

    known = {p.value for p in LlmProviders}
    if prefix not in known:
        local = ", ".join(f"{p}/" for p in LOCAL_SERVERS)
        raise ModelError(
            f"unknown model provider '{prefix}' in '{model_id}': use a litellm provider prefix "
            f"(anthropic/, openai/, huggingface/, ...) or a local server prefix ({local})"
        )


PROVIDER_KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "huggingface": "HF_TOKEN"}


def credential_variable(model_id: str) -> str:
    """The environment variable holding the key for `model_id` (what to fix after a 401)."""
    prefix = model_id.partition("/")[0]
    if prefix in LOCAL_SERVERS:
        return f"{LOCAL_SERVERS[prefix][0]}_API_KEY (or LOCAL_LLM_API_KEY)"
    return PROVIDER_KEYS.get(prefix, f"{prefix.upper()}_API_KEY")
