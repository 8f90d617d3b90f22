"""HfApi calls for `hf_jobs`: namespace resolved once, 429/5xx retried, errors worded for the model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.pricing import parse_seconds

RETRIES = 3
TOKEN_HELP = (
    "Create a token with write access (or a fine-grained token with the Jobs permission) at "
    "https://huggingface.co/settings/tokens, set it as HF_TOKEN in the environment, and restart ml-intern."
)


class JobsClient:
    """One HfApi for the run, bound to `env.hf_endpoint` and `env.hf_token`."""

    def __init__(self, env: ToolEnv) -> None:
        self.api = HfApi(endpoint=env.hf_endpoint, token=env.hf_token or False)
        self.token = env.hf_token
        self.retry_base_seconds = parse_seconds(env.config.hf_jobs.retry_delay)  # doubled at each retry
        self._namespace: str | None = None

    async def namespace(self) -> str:
        """The user's name (jobs are namespaced by user), asked once per run."""
        if not self.token:
            raise ToolError(f"HF_TOKEN is not set, and Hugging Face Jobs need one. {TOKEN_HELP}")
        if self._namespace is None:
            whoami = await self.call("checking your HF account", self.api.whoami, retry_errors=True)
            self._namespace = str(whoami["name"])
        return self._namespace

    async def jobs(self, what: str, method: Callable[..., Any], missing: str = "", **kwargs: Any) -> Any:
        """Call an HfApi jobs method in the user's namespace, retrying 5xx; `missing` is the 404 message."""
        namespace = await self.namespace()
        try:
            return await self.call(what, method, namespace=namespace, retry_errors=True, **kwargs)
        except ToolError as err:
            if missing and _status(err.__cause__) == 404:
                raise ToolError(f"{missing} (namespace {namespace}).") from err.__cause__
            raise

    async def create(self, what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """Call an HfApi method that creates something; only 429 is retried (a 5xx may have created it)."""
        namespace = await self.namespace()
        return await self.call(what, method, namespace=namespace, retry_errors=False, **kwargs)

    async def call(self, what: str, method: Callable[..., Any], retry_errors: bool, **kwargs: Any) -> Any:
        """Run a blocking HfApi call in a thread, retrying 429 (and 5xx when `retry_errors`)."""
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(_materialise, method, kwargs)
            except HfHubHTTPError as err:
                status = _status(err)
                retryable = status == 429 or (retry_errors and status >= 500)
                if not retryable or attempt == RETRIES:
                    raise ToolError(explain(err, status, what, attempt)) from err
            except Exception as err:  # connection refused, DNS, timeouts: say so instead of a traceback
                raise ToolError(f"Could not reach the Hugging Face Jobs API while {what}: {err!r}") from err
            await asyncio.sleep(self.retry_base_seconds * 2**attempt)
            attempt += 1


def _status(err: BaseException | None) -> int:
    """The HTTP status of a Hub error, 0 when there is none."""
    response = getattr(err, "response", None)
    return response.status_code if response is not None else 0


def _materialise(method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call `method`; drain it when it returns a lazy iterator (list_jobs pages lazily)."""
    result = method(**kwargs)
    return list(result) if hasattr(result, "__next__") else result


def explain(err: HfHubHTTPError, status: int, what: str, retries: int) -> str:
    """One paragraph saying what went wrong and what to do next."""
    detail = (getattr(err, "server_message", None) or str(err).splitlines()[0]).strip()
    if status == 401:
        return f"Hugging Face rejected HF_TOKEN (401) while {what}: it is invalid or expired. {TOKEN_HELP}"
    if status == 403:
        return f"HF_TOKEN lacks the permission needed for Jobs (403) while {what} ({detail}). {TOKEN_HELP}"
    if status == 402:
        return (
            f"Hugging Face Jobs refused to start ({detail}): the namespace has no credits. Ask the user to "
            "add credits at https://huggingface.co/settings/billing, then run the same job again."
        )
    if status == 404:
        return f"Not found (404) while {what}."
    if status == 429 or status >= 500:
        return f"The Hugging Face Jobs API answered {status} while {what} ({detail}) after {retries} retries."
    return f"The Hugging Face Jobs API refused the request ({status}) while {what}: {detail}"
