"""The validated agent configuration: one pydantic model per section, defaults in main_agent_config.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ml_intern.configs.fields import Duration, Float, ImportSpec, Int, Regex, Section
from ml_intern.configs.mcp_server import McpServer, enabled_servers

# Keys the original ml-intern accepts that we ignore with a warning (its configs must load unchanged).
ORIGINAL_TOP_LEVEL_KEYS = {
    *("session_dataset_repo", "auto_save_interval", "heartbeat_interval_s"),
    *("auto_file_upload", "skill_reflection"),
}
PACKAGED_CONFIG = Path(__file__).with_name("main_agent_config.json")
UNLIMITED_ITERATIONS = 10_000  # what a negative max_iterations ("unlimited", the original's -1) means
# Whether calls of a tool need approval: ask (a human decides, or the --approval policy), never, or always
# (no blanket approval, /yolo and --approval auto included, approves them).
ApprovalSetting = Literal["ask", "never", "always"]
# Reasoning effort levels, lowest first (the original's; "off" in /effort and the config means None).
EFFORT_LEVELS = ("minimal", "low", "medium", "high", "xhigh", "max")
EFFORT_OFF = ("off", "none")  # words that turn reasoning effort off (config and /effort)
Effort = Literal["minimal", "low", "medium", "high", "xhigh", "max"]


def packaged_defaults() -> dict[str, Any]:
    """The raw packaged config (the one source of defaults, approval patterns included)."""
    return json.loads(PACKAGED_CONFIG.read_text(encoding="utf-8"))


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
    """The local shell tool and its boundary (DESIGN.md "The boundary")."""

    timeout: Int = Field(120, ge=1)  # default seconds before a command is killed
    confine: Literal["auto", "on", "off"] = "auto"  # bubblewrap: auto uses it where it runs; on: refuse
    # to run bash without it; off: never (then every bash call needs approval under `ask`)
    env_passthrough: list[str] = []  # secret-looking environment variables bash may still see, by name
    network: bool = True  # confined commands may use the network (pip, Hub downloads)
    hidden_paths: list[str] = []  # more paths bash must not see, next to the credential locations hidden
    replace_approval_patterns: bool = False  # true: `approval_patterns` replaces the defaults, not extends
    approval_patterns: list[Regex] = Field(
        default_factory=lambda: packaged_defaults()["bash"]["approval_patterns"]
    )

    def matched_approval_pattern(self, command: str) -> str | None:
        """The first approval pattern that `command` matches, or None."""
        return next((p for p in self.approval_patterns if re.search(p, command)), None)


class SandboxConfig(Section):
    """The sandbox runtime: tools run in a private Hugging Face Space of the user's (tools/sandbox/)."""

    preload: bool = True  # start the (free, cpu-basic) sandbox in the background when the run starts
    bash_timeout: Int = Field(240, ge=1)  # default seconds before a sandbox command is killed
    bash_max_timeout: Int = Field(1200, ge=1)  # the longest a model may ask for
    start_timeout: Duration = "10m"  # how long to wait for a new sandbox to run before giving up
    sleep_time: Duration = "30m"  # paid hardware sleeps (stops billing, loses its files) when idle this long
    max_hours: Float = Field(2.0, gt=0)  # paid hardware is deleted after this long: its cost is bounded


class UndoConfig(Section):
    """Workspace snapshots, which let undo put back the files a turn changed."""

    keep_turns: Int = Field(50, ge=1)  # newest user turns per thread whose files undo can put back (older
    # ones are dropped, and their blobs pruned, a fifth of this at a time)


class ResearchConfig(Section):
    """The research sub-agent."""

    model: str | None = None  # None: the main model
    max_iterations: Int = Field(40, ge=1)


class HfJobsConfig(Section):
    """Hugging Face Jobs."""

    default_timeout: Duration = "30m"  # for jobs started without a timeout
    wait_limit: Duration = "6h"  # how long `run` waits for a job before returning while it keeps running
    poll_interval: Duration = "10s"  # how often a waited-for job's status is checked while its log is quiet
    retry_delay: Duration = "1s"  # unused: Hub requests follow the `http` section (kept so configs load)


class HttpConfig(Section):
    """Retries of Hub and web requests answered 429 or 5xx (tools/http.py, tools/hub/client.py)."""

    retry_attempts: Int = Field(3, ge=1)  # total tries, the first included (at most 6 are sent)
    retry_delay: Float = Field(1.0, ge=0)  # first backoff in seconds, doubled on each retry
    max_retry_delay: Float = Field(4.0, ge=0)  # longest wait; a longer Retry-After ends the retries


class PapersConfig(Section):
    """Where hf_papers reads full paper text and asks Semantic Scholar (key: env S2_API_KEY)."""

    html_urls: list[str] = ["https://arxiv.org/html", "https://ar5iv.labs.arxiv.org/html"]
    semantic_scholar_url: str = "https://api.semanticscholar.org"


class DocsConfig(Section):
    """Documentation sources outside the Hub's own docs."""

    gradio_url: str = "https://www.gradio.app/llms.txt"  # Gradio's documentation as one Markdown file


