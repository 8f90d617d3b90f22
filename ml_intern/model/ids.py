"""A model id as ChatLiteLLM settings: a local server, the Hugging Face router, or a litellm provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ml_intern.errors import UserError
from ml_intern.model.router import (
    HF_TOKEN_FIX,
    PROVIDER_KEYS,
    ROUTER_DEFAULT_MODEL,
    goes_through_router,
    has_provider_key,
    is_router_only,
    missing_key_line,
    no_token_line,
    router_base,
)

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
    ("HF_TOKEN", ROUTER_DEFAULT_MODEL),
)

NO_MODEL_HELP = (
    "no model configured: pass --model ID, or export ANTHROPIC_API_KEY or OPENAI_API_KEY, "
    "export HF_TOKEN (or hf auth login) for the Hugging Face router, "
    "or start a local server (ollama, llama.cpp, vLLM, LM Studio)"
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

    @property
    def served_id(self) -> str:
        """The id the provider is asked for: litellm's, without the `openai/` route of a router id."""
        return self.litellm_model.removeprefix("openai/") if self.kind == "router" else self.litellm_model


def canonical_id(model_id: str) -> str:
    """The id as stored with a thread: surrounding spaces dropped. A leading `huggingface/` stays (it pins
    the router: a resumed thread keeps its route); resolve_model drops it from what the router is sent."""
    return model_id.strip()


def pick_model(cli_model: str | None, config_model: str | None, environ: Mapping[str, str]) -> str:
    """`--model`, else config `model_name`, else a default for the first credential present."""
    if cli_model or config_model:
        return canonical_id(cli_model or config_model or "")
    for variable, model in DEFAULT_MODELS:
        if environ.get(variable):
            return model
    raise ModelError(NO_MODEL_HELP)


def resolve_model(model_id: str, environ: Mapping[str, str], config: Any = None) -> ModelSpec:
    """Local prefixes to their server, router ids to the HF router, provider ids to litellm.

    `config` (an AgentConfig) gives `bill_to`; a missing key or token is a ModelError, before any call."""
    text = model_id.strip()
    if not text or any(char.isspace() for char in text):
        raise ModelError(f"model id '{model_id}' is empty or contains spaces: pass e.g. --model openai/gpt-5")
    prefix, sep, name = text.partition("/")
    if prefix == "openai-compat":
        raise ModelError("the openai-compat/ prefix is reserved: use vllm/, ollama/, lm_studio/ or llamacpp/")
    if prefix in LOCAL_SERVERS and name:
        return _local_spec(text, prefix, name, environ)
    explicit = text.startswith("huggingface/")
    router_id = text.removeprefix("huggingface/")
    org, sep, name = router_id.partition("/")
    if not sep or not name or not org:
        raise ModelError(
            f"model id '{model_id}' needs a provider prefix, e.g. openai/{name or org} or vllm/{name or org}"
        )
    if explicit or goes_through_router(router_id, environ):
        return _router_spec(router_id, environ, getattr(config, "bill_to", None), explicit)
    if not has_provider_key(org, environ):
        raise ModelError(missing_key_line(router_id))
    return ModelSpec(model_id=router_id, litellm_model=router_id)


def local_base(prefix: str, environ: Mapping[str, str]) -> str:
    """The OpenAI-compatible base URL (ending in /v1) of local prefix `prefix`'s server: its *_BASE_URL,
    else LOCAL_LLM_BASE_URL, else the server's usual localhost port (what calls and autodetection use)."""
    stem, port = LOCAL_SERVERS[prefix]
    base = environ.get(f"{stem}_BASE_URL") or environ.get("LOCAL_LLM_BASE_URL") or f"http://localhost:{port}"
    base = base.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def _local_spec(model_id: str, prefix: str, name: str, environ: Mapping[str, str]) -> ModelSpec:
    stem = LOCAL_SERVERS[prefix][0]
    key = environ.get(f"{stem}_API_KEY") or environ.get("LOCAL_LLM_API_KEY") or "sk-local"
    return ModelSpec(
        model_id, f"openai/{name}", api_base=local_base(prefix, environ), api_key=key, kind="local"
    )


def _router_spec(model_id: str, environ: Mapping[str, str], bill_to: str | None, explicit: bool) -> ModelSpec:
    token = environ.get("HF_TOKEN")
    if not token:
        raise ModelError(no_token_line(model_id, explicit))
    headers = {"X-HF-Bill-To": bill_to} if bill_to else {}
    return ModelSpec(
        model_id, f"openai/{model_id}", router_base(environ), token, kind="router", headers=headers
    )


def credential_variable(model_id: str) -> str:
    """The environment variable holding the key for `model_id` (what to fix after a 401)."""
    prefix = model_id.partition("/")[0]
    if prefix in LOCAL_SERVERS:
        return f"{LOCAL_SERVERS[prefix][0]}_API_KEY (or LOCAL_LLM_API_KEY)"
    if prefix == "huggingface" or is_router_only(model_id):
        return HF_TOKEN_FIX.removeprefix("export ")
    return PROVIDER_KEYS.get(prefix, (f"{prefix.upper()}_API_KEY",))[0]
