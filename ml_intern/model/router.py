"""Which way a hosted model id goes: to litellm's own provider, or through the Hugging Face router."""

from __future__ import annotations

import re
from collections.abc import Mapping

ROUTER_URL = "https://router.huggingface.co/v1"
ROUTER_DEFAULT_MODEL = "anthropic/claude-opus-4.8:fal-ai"  # the original ml-intern's default
POLICY_SUFFIXES = {
    "fastest": "the provider with the highest throughput",
    "cheapest": "the provider with the lowest price",
    "preferred": "your provider order at huggingface.co/settings/inference-providers",
}
HF_TOKEN_FIX = "export HF_TOKEN=hf_... (or run hf auth login)"

# litellm's provider prefixes (litellm.types.utils.LlmProviders; a test keeps this a subset of litellm's),
# written out because importing litellm takes seconds and the route is decided before any model call.
_PROVIDER_NAMES = """a2a a2a_agent abliteration ai21 ai21_chat aiand aiml aiohttp_openai amazon_nova anthropic
    anthropic_text apertis assemblyai auto_router aws_polly aws_textract azure azure_ai azure_speech
    azure_text baseten bedrock bedrock_mantle bespoke bigmodel black_forest_labs bytez cerebras
    charity_engine chatgpt chutes clarifai clf_ai_gateway cloudflare codestral cognition cohere
    cohere_chat cometapi compactifai coralbricks cortecs cursor custom custom_openai darkbloom dashscope
    databricks databricks_agent datarobot deepgram deepinfra deepseek docker_model_runner dotprompt
    edenai elevenlabs empiriolabs empower eu_jev fal_ai featherless_ai fireworks_ai friendliai galadriel
    gdc gemini gigachat github github_copilot gradient_ai groq helicone heroku hosted_vllm
    hostinger_router humanloop hyperbolic inception inferenceapis infinity jina_ai kyma
    lambda_ai langflow langfuse langgraph laya lemonade libertai litellm_agent litellm_proxy llamafile
    manus maritalk meta meta_llama microsoft_365_copilot milvus minimax mistral modelscope
    mongodb moonshot morph nace nadir nano-gpt nebius neosantara nlp_cloud novita nscale nvidia_nim
    nvidia_riva oci ollama_chat oobabooga openai openai_like opencode_go openinfer openrouter
    opensearch ovhcloud parallel_ai parasail perplexity petals pg_vector pinstripes poe predibase prism
    publicai qwen_ai_platform qwencloud ragflow recraft reducto refuseless reka replicate runwayml
    s3_vectors sagemaker sagemaker_chat sagemaker_nova sail sambanova sap scaledown scaleway scx-ai
    snowflake soniox stability strands_decider streamlake synthetic tencent tensormesh
    text-completion-codestral text-completion-inception text-completion-openai together_ai topaz
    transcribe triton typesafe v0 valkey vercel_ai_gateway vertex_ai vertex_ai_beta volcengine voyage
    wally wandb watsonx watsonx_text xai xiaomi_mimo xinference zai zerogpu"""
LITELLM_PROVIDERS = frozenset(_PROVIDER_NAMES.split())

# provider -> the variables litellm reads its key from (any one will do); providers missing here use other
# credentials (AWS, Google Cloud, Azure, ...) that ml-intern does not check.
PROVIDER_KEYS = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY", "OR_API_KEY"),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"),
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "cohere_chat": ("COHERE_API_KEY", "CO_API_KEY"),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "cerebras": ("CEREBRAS_API_KEY",),
    "deepinfra": ("DEEPINFRA_API_KEY",),
    "moonshot": ("MOONSHOT_API_KEY",),
    "novita": ("NOVITA_API_KEY",),
    "nebius": ("NEBIUS_API_KEY",),
    "sambanova": ("SAMBANOVA_API_KEY",),
}

# the router's inference providers (huggingface_hub's PROVIDER_T, a test keeps it a superset, and others the
# router lists): after a litellm provider's id (`openai/gpt-oss-120b:groq`) only these and the policies make a
# router suffix, so `ollama_chat/llama3:latest` or `openai/ft:gpt-4o-mini:org::id` stay with litellm.
_ROUTER_NAMES = """baseten black-forest-labs cerebras clarifai cohere deepinfra fal-ai featherless-ai
    fireworks-ai groq hf-inference hyperbolic nebius novita nscale openai ovhcloud publicai replicate
    sambanova scaleway together wavespeed zai-org"""
ROUTER_PROVIDERS = frozenset(_ROUTER_NAMES.split())
_SUFFIX = re.compile(r":([A-Za-z][\w.-]*)$")  # `:fastest`, `:novita`; never bedrock's `...-v1:0`


def router_base(environ: Mapping[str, str]) -> str:
    """The router's OpenAI-compatible base URL: HF_ROUTER_URL, else the public router."""
    return (environ.get("HF_ROUTER_URL") or ROUTER_URL).rstrip("/")


def split_suffix(model_id: str) -> tuple[str, str | None]:
    """`org/model:provider` as (`org/model`, `provider`); no suffix: (`model_id`, None). After a litellm
    provider prefix only a policy or a router provider, as the id's one `:`, is a suffix."""
    found = _SUFFIX.search(model_id)
    if found is None:
        return model_id, None
    suffix = found.group(1)
    if model_id.partition("/")[0] in LITELLM_PROVIDERS and (
        model_id.count(":") != 1 or (suffix not in POLICY_SUFFIXES and suffix not in ROUTER_PROVIDERS)
    ):
        return model_id, None
    return model_id[: found.start()], suffix


def has_provider_key(prefix: str, environ: Mapping[str, str]) -> bool:
    """Whether a key litellm would use for provider `prefix` is set (True when we cannot tell)."""
    keys = PROVIDER_KEYS.get(prefix)
    return keys is None or any(environ.get(key) for key in keys)


def is_router_only(model_id: str) -> bool:
    """An id only the router can serve: a `:suffix`, or an organisation that is no litellm provider."""
    prefix = model_id.partition("/")[0]
    return split_suffix(model_id)[1] is not None or prefix not in LITELLM_PROVIDERS


def goes_through_router(model_id: str, environ: Mapping[str, str]) -> bool:
    """Router-only ids, and provider ids whose key is missing when an HF token is there to use instead."""
    if is_router_only(model_id):
        return True
    prefix = model_id.partition("/")[0]
    return bool(environ.get("HF_TOKEN")) and not has_provider_key(prefix, environ)


def missing_key_line(model_id: str) -> str:
    """The line for a provider id whose key is not set (and no HF token to use the router instead)."""
    keys = PROVIDER_KEYS[model_id.partition("/")[0]]
    return (
        f"{model_id} needs {keys[0]}: export {keys[0]}=..., or export HF_TOKEN (or hf auth login) for the "
        "Hugging Face router, or start a local server (ollama, llama.cpp, vLLM, LM Studio)"
    )


def no_token_line(model_id: str, explicit: bool = False) -> str:
    """The line for a router id without an HF token (`explicit`: the user wrote `huggingface/`)."""
    prefix = model_id.partition("/")[0]
    unknown = not explicit and split_suffix(model_id)[1] is None and prefix not in LITELLM_PROVIDERS
    where = (
        f"unknown model provider '{prefix}' in '{model_id}': as a Hugging Face router id it"
        if unknown
        else model_id
    )
    return (
        f"{where} needs a Hugging Face token: {HF_TOKEN_FIX}, or use a provider prefix with its key "
        "(anthropic/, openai/, ...) or a local server prefix (ollama/, vllm/, lm_studio/, llamacpp/)"
    )