# The events that may notify a destination by themselves (the original's SUPPORTED_AUTO_EVENT_TYPES).
AutoEvent = Literal["approval_required", "error", "turn_complete"]


class Destination(Section):
    """A Slack destination: an incoming webhook, or a bot token and a channel (chat.postMessage)."""

    provider: Literal["slack"] = "slack"
    webhook_url: str | None = None  # "${SLACK_WEBHOOK_URL}"
    token: str | None = None  # "${SLACK_BOT_TOKEN}"
    channel: str | None = None
    allow_agent_tool: bool = False  # the model's notify tool may send here
    allow_auto_events: bool = False  # approval_required / error / turn_complete are sent here


class MessagingConfig(Section):
    """Out-of-band notifications (the original's `messaging` section)."""

    enabled: bool = False
    auto_event_types: list[AutoEvent] = ["approval_required", "error", "turn_complete"]
    destinations: dict[str, Destination] = {}


class ProvenanceConfig(Section):
    """What marks the repos the agent creates or pushes to as ml-intern's."""

    tag_repos: bool = True  # the `ml-intern` tag and a "Generated by ML Intern" section in the card
    collection: bool = True  # a private collection per thread listing them


class WebSearchConfig(Section):
    """The keyless search page web_search reads."""

    url: str = "https://html.duckduckgo.com/html/"


class AgentConfig(Section):
    """Everything the agent reads from its config files."""

    model_name: str | None = None  # litellm, router or local id; None: picked from the credentials
    reasoning_effort: Effort | None = "high"  # the highest effort asked for; lower levels are tried when a
    # model rejects it (model/effort.py); null: never ask for reasoning
    bill_to: str | None = None  # Hugging Face org billed for router calls (X-HF-Bill-To); None: the user
    max_iterations: Int = 300  # model calls per turn; negative (-1): unlimited (UNLIMITED_ITERATIONS)
    request_timeout: Float = Field(600, gt=0)  # seconds one model request may take before it is retried
    stream_idle_timeout: Float = Field(120, gt=0)  # seconds a model reply may send nothing before a retry
    roots: list[str] = []  # more directories the local tools may change, next to the working directory
    tool_approval: dict[str, ApprovalSetting] = {}  # per tool name (MCP and custom tools): ask|never|always
    approval: Literal["ask", "auto", "deny"] | None = None  # None: the CLI's default for the mode
    yolo_mode: bool = False  # approve every call without asking
    confirm_cpu_jobs: bool = True  # CPU-only HF jobs need approval too
    save_sessions: bool = False
    share_traces: bool = False
    personal_trace_repo_template: str = "{hf_user}/ml-intern-sessions"  # where traces go ({hf_user}: you)
    max_cost_usd: Float | None = Field(None, ge=0)  # per-turn USD budget: model calls + running HF jobs
    max_tokens: Int | None = Field(None, ge=1)  # per-turn token budget: input + output of every call
    yolo_cost_cap_usd: Float | None = Field(5.0, ge=0)  # paid calls yolo approves per thread; null: no cap
    usage_threshold_usd: Float | None = Field(5.0, gt=0)  # a chat asks to go on at this spend, then x2
    compaction: CompactionConfig = CompactionConfig()
    retries: RetriesConfig = RetriesConfig()
    bash: BashConfig = BashConfig()
    undo: UndoConfig = UndoConfig()
    mcpServers: dict[str, McpServer] = {}  # the original's key name
    tools: list[ImportSpec] = []  # custom tools: "package.module:attr"
    research: ResearchConfig = ResearchConfig()
    hf_jobs: HfJobsConfig = HfJobsConfig()
    http: HttpConfig = HttpConfig()
    papers: PapersConfig = PapersConfig()
    web_search: WebSearchConfig = WebSearchConfig()
    docs: DocsConfig = DocsConfig()
    messaging: MessagingConfig = MessagingConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    tool_runtime: Literal["local", "sandbox"] = "local"  # where bash/read/write/edit run (new threads)
    # postgresql://… shared by several machines; None: SQLite in ML_INTERN_HOME
    database_url: str | None = None
    sandbox: SandboxConfig = SandboxConfig()

    @field_validator("max_iterations")
    @classmethod
    def unlimited_iterations(cls, value: int) -> int:
        """-1 (any negative) is the original's "unlimited"; 0 would allow no model call."""
        if value == 0:
            raise ValueError("0 allows no model call: use a number >= 1, or -1 for unlimited")
        return UNLIMITED_ITERATIONS if value < 0 else value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def effort_off(cls, value: Any) -> Any:
        """`"off"` / `"none"` (as /effort takes them) mean null: never ask for reasoning."""
        return None if isinstance(value, str) and value.strip().lower() in EFFORT_OFF else value

    @field_validator("mcpServers", mode="before")
    @classmethod
    def drop_disabled_servers(cls, value: Any) -> Any:
        """Servers set to null or `"enabled": false` are not started (the default HF server, say)."""
        return enabled_servers(value)


def as_config(value: AgentConfig | dict[str, Any] | None) -> AgentConfig:
    """`value` as a validated AgentConfig (a dict is validated over the schema's defaults)."""
    if isinstance(value, AgentConfig):
        return value
    return AgentConfig.model_validate(value or {})
