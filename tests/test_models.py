"""Model resolution (DESIGN.md "Models"): local server prefixes, hosted ids, and which model is picked."""

from __future__ import annotations

import pytest

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import EXIT_USAGE
from ml_intern.model.credentials import needs_hf_token
from ml_intern.model.ids import ModelError, ModelSpec, credential_variable, pick_model, resolve_model
from ml_intern.model.router import LITELLM_PROVIDERS, PROVIDER_KEYS

LOCAL = [  # prefix, environment variable stem, usual port
    ("ollama", "OLLAMA", 11434),
    ("vllm", "VLLM", 8000),
    ("lm_studio", "LMSTUDIO", 1234),
    ("llamacpp", "LLAMACPP", 8080),
]


@pytest.mark.parametrize(("prefix", "stem", "port"), LOCAL)
def test_local_prefix_defaults_to_the_usual_localhost_port(prefix: str, stem: str, port: int) -> None:
    spec = resolve_model(f"{prefix}/my-model", {})
    assert spec == ModelSpec(
        model_id=f"{prefix}/my-model",
        litellm_model="openai/my-model",
        api_base=f"http://localhost:{port}/v1",
        api_key="sk-local",
        kind="local",
    )
    assert spec.is_local


@pytest.mark.parametrize(("prefix", "stem", "port"), LOCAL)
def test_local_prefix_reads_its_own_base_url_and_key(prefix: str, stem: str, port: int) -> None:
    environ = {
        f"{stem}_BASE_URL": "http://gpu-box:9999",
        f"{stem}_API_KEY": "own-key",
        "LOCAL_LLM_BASE_URL": "http://generic:1",
        "LOCAL_LLM_API_KEY": "generic-key",
    }
    spec = resolve_model(f"{prefix}/m", environ)
    assert (spec.api_base, spec.api_key) == ("http://gpu-box:9999/v1", "own-key")


@pytest.mark.parametrize(("prefix", "stem", "port"), LOCAL)
def test_local_prefix_falls_back_to_the_generic_variables(prefix: str, stem: str, port: int) -> None:
    environ = {"LOCAL_LLM_BASE_URL": "http://generic:7000/v1", "LOCAL_LLM_API_KEY": "generic-key"}
    spec = resolve_model(f"{prefix}/m", environ)
    assert (spec.api_base, spec.api_key) == ("http://generic:7000/v1", "generic-key")


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("https://proxy.example/llm", "https://proxy.example/llm/v1"),
    ],
)
def test_v1_is_appended_only_when_missing(base_url: str, expected: str) -> None:
    assert resolve_model("vllm/m", {"VLLM_BASE_URL": base_url}).api_base == expected


def test_empty_variables_count_as_unset() -> None:
    spec = resolve_model("ollama/m", {"OLLAMA_BASE_URL": "", "OLLAMA_API_KEY": ""})
    assert (spec.api_base, spec.api_key) == ("http://localhost:11434/v1", "sk-local")


def test_local_model_name_may_contain_slashes() -> None:
    assert resolve_model("vllm/Qwen/Qwen3-8B", {}).litellm_model == "openai/Qwen/Qwen3-8B"


KEYS = {"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-oai"}
ROUTER = {"HF_TOKEN": "hf_router01"}


@pytest.mark.parametrize("model_id", ["anthropic/claude-sonnet-4-5", "openai/gpt-5"])
def test_provider_ids_with_their_key_pass_to_litellm_unchanged(model_id: str) -> None:
    spec = resolve_model(model_id, {**KEYS, **ROUTER, "VLLM_BASE_URL": "http://ignored"})
    assert spec == ModelSpec(model_id=model_id, litellm_model=model_id)
    assert not spec.is_local and spec.kind == "litellm"


