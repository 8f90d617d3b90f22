"""The validated agent configuration: one pydantic model per section, defaults in main_agent_config.json."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

PACKAGED_CONFIG = Path(__file__).with_name("main_agent_config.json")


def packaged_defaults() -> dict[str, Any]:
    """The raw packaged config (the one source of defaults, approval patterns included)."""
    return json.loads(PACKAGED_CONFIG.read_text(encoding="utf-8"))


def _reject_bool(value: Any) -> Any:
    """JSON true/false is not a number (pydantic would read it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {json.dumps(value)}")
    return value


def _check_regex(pattern: str) -> str:
    """Reject a pattern that does not compile, saying why."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression ({exc})") from None
    return pattern


def _full_match(pattern: str, message: str) -> AfterValidator:
    """Accept strings that fully match `pattern`; fail with `message` otherwise."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


Int = Annotated[int, BeforeValidator(_reject_bool)]
Float = Annotated[float, BeforeValidator(_reject_bool)]
Regex = Annotated[str, AfterValidator(_check_regex)]
ImportSpec = Annotated[str, _full_match(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", "expected 'package.module:attr'")]
Duration = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v),
    _full_match(r"\d+(\.\d+)?[smhd]?", "expected a duration such as 30m, 2h or 90s"),
]  # a bare number is seconds


class Section(BaseModel):
    """Base of every config section: unknown keys are reported, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class CompactionConfig(Section):
    """When and how the transcript is summarised to fit the context window."""

    threshold_tokens: Int = Field(170_000, ge=1)  # compact once the prompt exceeds this many tokens
    window_fraction: Float = Field(0.9, gt=0, le=1)  # ... or this fraction of the model's context window
    keep_recent_tokens: Int = Field(20_000, ge=0)  # recent messages kept verbatim after compaction


class RetriesConfig(Section):
    """How transient model-provider faults (429, 5xx, timeouts, dropped connections) are retried."""

    attempts: Int = Field(5, ge=0)  # retries after the first try
    base_delay: Float = Field(1.0, ge=0)  # seconds before the first retry, doubled each time (with jitter)
    max_delay: Float = Field(30.0, ge=0)  # cap on one wait, the provider's Retry-After included


class BashConfig(Section):
    """The local shell tool."""

    timeout: Int = Field(120, ge=1)  # default seconds before a command is killed
    approval_patterns: list[Regex] = Field(
        default_factory=lambda: packaged_defaults()["bash"]["approval_patterns"]
    )

    def matched_approval_pattern(self, command: str) -> str | None:
        """The first approval pattern that `command` matches, or None."""
        return next((p for p in self.approval_patterns if re.search(p, command)), None)


TRANSPORT_SYNONYMS = {"streamable_http": "http", "streamable-http": "http"}

# Keys the original ml-intern accepts that we ignore with a warning (its configs must load unchanged).
ORIGINAL_TOP_LEVEL_KEYS = {
    *("session_dataset_repo", "personal_trace_repo_template", "auto_save_interval", "heartbeat_interval_s"),
    *("auto_file_upload", "tool_runtime", "reasoning_effort", "skill_reflection", "messaging"),
}
ORIGINAL_MCP_SERVER_KEYS = {
    *("icon", "authentication", "auth", "sse_read_timeout", "tools", "include_tags", "exclude_tags"),
}


class McpServer(Section):
    """One MCP server, in the shape of the original ml-intern's (fastmcp) `mcpServers` entries."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # e.g. "env": {"PORT": 8080}

    transport: Literal["stdio", "http", "sse"]  # "streamable_http"/"streamable-http" read as "http"
    command: str | None = None  # stdio: the program to start
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None  # http / sse: the endpoint
    headers: dict[str, str] = {}
    timeout: Float = Field(30, gt=0)  # start-up seconds
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def infer_transport(cls, data: Any) -> Any:
        """Accept `type` for `transport`, map synonyms, and infer it from `command`/`url` when absent."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        alias = data.pop("type", None)
        transport = data.get("transport", alias)
        if transport is None and data.get("command") is not None:
            transport = "stdio"
        elif transport is None and isinstance(data.get("url"), str):
            transport = "sse" if re.search(r"/sse(/|$)", urlparse(data["url"]).path) else "http"
        elif transport is None:
            raise ValueError('needs "command" (stdio server) or "url" (http or sse server)')
        data["transport"] = (
            TRANSPORT_SYNONYMS.get(transport, transport) if isinstance(transport, str) else transport
        )
        return data

    @field_validator("timeout")
    @classmethod
    def milliseconds_to_seconds(cls, value: float) -> float:
        """Read 1000 and above as milliseconds, the unit of the canonical MCP config format."""
        return value / 1000 if value >= 1000 else value

    @model_validator(mode="after")
    def check_endpoint(self) -> McpServer:
        """A stdio server needs a command; an http or sse server needs an http(s) url."""
        if self.transport == "stdio" and not self.command:
            raise ValueError('a stdio server needs "command"')
        if self.transport != "stdio" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError(f'an {self.transport} server needs an http(s) "url"')
        return self


class ResearchConfig(Section):
    """The research sub-agent."""

    model: str | None = None  # None: the main model
    max_iterations: Int = Field(40, ge=1)


class HfJobsConfig(Section):
    """Hugging Face Jobs."""

    default_timeout: Duration = "30m"  # for jobs started without a timeout
    wait_limit: Duration = "30m"  # how long `run` waits for a job before returning while it keeps running
    poll_interval: Duration = "10s"  # how often a waited-for job's status is checked while its log is quiet
    retry_delay: Duration = "1s"  # first backoff delay for 429/5xx answers


class HttpConfig(Section):
    """Retries of the research tools' HTTP calls (429 and 5xx answers)."""

    retry_attempts: Int = Field(3, ge=1)  # total tries, the first included
    retry_delay: Float = Field(1.0, ge=0)  # first backoff in seconds, doubled on each retry
    max_retry_delay: Float = Field(4.0, ge=0)  # cap on one wait, Retry-After included


class PapersConfig(Section):
    """Where hf_papers reads full paper text."""

    html_urls: list[str] = ["https://arxiv.org/html", "https://ar5iv.labs.arxiv.org/html"]


class WebSearchConfig(Section):
    """The keyless search page web_search reads."""

    url: str = "https://html.duckduckgo.com/html/"


class AgentConfig(Section):
    """Everything the agent reads from its config files."""

    model_name: str | None = None  # litellm model id; None: the CLI picks one from the credentials found
    max_iterations: Int = Field(300, ge=1)  # model calls per turn
    request_timeout: Float = Field(600, gt=0)  # seconds one model request may take before it is retried
    approval: Literal["ask", "auto", "deny"] | None = None  # None: the CLI's default for the mode
    yolo_mode: bool = False  # approve every call without asking
    confirm_cpu_jobs: bool = True  # CPU-only HF jobs need approval too
    save_sessions: bool = False
    share_traces: bool = False
    max_cost_usd: Float | None = Field(None, ge=0)  # per-turn USD budget: model calls + running HF jobs
    max_tokens: Int | None = Field(None, ge=1)  # per-turn token budget: input + output of every call
    compaction: CompactionConfig = CompactionConfig()
    retries: RetriesConfig = RetriesConfig()
    bash: BashConfig = BashConfig()
    mcpServers: dict[str, McpServer] = {}  # the original's key name
    tools: list[ImportSpec] = []  # custom tools: "package.module:attr"
    research: ResearchConfig = ResearchConfig()
    hf_jobs: HfJobsConfig = HfJobsConfig()
    http: HttpConfig = HttpConfig()
    papers: PapersConfig = PapersConfig()
    web_search: WebSearchConfig = WebSearchConfig()


EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "an object",
    "model": "an object",
}
BOUNDS = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}


def describe_error(error: ErrorDetails) -> str:
    """Say in plain words what is wrong with one value, e.g. 'expected an integer, got "many"'."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        what = f"expected {ctx['expected']}"
    elif kind.split("_")[0] in EXPECTED and kind.endswith(("_type", "_parsing", "_from_float")):
        what = f"expected {EXPECTED[kind.split('_')[0]]}"
    elif kind in BOUNDS:
        what = BOUNDS[kind].format(**ctx)
    else:
        what = error["msg"][:1].lower() + error["msg"][1:]
    shown = json.dumps(error["input"], default=str)
    return f"{what}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def suggest_key(key: str) -> str:
    """' (did you mean X?)' for a near miss among the schema's key names, else ''."""
    names = {name for model in [AgentConfig, *Section.__subclasses__()] for name in model.model_fields}
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def as_config(value: AgentConfig | dict[str, Any] | None) -> AgentConfig:
    """`value` as a validated AgentConfig (a dict is validated over the schema's defaults)."""
    if isinstance(value, AgentConfig):
        return value
    return AgentConfig.model_validate(value or {})
