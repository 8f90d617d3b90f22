"""Hugging Face credentials: whether a model needs a token, the token `hf auth login` saved, checking one."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from ml_intern.errors import UserError
from ml_intern.secrets import redact


def needs_hf_token(model_id: str, environ: Mapping[str, str]) -> bool:
    """Router-only ids (`org/model[:provider]`, `huggingface/...`) need a token; is one missing?"""
    from ml_intern.model.ids import LOCAL_SERVERS
    from ml_intern.model.router import is_router_only

    if environ.get("HF_TOKEN") or model_id.partition("/")[0] in LOCAL_SERVERS:
        return False
    return model_id.startswith("huggingface/") or ("/" in model_id and is_router_only(model_id))


def adopt_saved_hf_token(environ: MutableMapping[str, str]) -> bool:
    """Put a token saved by `hf auth login` into HF_TOKEN (when unset), so every component sees it."""
    if environ.get("HF_TOKEN"):
        return False
    from huggingface_hub import get_token

    token = get_token()
    if token:
        environ["HF_TOKEN"] = token
    return bool(token)


def verify_hf_token(token: str, endpoint: str) -> str:
    """The user name the Hub knows `token` as (blocking); a UserError when the Hub rejects it."""
    from ml_intern.tools.hub.client import hub_api

    try:
        info = hub_api(endpoint, token).whoami()
    except Exception as exc:  # HTTP errors and connection failures alike: say what happened
        detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise UserError(f"{endpoint} did not accept the token ({detail})") from None
    return str(info.get("name") or "?")


def save_hf_token(token: str) -> None:
    """Save the token where huggingface_hub (and `hf auth login`) keep it (blocking)."""
    from huggingface_hub import login

    login(token=token, add_to_git_credential=False)