@pytest.mark.parametrize(
    ("model_id", "environ", "stored"),
    [
        ("moonshotai/Kimi-K2.6:novita", ROUTER, "moonshotai/Kimi-K2.6:novita"),
        ("anthropic/claude-opus-4.8:fal-ai", {**ROUTER, **KEYS}, "anthropic/claude-opus-4.8:fal-ai"),
        ("Qwen/Qwen3-8B:fastest", ROUTER, "Qwen/Qwen3-8B:fastest"),
        ("zai-org/GLM-5.1", ROUTER, "zai-org/GLM-5.1"),
        ("huggingface/moonshotai/Kimi-K2-Instruct", ROUTER, "moonshotai/Kimi-K2-Instruct"),
        ("huggingface/openai/gpt-oss-120b", {**ROUTER, **KEYS}, "openai/gpt-oss-120b"),
        ("anthropic/claude-sonnet-4-5", ROUTER, "anthropic/claude-sonnet-4-5"),
        ("  openai/gpt-oss-120b:cheapest ", ROUTER, "openai/gpt-oss-120b:cheapest"),
    ],
    ids=[
        "suffix",
        "suffix-wins-over-key",
        "policy",
        "org",
        "hf-prefix",
        "hf-prefix-with-key",
        "no-key",
        "spaces",
    ],
)
def test_router_ids_go_to_the_router_with_the_hf_token(model_id: str, environ: dict, stored: str) -> None:
    spec = resolve_model(model_id, environ)
    assert spec == ModelSpec(
        model_id=stored,
        litellm_model=f"openai/{stored}",
        api_base="https://router.huggingface.co/v1",
        api_key="hf_router01",
        kind="router",
    )


def test_router_url_and_billing_come_from_the_environment_and_config() -> None:
    environ = {**ROUTER, "HF_ROUTER_URL": "http://127.0.0.1:5/v1/"}
    spec = resolve_model("moonshotai/Kimi-K2.6", environ, AgentConfig(bill_to="my-org"))
    assert (spec.api_base, spec.headers) == ("http://127.0.0.1:5/v1", {"X-HF-Bill-To": "my-org"})
    assert resolve_model("moonshotai/Kimi-K2.6", environ, AgentConfig()).headers == {}


