"""HfApi calls for `hf_jobs`: the namespace resolved once, failures worded by the Hub client for the model."""

from __future__ import annotations

import copy
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
    """The run's HfApi (its endpoint, token and retry policy) and the namespace jobs run in: the user's, or
    one the call asks for (`in_namespace`: the original's `namespace` argument, e.g. an org that pays)."""

    def __init__(self, env: ToolEnv) -> None:
        self.api = make_api(env)
        self.token = env.hf_token
        self.requested = ""  # the namespace a call asked for; "" is the user's own
        self._account: dict[str, Any] = {}  # whoami, asked once per run and shared with `in_namespace` views
        # Values no result or log line may show (the token, the values of job secrets sent), and their marks.
        self.hidden: dict[str, str] = {self.token: "[HF_TOKEN]"} if self.token else {}

    def hide_value(self, name: str, value: str) -> None:
        """Mark `value` (a secret sent to a job as `name`) wherever this client shows text."""
        if len(value) >= 4:  # shorter ones would mark up ordinary text
            self.hidden.setdefault(value, f"[{name}]")

    def hide(self, text: str) -> str:
        """`text` with the token and every secret value sent this run replaced by a mark."""
        for value, mark in self.hidden.items():
            text = text.replace(value, mark)
        return text

    def in_namespace(self, requested: str) -> JobsClient:
        """This client for jobs in `requested` (a user or org name; "" keeps the user's)."""
        if not requested.strip():
            return self
        view = copy.copy(self)
        view.requested = requested.strip()
        return view

    async def namespace(self) -> str:
        """The namespace of this client's jobs: the user's, or the requested one if it is the user or one of
        their organizations (whoami-v2 lists them), asked once per run."""
        if not self.token:
            raise ToolError(f"HF_TOKEN is not set, and Hugging Face Jobs need one: {TOKEN_HELP}.")
        if "whoami" not in self._account:
            whoami = await hub_call(self.api, self.api.whoami, "checking your HF account", hint=TOKEN_HELP)
            self._account["whoami"] = whoami
        whoami = self._account["whoami"]
        user = str(whoami["name"])
        if not self.requested or self.requested == user:
            return user
        orgs = [
            str(org["name"]) for org in whoami.get("orgs") or [] if isinstance(org, dict) and org.get("name")
        ]
        if self.requested not in orgs:
            raise ToolError(
                f"namespace '{self.requested}' is neither your account nor one of your organizations; "
                f"use one of: {', '.join([user, *orgs])}."
            )
        return self.requested

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
