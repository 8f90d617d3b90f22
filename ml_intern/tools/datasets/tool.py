"""`hf_inspect_dataset`: audit a Hub dataset in one call through the datasets-server (dataset viewer) API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from langchain_core.tools import BaseTool
from pydantic import BaseModel

from ml_intern.tools.args import parse_args, tool_schema
from ml_intern.tools.base import ToolEnv, ToolError, clip
from ml_intern.tools.datasets.report import build_report
from ml_intern.tools.http import WebClient
from ml_intern.tools.hub.client import make_api
from ml_intern.tools.hub.failures import missing_repo, suggestion_text

MAX_SAMPLE_ROWS = 10
MAX_REPORT_CHARS = 15_000
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

DESCRIPTION = (
    "Audit a Hub dataset: configs, splits, row counts, schema, sample rows, chat format, labels, missing "
    "values. Use before training on it."
)


class InspectArgs(BaseModel):
    dataset: str
    config: str = ""
    split: str = ""
    sample_rows: int = 3


class ViewerError(Exception):
    """A datasets-server endpoint failed; `status` is the HTTP status, None for a network failure."""

    def __init__(self, endpoint: str, status: int | None, message: str) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.status = status


async def fetch(client: httpx.AsyncClient, endpoint: str, **params: str) -> dict[str, Any]:
    """GET one datasets-server endpoint as JSON (the client retries throttling and server errors)."""
    try:
        response = await client.get(endpoint, params=params)
    except httpx.RequestError as error:
        raise ViewerError(endpoint, None, f"network error: {error}") from None
    if response.status_code != 200:
        raise ViewerError(endpoint, response.status_code, error_text(response))
    return response.json()


def error_text(response: httpx.Response) -> str:
    """The server's `error` field, else the start of the body."""
    try:
        return f"HTTP {response.status_code}: {response.json().get('error', '')}"[:300]
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"


async def gather_named(calls: dict[str, Any]) -> dict[str, Any]:
    """Await coroutines concurrently; each result is its value or the exception it raised."""
    values = await asyncio.gather(*calls.values(), return_exceptions=True)
    return dict(zip(calls, values, strict=True))


def pick_split(splits: dict[str, Any], config: str, split: str) -> tuple[str, str]:
    """The config and split to sample: the requested ones, else the first config and train (or its first)."""
    pairs = [(item["config"], item["split"]) for item in splits.get("splits", [])]
    configs = list(dict.fromkeys(c for c, _ in pairs))
    if not configs:
        raise ToolError("The dataset viewer lists no configs or splits for this dataset.")
    chosen = config or configs[0]
    if chosen not in configs:
        raise ToolError(f"No config '{config}'; available: {', '.join(configs[:30])}.")
    names = [s for c, s in pairs if c == chosen]
    if split and split not in names:
        raise ToolError(f"No split '{split}' in config '{chosen}'; available: {', '.join(names)}.")
    return chosen, split or ("train" if "train" in names else names[0])


async def inspect(env: ToolEnv, a: InspectArgs) -> str:
    """Every section of the audit, from two rounds of concurrent requests."""
    async with WebClient(env, base_url=env.datasets_server_url, timeout=TIMEOUT) as client:
        first = await gather_named(
            {
                name: fetch(client, f"/{name}", dataset=a.dataset)
                for name in ("is-valid", "splits", "size", "parquet")
            }
        )
        if isinstance(first["splits"], Exception):
            raise ToolError(await access_failure(env, a.dataset, first["splits"]))
        config, split = pick_split(first["splits"], a.config, a.split)
        second = await gather_named(
            {
                "info": fetch(client, "/info", dataset=a.dataset, config=config),
                "first-rows": fetch(client, "/first-rows", dataset=a.dataset, config=config, split=split),
            }
        )
    responses = first | second
    warnings = [str(value) for value in responses.values() if isinstance(value, Exception)]
    found = {name: value for name, value in responses.items() if not isinstance(value, Exception)}
    sample = min(max(a.sample_rows, 0), MAX_SAMPLE_ROWS)
    report = build_report(a.dataset, env.hf_endpoint, config, split, found, sample, warnings)
    return clip(report, MAX_REPORT_CHARS, "ask for fewer sample_rows or one config")


async def access_failure(env: ToolEnv, dataset: str, error: Exception) -> str:
    """Why the dataset could not be read, with what to do about it."""
    status = getattr(error, "status", None)
    if status in (401, 403, 404):
        lead = missing_repo(status, f"inspecting dataset {dataset}")
        return lead + await asyncio.to_thread(suggestion_text, make_api(env), dataset, ["dataset"])
    return f"The dataset viewer could not read {dataset}: {error}. Try hub_repo_details for its files."


class InspectDatasetTool(BaseTool):
    """The tool as a BaseTool: StructuredTool would drop the `config` argument, a name LangChain reserves
    for its RunnableConfig when the run method declares one."""

    name: str = "hf_inspect_dataset"
    description: str = DESCRIPTION
    env: ToolEnv

    def _run(self, **kwargs: Any) -> str:
        raise NotImplementedError("hf_inspect_dataset runs asynchronously only")

    async def _arun(self, **kwargs: Any) -> str:
        return await inspect(self.env, parse_args(InspectArgs, kwargs))


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build `hf_inspect_dataset` against the run's datasets-server."""
    return [InspectDatasetTool(env=env, args_schema=tool_schema(InspectArgs))]
