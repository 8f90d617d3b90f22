"""Model resolution (DESIGN.md "Models"): local server prefixes, hosted ids, and which model is picked."""

from __future__ import annotations

import pytest

from ml_intern.errors import EXIT_USAGE
from ml_intern.model.ids import ModelError, ModelSpec, pick_model, resolve_model

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


@pytest.mark.parametrize(
    "model_id",
    ["anthropic/claude-sonnet-4-5", "openai/gpt-5", "huggingface/moonshotai/Kimi-K2-Instruct"],
)
def test_hosted_ids_pass_to_litellm_unchanged(model_id: str) -> None:
    spec = resolve_model(model_id, {"VLLM_BASE_URL": "http://ignored"})
    assert spec == ModelSpec(model_id=model_id, litellm_model=model_id)
    assert not spec.is_local


@pytest.mark.parametrize(
    ("model_id", "words"),
    [
        ("gpt-5", "needs a provider prefix"),
        ("vllm/", "needs a provider prefix"),
        ("notaprovider/some-model", "unknown model provider 'notaprovider'"),
    ],
)
def test_unusable_model_ids_raise_a_usage_error(model_id: str, words: str) -> None:
    with pytest.raises(ModelError, match=words) as caught:
        resolve_model(model_id, {})
    assert caught.value.exit_code == EXIT_USAGE


def test_unknown_provider_error_names_the_local_prefixes() -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model("foo/bar", {})
    assert all(f"{prefix}/" in str(caught.value) for prefix, _, _ in LOCAL)


CREDENTIALS = {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o", "HF_TOKEN": "h"}


@pytest.mark.parametrize(
    ("cli", "config", "environ", "expected"),
    [
        ("vllm/cli", "openai/config", CREDENTIALS, "vllm/cli"),
        (None, "openai/config", CREDENTIALS, "openai/config"),
        (None, None, CREDENTIALS, "anthropic/claude-sonnet-4-5"),
        (None, None, {"OPENAI_API_KEY": "o", "HF_TOKEN": "h"}, "openai/gpt-5"),
        (None, None, {"HF_TOKEN": "h"}, "huggingface/moonshotai/Kimi-K2-Instruct"),
        (None, None, {"ANTHROPIC_API_KEY": "", "HF_TOKEN": "h"}, "huggingface/moonshotai/Kimi-K2-Instruct"),
        ("", "ollama/config", {}, "ollama/config"),
    ],
    ids=["cli-first", "then-config", "anthropic-key", "openai-key", "hf-token", "empty-key", "empty-cli"],
)
def test_model_pick_order(cli, config, environ, expected) -> None:
    assert pick_model(cli, config, environ) == expected


def test_no_model_and_no_credential_names_every_option() -> None:
    with pytest.raises(ModelError) as caught:
        pick_model(None, None, {"GITHUB_TOKEN": "unrelated"})
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in message
    for option in ("--model", "model_name", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "HF_TOKEN"):
        assert option in message