@pytest.mark.parametrize(
    "model_id",
    ["bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "vertex_ai/gemini-2.5-pro", "azure/my-deployment"],
)
def test_providers_with_their_own_credentials_stay_with_litellm(model_id: str) -> None:
    assert resolve_model(model_id, ROUTER).kind == "litellm"


@pytest.mark.parametrize(
    ("model_id", "words"),
    [
        ("gpt-5", "needs a provider prefix"),
        ("vllm/", "needs a provider prefix"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("vllm/my model", "contains spaces"),
        ("openai-compat/m", "reserved"),
        ("notaprovider/some-model", "unknown model provider 'notaprovider'"),
        ("moonshotai/Kimi-K2.6:novita", "needs a Hugging Face token"),
        ("huggingface/org/model", "needs a Hugging Face token"),
        ("anthropic/claude-sonnet-4-5", "needs ANTHROPIC_API_KEY"),
        ("openai/gpt-5", "needs OPENAI_API_KEY"),
        ("gemini/gemini-2.5-pro", "needs GEMINI_API_KEY"),
        ("mistral/mistral-large-latest", "needs MISTRAL_API_KEY"),
        ("groq/llama-3.3-70b", "needs GROQ_API_KEY"),
        ("deepseek/deepseek-chat", "needs DEEPSEEK_API_KEY"),
        ("xai/grok-4", "needs XAI_API_KEY"),
        ("openrouter/qwen/qwen3", "needs OPENROUTER_API_KEY"),
        ("together_ai/qwen/qwen3", "needs TOGETHERAI_API_KEY"),
        ("fireworks_ai/qwen3", "needs FIREWORKS_API_KEY"),
        ("cohere/command-r", "needs COHERE_API_KEY"),
    ],
)
def test_unusable_model_ids_raise_one_usage_line(model_id: str, words: str) -> None:
    with pytest.raises(ModelError, match=words) as caught:
        resolve_model(model_id, {})
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in str(caught.value)


def test_a_missing_key_line_names_every_way_to_get_a_model() -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model("anthropic/claude-sonnet-4-5", {"OPENAI_API_KEY": "unrelated"})
    assert all(
        word in str(caught.value) for word in ("ANTHROPIC_API_KEY", "HF_TOKEN", "hf auth login", "ollama")
    )


def test_unknown_provider_error_names_the_local_prefixes() -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model("foo/bar", {})
    assert all(f"{prefix}/" in str(caught.value) for prefix, _, _ in LOCAL)


def test_our_provider_table_is_litellms() -> None:
    from litellm.types.utils import LlmProviders

    assert not LITELLM_PROVIDERS - {provider.value for provider in LlmProviders}
    assert set(PROVIDER_KEYS) <= LITELLM_PROVIDERS


CREDENTIALS = {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o", "HF_TOKEN": "h"}


@pytest.mark.parametrize(
    ("cli", "config", "environ", "expected"),
    [
        ("vllm/cli", "openai/config", CREDENTIALS, "vllm/cli"),
        (None, "openai/config", CREDENTIALS, "openai/config"),
        (None, None, CREDENTIALS, "anthropic/claude-sonnet-4-5"),
        (None, None, {"OPENAI_API_KEY": "o", "HF_TOKEN": "h"}, "openai/gpt-5"),
        (None, None, {"HF_TOKEN": "h"}, "anthropic/claude-opus-4.8:fal-ai"),
        (None, None, {"ANTHROPIC_API_KEY": "", "HF_TOKEN": "h"}, "anthropic/claude-opus-4.8:fal-ai"),
        ("", "ollama/config", {}, "ollama/config"),
        ("huggingface/moonshotai/Kimi-K2.6", None, {}, "huggingface/moonshotai/Kimi-K2.6"),
        (" huggingface/openai/gpt-oss-120b ", None, KEYS, "huggingface/openai/gpt-oss-120b"),
    ],
    ids=[
        "cli-first",
        "then-config",
        "anthropic-key",
        "openai-key",
        "hf-token",
        "empty-key",
        "empty-cli",
        "hf-kept",
        "hf-kept-with-key",
    ],
)
def test_model_pick_order(cli, config, environ, expected) -> None:
    assert pick_model(cli, config, environ) == expected


def test_an_explicit_router_id_picked_goes_to_the_router_even_with_the_providers_key() -> None:
    environ = {**KEYS, **ROUTER}
    spec = resolve_model(pick_model("huggingface/openai/gpt-oss-120b", None, environ), environ)
    assert (spec.kind, spec.model_id, spec.api_key) == ("router", "openai/gpt-oss-120b", "hf_router01")


@pytest.mark.parametrize(
    ("model_id", "kind"),
    [
        ("ollama_chat/llama3:latest", "litellm"),
        ("openai/ft:gpt-4o-mini:org:name:id", "litellm"),
        ("openai/ft:gpt-4o-mini:my-org::abc123", "litellm"),
        ("openai/gpt-oss-120b:groq", "router"),
        ("openai/gpt-oss-120b:cheapest", "router"),
        ("anthropic/claude-opus-4.8:fal-ai", "router"),
        ("moonshotai/Kimi-K2.6:somenewprovider", "router"),
    ],
)
def test_a_colon_after_a_litellm_provider_is_a_router_suffix_only_for_a_router_provider(
    model_id: str, kind: str
) -> None:
    assert resolve_model(model_id, {**KEYS, **ROUTER}).kind == kind
    assert needs_hf_token(model_id, {**KEYS}) is (kind == "router")


def test_our_router_provider_list_has_every_provider_huggingface_hub_knows() -> None:
    import typing

    from huggingface_hub.inference._providers import PROVIDER_T

    from ml_intern.model.router import ROUTER_PROVIDERS

    assert set(typing.get_args(PROVIDER_T)) <= ROUTER_PROVIDERS


def test_no_model_and_no_credential_names_every_option() -> None:
    with pytest.raises(ModelError) as caught:
        pick_model(None, None, {"GITHUB_TOKEN": "unrelated"})
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in message
    for option in (
        "--model",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "HF_TOKEN",
        "hf auth login",
        "ollama",
        "vLLM",
    ):
        assert option in message


@pytest.mark.parametrize(
    ("model_id", "environ", "needed"),
    [
        ("moonshotai/Kimi-K2.6:novita", {}, True),
        ("anthropic/claude-opus-4.8:fal-ai", {"ANTHROPIC_API_KEY": "k"}, True),
        ("moonshotai/Kimi-K2.6:novita", ROUTER, False),
        ("anthropic/claude-sonnet-4-5", {}, False),
        ("ollama/qwen3:8b", {}, False),
    ],
)
def test_router_only_ids_need_a_hugging_face_token(model_id: str, environ: dict, needed: bool) -> None:
    assert needs_hf_token(model_id, environ) is needed


@pytest.mark.parametrize(
    ("model_id", "variable"),
    [
        ("anthropic/x", "ANTHROPIC_API_KEY"),
        ("moonshotai/Kimi-K2.6:novita", "HF_TOKEN"),
        ("vllm/x", "VLLM_API_KEY"),
    ],
)
def test_a_rejected_key_names_the_variable_to_fix(model_id: str, variable: str) -> None:
    assert credential_variable(model_id).startswith(variable)
