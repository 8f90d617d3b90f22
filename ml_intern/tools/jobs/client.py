"""HfApi calls for `hf_jobs`: the namespace resolved once, failures worded by the Hub client for the model."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.hub.client import hub_call, make_api

TOKEN_HELP = (
    "create a token with write access (or a fine-grained token with the Jobs permission) at "
    "https://huggingface.co/settings/tokens, set it as HF_TOKEN in the environment, and restart ml-intern"
)


class JobsClient:
    """The run's HfApi (its endpoint, token and retry policy) and the user's namespace."""

    def __init__(self, env: ToolEnv) -> None:
        self.api = make_api(env)
        self.token = env.hf_token
        self._namespace: str | None = None

    async def namespace(self) -> str:
        """The user's name (jobs are namespaced by user), asked once per run."""
        if not self.token:
            raise ToolError(f"HF_TOKEN is not set, and Hugging Face Jobs need one: {TOKEN_HELP}.")
        if self._namespace is None:
            whoami = await hub_call(self.api, self.api.whoami, "checking your HF account", hint=TOKEN_HELP)
            self._namespace = str(whoami["name"])
        return self._namespace

    async def jobs(self, what: str, method: Callable[..., Any], missing: str = "", **kwargs: Any) -> Any:
        """Call an HfApi jobs method in the user's namespace, one that may be sent twice without harm
        (reads, cancels, schedule changes); `missing` is the 404 message."""
        namespace = await self.namespace()
        missing = f"{missing} (namespace {namespace})." if missing else ""
        call = partial(method, namespace=namespace, **kwargs)
        return await hub_call(self.api, call, what, repeatable=True, missing=missing, hint=TOKEN_HELP)

    async def create(self, what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """Call an HfApi method that creates something: never sent twice unless the Hub refused it (429)."""
        namespace = await self.namespace()
        return await hub_call(self.api, partial(method, namespace=namespace, **kwargs), what, hint=TOKEN_HELP)
