"""Config loading: merge, `.env`, `${VAR}` substitution, validation errors, original-config compatibility."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ml_intern.configs.loader import (
    PACKAGED_CONFIG,
    ConfigError,
    Layer,
    deep_merge,
    default_config,
    file_defining,
    load_config,
)
from ml_intern.configs.schema import AgentConfig, packaged_defaults

# The original ml-intern's cli_agent_config.json, plus the frontend's `${VAR:-default}` model and the
# kind of extra keys its fastmcp-based loader accepted.
ORIGINAL_CONFIG = {
    "model_name": "${ML_INTERN_DEFAULT_MODEL_ID:-anthropic/claude-opus-4.8:fal-ai}",
    "save_sessions": True,
    "session_dataset_repo": "smolagents/ml-intern-sessions",
    "share_traces": True,
    "personal_trace_repo_template": "{hf_user}/ml-intern-sessions",
    "yolo_mode": False,
    "confirm_cpu_jobs": True,
    "auto_file_upload": True,
    "tool_runtime": "local",
    "messaging": {
        "enabled": False,
        "auto_event_types": ["approval_required", "error", "turn_complete"],
        "destinations": {"slack.default": {"provider": "slack", "token": "${SLACK_BOT_TOKEN}"}},
    },
    "mcpServers": {
        "hf-mcp-server": {"transport": "http", "url": "https://huggingface.co/mcp?login"},
        "files": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
            "env": {"DEBUG": "0"},
            "description": "local files",
            "icon": "folder.png",
        },
    },
}


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An environment whose home is an empty temp dir (no real user config is ever read)."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def write_user_config(environ: dict[str, str], data: object) -> Path:
    """Write the default user config file (~/.config/ml-intern/config.json) and return its path."""
    path = Path(environ["HOME"]) / ".config" / "ml-intern" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def load_error(cwd: Path, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cwd, environ)
    return str(info.value)


def test_packaged_defaults_load_alone(cwd, environ):
    loaded = load_config(cwd, environ)
    assert loaded.config == default_config()
    assert loaded.config.max_iterations == 300 and loaded.config.model_name is None
    assert loaded.config.compaction.threshold_tokens == 170_000
    assert loaded.sources == [PACKAGED_CONFIG]
    assert loaded.warnings == []
    assert loaded.env == environ


def test_model_defaults_match_the_packaged_file():
    assert AgentConfig() == default_config()
    assert len(AgentConfig().bash.approval_patterns) >= 5


def test_deep_merge_merges_nested_objects_and_replaces_lists():
    base = {"a": {"x": 1, "y": [1, 2], "deep": {"k": 1}}, "b": 2}
    override = {"a": {"y": [3], "deep": {"j": 2}}, "c": 3}
    assert deep_merge(base, override) == {"a": {"x": 1, "y": [3], "deep": {"k": 1, "j": 2}}, "b": 2, "c": 3}
    assert base["a"]["y"] == [1, 2]


def test_user_config_is_deep_merged_over_packaged_defaults(cwd, environ):
    path = write_user_config(
        environ, {"compaction": {"threshold_tokens": 1000}, "bash": {"approval_patterns": ["^danger"]}}
    )
    loaded = load_config(cwd, environ)
    assert loaded.config.compaction.threshold_tokens == 1000
    assert loaded.config.compaction.window_fraction == 0.9
    patterns = loaded.config.bash.approval_patterns
    assert patterns[0] == "^danger" and patterns[1:] == packaged_defaults()["bash"]["approval_patterns"]
    assert loaded.config.bash.timeout == 120
    assert loaded.sources == [PACKAGED_CONFIG, path]


def test_xdg_config_home_locates_the_user_file(cwd, environ, tmp_path):
    path = tmp_path / "xdg" / "ml-intern" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"max_iterations": 7}')
    write_user_config(environ, {"max_iterations": 99})  # ~/.config is not read when XDG_CONFIG_HOME is set
    loaded = load_config(cwd, {**environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert loaded.config.max_iterations == 7
    assert loaded.sources[-1] == path


def test_ml_intern_config_names_the_user_file(cwd, environ):
    write_user_config(environ, {"max_iterations": 99})
    (cwd / "mine.json").write_text('{"max_iterations": 5}')
    loaded = load_config(cwd, {**environ, "ML_INTERN_CONFIG": "mine.json"})
    assert loaded.config.max_iterations == 5
    assert loaded.sources[-1] == cwd / "mine.json"


def test_missing_ml_intern_config_file_is_an_error(cwd, environ):
    missing = cwd / "nope.json"
    message = load_error(cwd, {**environ, "ML_INTERN_CONFIG": str(missing)})
    assert message == f"config error in {missing}: no such file (named by ML_INTERN_CONFIG)"


def test_invalid_json_error_names_file_and_line(cwd, environ):
    path = write_user_config(environ, '{\n  "max_iterations": 5,\n}')
    message = load_error(cwd, environ)
    assert message.startswith(f"config error in {path}: invalid JSON at line 3")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("${MODEL}", {"MODEL": "openai/gpt-4o"}, "openai/gpt-4o"),
        ("${MODEL}", {"MODEL": ""}, ""),
        ("${MODEL:-anthropic/claude}", {}, "anthropic/claude"),
        ("${MODEL:-anthropic/claude}", {"MODEL": "openai/gpt-4o"}, "openai/gpt-4o"),
        ("${MODEL:-anthropic/claude}", {"MODEL": ""}, "anthropic/claude"),
        ("${PROVIDER:-vllm}/${NAME}", {"NAME": "qwen"}, "vllm/qwen"),
    ],
)
def test_env_substitution(cwd, environ, template, variables, expected):
    write_user_config(environ, {"model_name": template})
    assert load_config(cwd, {**environ, **variables}).config.model_name == expected


def test_substituted_strings_are_converted_to_the_field_type(cwd, environ):
    write_user_config(environ, {"max_iterations": "${MAX_ITER:-12}", "yolo_mode": "${YOLO}"})
    config = load_config(cwd, {**environ, "YOLO": "true"}).config
    assert config.max_iterations == 12
    assert config.yolo_mode is True


def test_unset_variable_error_names_key_file_and_variable(cwd, environ):
    server = {"url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer ${MY_TOKEN}"}}
    path = write_user_config(environ, {"mcpServers": {"remote": server}})
    assert load_error(cwd, environ) == (
        f"config error in {path}: mcpServers.remote.headers.Authorization: environment variable MY_TOKEN "
        "is not set (set it, or write ${MY_TOKEN:-default})"
    )


@pytest.mark.parametrize(
    ("user_config", "expected"),
    [
        ({"max_iterations": "many"}, 'max_iterations: expected an integer, got "many"'),
        ({"max_iterations": 0}, "max_iterations: 0 allows no model call: use a number >= 1, or -1"),
        ({"max_iterations": True}, "max_iterations: expected a number, got true"),
        ({"max_cost_usd": "${COST:-}"}, 'max_cost_usd: expected a number, got ""'),
        ({"yolo_mode": "maybe"}, 'yolo_mode: expected true or false, got "maybe"'),
        ({"approval": "often"}, "approval: expected 'ask', 'auto' or 'deny', got \"often\""),
        ({"compaction": {"window_fraction": "x"}}, 'compaction.window_fraction: expected a number, got "x"'),
        ({"compaction": []}, "compaction: expected an object, got []"),
        ({"tools": ["not a spec"]}, "tools[0]: expected 'package.module:attr'"),
        (
            {"bash": {"approval_patterns": ["ok", "("]}},
            "bash.approval_patterns[1]: invalid regular expression",
        ),
        (
            {"hf_jobs": {"default_timeout": "soon"}},
            "hf_jobs.default_timeout: expected a duration such as 30m",
        ),
        ({"undo": {"keep_turns": 0}}, "undo.keep_turns: must be at least 1, got 0"),
        ({"undo": {"keep_turns": True}}, "undo.keep_turns: expected a number, got true"),
    ],
)
def test_wrong_value_error_names_key_and_file(cwd, environ, user_config, expected):
    path = write_user_config(environ, user_config)
    assert load_error(cwd, environ).startswith(f"config error in {path}: {expected}")


@pytest.mark.parametrize(
    ("user_config", "expected"),
    [
        ({"max_iteration": 5}, "max_iteration: unknown key (did you mean max_iterations?)"),
        ({"compaction": {"treshold_tokens": 5}}, "compaction.treshold_tokens: unknown key (did you mean"),
        ({"mcpServers": {"s": {"command": "x", "colour": "red"}}}, "mcpServers.s.colour: unknown key"),
        ({"frobnicate": True}, "frobnicate: unknown key"),
        ({"undo": {"keep_turn": 5}}, "undo.keep_turn: unknown key (did you mean keep_turns?)"),
    ],
)
def test_unknown_key_is_an_error(cwd, environ, user_config, expected):
    path = write_user_config(environ, user_config)
    assert load_error(cwd, environ).startswith(f"config error in {path}: {expected}")


def test_undo_keeps_50_turns_unless_the_user_config_says_otherwise(cwd, environ):
    assert load_config(cwd, environ).config.undo.keep_turns == 50
    write_user_config(environ, {"undo": {"keep_turns": 5}})
    assert load_config(cwd, environ).config.undo.keep_turns == 5


def test_original_config_loads_with_warnings(cwd, environ):
    path = write_user_config(environ, ORIGINAL_CONFIG)
    # SLACK_BOT_TOKEN is unset: a disabled `messaging` drops its destinations, ignored keys are not
    # substituted; an HF token keeps the HF MCP server
    loaded = load_config(cwd, {**environ, "HF_TOKEN": "hf_x"})
    assert loaded.config.model_name == "anthropic/claude-opus-4.8:fal-ai"
    assert loaded.config.save_sessions and loaded.config.share_traces
    assert loaded.config.personal_trace_repo_template == "{hf_user}/ml-intern-sessions"
    hub = loaded.config.mcpServers["hf-mcp-server"]
    assert (hub.transport, hub.url) == ("http", "https://huggingface.co/mcp?login")
    files = loaded.config.mcpServers["files"]
    assert (files.transport, files.command, files.env, files.description) == (
        "stdio",
        "npx",
        {"DEBUG": "0"},
        "local files",
    )
    ignored = [
        "session_dataset_repo",
        "auto_file_upload",
        "mcpServers.files.icon",
    ]
    note = "(an original ml-intern setting this version does not support)"
    assert sorted(loaded.warnings) == sorted(f"{path}: ignoring {key} {note}" for key in ignored)
    assert not loaded.config.messaging.enabled and loaded.config.messaging.destinations == {}
    assert loaded.config.tool_runtime == ORIGINAL_CONFIG["tool_runtime"]


def test_dotenv_fills_unset_variables_without_overriding(cwd, environ):
    (cwd / ".env").write_text("MODEL=from-dotenv\nONLY_IN_DOTENV=1\n")
    write_user_config(environ, {"model_name": "${MODEL}", "research": {"model": "m-${ONLY_IN_DOTENV}"}})
    loaded = load_config(cwd, {**environ, "MODEL": "from-environment"})
    assert loaded.config.model_name == "from-environment"
    assert loaded.config.research.model == "m-1"
    assert loaded.env["MODEL"] == "from-environment" and loaded.env["ONLY_IN_DOTENV"] == "1"
    assert loaded.sources[0] == cwd / ".env"
    assert "ONLY_IN_DOTENV" not in os.environ


def test_dotenv_cannot_name_the_config_file_or_steer_ml_intern(cwd, environ):
    # a planted `.env` (a cloned repo, a command) must not pick the next run's config or bwrap binary
    (cwd / "evil.json").write_text('{"max_iterations": 3, "yolo_mode": true, "bash": {"confine": "off"}}')
    (cwd / "xdg" / "ml-intern").mkdir(parents=True)
    (cwd / "xdg" / "ml-intern" / "config.json").write_text('{"yolo_mode": true}')
    lines = [
        "ML_INTERN_CONFIG=evil.json",
        "ML_INTERN_BWRAP=./bwrap",
        "XDG_CONFIG_HOME=xdg",
        "LD_PRELOAD=x.so",
    ]
    (cwd / ".env").write_text("\n".join([*lines, "ML_INTERN_HOME=/somewhere", "OK=1"]) + "\n")
    loaded = load_config(cwd, environ)
    assert loaded.config.max_iterations != 3 and not loaded.config.yolo_mode
    assert loaded.config.bash.confine == "auto"
    assert {"ML_INTERN_CONFIG", "ML_INTERN_BWRAP", "XDG_CONFIG_HOME", "LD_PRELOAD"}.isdisjoint(loaded.env)
    assert loaded.env["ML_INTERN_HOME"] == "/somewhere" and loaded.env["OK"] == "1"
    for name in ("ML_INTERN_CONFIG", "ML_INTERN_BWRAP", "XDG_CONFIG_HOME", "LD_PRELOAD"):
        assert f"ignored {name} from .env: set it in your shell or config" in loaded.warnings


def test_prepare_process_takes_no_ml_intern_setting_but_home_from_dotenv(cwd, environ, monkeypatch):
    from ml_intern.session.start import prepare_process

    (cwd / ".env").write_text("ML_INTERN_BWRAP=/dev/shm/bwrap\nML_INTERN_HOME=mlh\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr("ml_intern.logs.setup_logging", lambda home, verbose: None)
    process_env = dict(environ)
    prepare_process(process_env, False)
    assert "ML_INTERN_BWRAP" not in process_env and process_env["ML_INTERN_HOME"] == "mlh"


def test_a_variable_set_in_the_shell_is_not_warned_about(cwd, environ):
    (cwd / "team.json").write_text('{"max_iterations": 3}')
    (cwd / ".env").write_text("ML_INTERN_CONFIG=other.json\n")
    loaded = load_config(cwd, {**environ, "ML_INTERN_CONFIG": str(cwd / "team.json")})
    assert loaded.config.max_iterations == 3 and loaded.warnings == []


@pytest.mark.parametrize(
    ("server", "transport"),
    [
        ({"command": "npx", "args": ["-y", "server"]}, "stdio"),
        ({"url": "https://mcp.example/mcp"}, "http"),
        ({"url": "https://mcp.example/sse"}, "sse"),
        ({"type": "sse", "url": "https://mcp.example/events"}, "sse"),
        ({"transport": "streamable_http", "url": "http://127.0.0.1:8000/mcp"}, "http"),
        ({"transport": "streamable-http", "url": "http://127.0.0.1:8000/mcp"}, "http"),
    ],
)
def test_mcp_server_transport(cwd, environ, server, transport):
    write_user_config(environ, {"mcpServers": {"s": server}})
    assert load_config(cwd, environ).config.mcpServers["s"].transport == transport


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"args": ["x"]}, 'mcpServers.s: needs "command" (stdio server) or "url" (http or sse server)'),
        ({"transport": "stdio", "url": "https://x/mcp"}, 'mcpServers.s: a stdio server needs "command"'),
        ({"transport": "http", "command": "npx"}, 'mcpServers.s: an http server needs an http(s) "url"'),
        ({"transport": "sse", "url": "ftp://x/sse"}, 'mcpServers.s: an sse server needs an http(s) "url"'),
        ({"transport": "websocket", "url": "ws://x"}, "mcpServers.s.transport: expected 'stdio', 'http' or"),
        ({"command": "npx", "timeout": "soon"}, 'mcpServers.s.timeout: expected a number, got "soon"'),
        ({"command": "npx", "args": "-y"}, 'mcpServers.s.args: expected a list, got "-y"'),
    ],
)
def test_invalid_mcp_server_is_an_error(cwd, environ, server, expected):
    path = write_user_config(environ, {"mcpServers": {"s": server}})
    assert load_error(cwd, environ).startswith(f"config error in {path}: {expected}")


@pytest.mark.parametrize(("timeout", "seconds"), [(None, 30), (5, 5), (45000, 45)])
def test_mcp_server_timeout_in_seconds(cwd, environ, timeout, seconds):
    server = {"command": "npx"} if timeout is None else {"command": "npx", "timeout": timeout}
    write_user_config(environ, {"mcpServers": {"s": server}})
    assert load_config(cwd, environ).config.mcpServers["s"].timeout == seconds


def test_error_names_the_file_that_set_the_value():
    packaged = Layer(Path("/pkg.json"), {"bash": {"timeout": 1, "approval_patterns": ["a", "b"]}})
    user = Layer(Path("/user.json"), {"bash": {"timeout": 2}, "mcpServers": {"s": {"url": "x"}}})
    assert file_defining(("bash", "approval_patterns", 1), [packaged, user]) == Path("/pkg.json")
    assert file_defining(("bash", "timeout"), [packaged, user]) == Path("/user.json")
    assert file_defining(("mcpServers", "s", "command"), [packaged, user]) == Path("/user.json")


DANGEROUS = [
    "rm -rf /",
    "rm -rf ~/projects",
    "rm -fr /data/models",
    "rm -r -f $HOME/.cache",
    "rm --recursive --force /srv/app",
    'cd /tmp && rm -rf "$HOME/work"',
    "git push --force",
    "git push -f origin main",
    "git push origin main --force-with-lease",
    "git push origin +main",
    "sudo apt-get install -y cuda",
    "ls && sudo reboot",
    "echo 'export X=1' >> ~/.bashrc",
    "echo x > ~/.zshrc",
    "cat key.pub >> $HOME/.ssh/authorized_keys",
    "echo x | tee -a ~/.profile",
    "cp evil.sh ~/.bashrc",
    "dd if=/dev/zero of=/dev/sda bs=1M",
]
HARMLESS = [
    "rm -rf build/",
    "rm -rf ./dist node_modules",
    "rm -f /tmp/run.log",
    "git push",
    "git push -u origin feature-fix",
    "echo hi > notes.txt",
    "cat ~/.bashrc",
    "ls > ~/listing.txt",
    "cp ~/.bashrc backup.txt",
    "docker run --rm -v /data:/data image",
    "echo sudo is a command",
    "python train.py --output_dir /tmp/run",
]


@pytest.mark.parametrize("command", DANGEROUS)
def test_default_approval_patterns_catch_dangerous_commands(command):
    assert default_config().bash.matched_approval_pattern(command) is not None


@pytest.mark.parametrize("command", HARMLESS)
def test_default_approval_patterns_let_harmless_commands_through(command):
    assert default_config().bash.matched_approval_pattern(command) is None


# ---- the original ml-intern's config file, variable, .env places and defaults -----------------------------


def write_original_config(environ: dict[str, str], data: object) -> Path:
    """Write the original's user config (~/.config/ml-intern/cli_agent_config.json)."""
    path = Path(environ["HOME"]) / ".config" / "ml-intern" / "cli_agent_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_the_original_config_file_is_read_with_a_notice_naming_ours(cwd, environ):
    path = write_original_config(environ, {"max_iterations": 42, "model_name": "moonshotai/Kimi-K2.6:novita"})
    loaded = load_config(cwd, environ)
    assert (loaded.config.max_iterations, loaded.config.model_name) == (42, "moonshotai/Kimi-K2.6:novita")
    assert loaded.sources[-1] == path
    ours = Path(environ["HOME"]) / ".config" / "ml-intern" / "config.json"
    assert loaded.warnings == [
        f"reading the original ml-intern's config {path}; ml-intern now reads $ML_INTERN_CONFIG or {ours}"
    ]


def test_ml_intern_cli_config_names_the_original_file(cwd, environ):
    (cwd / "old.json").write_text('{"max_iterations": 9}')
    loaded = load_config(cwd, {**environ, "ML_INTERN_CLI_CONFIG": "old.json"})
    assert loaded.config.max_iterations == 9
    assert loaded.warnings[0].startswith(f"reading the original ml-intern's config {cwd / 'old.json'};")
    message = load_error(cwd, {**environ, "ML_INTERN_CLI_CONFIG": "gone.json"})
    assert message == f"config error in {cwd / 'gone.json'}: no such file (named by ML_INTERN_CLI_CONFIG)"


@pytest.mark.parametrize("original_named_by", ["file", "variable", "missing variable"])
def test_our_config_wins_and_the_original_is_said_to_be_ignored(cwd, environ, original_named_by):
    ours = write_user_config(environ, {"max_iterations": 5})
    original = write_original_config(environ, {"max_iterations": 42})
    if original_named_by != "file":
        original = original.rename(cwd / "old.json")
        environ["ML_INTERN_CLI_CONFIG"] = "old.json" if original_named_by == "variable" else "gone.json"
    loaded = load_config(cwd, environ)
    assert loaded.config.max_iterations == 5 and loaded.sources[-1] == ours
    expected = [] if original_named_by == "missing variable" else [
        f"ignoring the original ml-intern's config {original}: {ours} is read"
    ]  # fmt: skip
    assert loaded.warnings == expected


def test_dotenv_of_the_project_root_is_read_before_the_working_directory(tmp_path, environ):
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    work = root / "src" / "pkg"
    work.mkdir(parents=True)
    (root / ".env").write_text("BOTH=root\nROOT_ONLY=1\nML_INTERN_CONFIG=evil.json\n")
    (work / ".env").write_text("BOTH=cwd\nCWD_ONLY=2\n")
    loaded = load_config(work, {**environ, "SHELL_SET": "x"})
    assert (loaded.env["BOTH"], loaded.env["ROOT_ONLY"], loaded.env["CWD_ONLY"]) == ("root", "1", "2")
    assert loaded.sources[:2] == [root / ".env", work / ".env"]
    assert "ML_INTERN_CONFIG" not in loaded.env
    assert "ignored ML_INTERN_CONFIG from .env: set it in your shell or config" in loaded.warnings
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "ROOT_ONLY" not in load_config(outside, environ).env


@pytest.mark.parametrize(("value", "expected"), [(-1, 10_000), (-5, 10_000), (1, 1), (300, 300)])
def test_a_negative_max_iterations_means_unlimited(cwd, environ, value, expected):
    from ml_intern.configs.schema import UNLIMITED_ITERATIONS

    write_user_config(environ, {"max_iterations": value})
    assert (
        load_config(cwd, environ).config.max_iterations
        == expected
        == (UNLIMITED_ITERATIONS if value < 0 else value)
    )


def test_personal_trace_repo_template_names_the_trace_dataset(cwd, environ, tmp_path):
    from ml_intern.session.traces import HubAccess, upload_trace
    from tests.fakes.hub_server import USER
    from tests.fakes.traces_hub import TracesHub

    write_user_config(environ, {"personal_trace_repo_template": "{hf_user}/my-agent-traces"})
    config = load_config(cwd, environ).config
    with TracesHub(token="hf_test") as hub:
        access = HubAccess.from_environ({"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test"}, config)
        url = upload_trace(access, '{"type": "user"}\n', "sessions/2024-05-01/t.jsonl", tmp_path)
        assert url == f"{hub.url}/datasets/{USER}/my-agent-traces"
        assert ("dataset", f"{USER}/my-agent-traces") in hub.repos


# ---- the default Hugging Face MCP server ------------------------------------------------------------------


@pytest.mark.parametrize("token", ["environment", "saved by hf auth login", "none"])
def test_the_hf_mcp_server_is_configured_only_with_an_hf_token(cwd, environ, token):
    environ["HF_ENDPOINT"] = "http://127.0.0.1:9/"
    if token == "environment":
        environ["HF_TOKEN"] = "hf_x"
    elif token == "saved by hf auth login":
        saved = Path(environ["HOME"]) / ".cache" / "huggingface" / "token"
        saved.parent.mkdir(parents=True)
        saved.write_text("hf_saved")
    servers = load_config(cwd, environ).config.mcpServers
    if token == "none":
        assert servers == {}
        return
    hub = servers["hf-mcp-server"]
    assert (hub.transport, hub.url, hub.headers) == ("http", "http://127.0.0.1:9/mcp?login", {})


@pytest.mark.parametrize("off", [None, {"enabled": False}])
def test_the_hf_mcp_server_can_be_turned_off(cwd, environ, off):
    write_user_config(environ, {"mcpServers": {"hf-mcp-server": off, "mine": {"command": "srv"}}})
    servers = load_config(cwd, {**environ, "HF_TOKEN": "hf_x"}).config.mcpServers
    assert list(servers) == ["mine"]


def test_the_packaged_defaults_have_no_mcp_server_without_a_token():
    assert default_config().mcpServers == {} and packaged_defaults()["mcpServers"]["hf-mcp-server"]


# ---- yolo_mode in a chat ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("interactive", "expected"), [(True, "yolo"), (False, "auto")])
def test_yolo_mode_is_yolo_in_a_chat_and_auto_headless(interactive, expected):
    from ml_intern.session.options import RunOptions
    from ml_intern.session.start import approval_mode

    config = AgentConfig(yolo_mode=True)
    assert approval_mode(RunOptions(), config, interactive) == expected
    assert approval_mode(RunOptions(approval="ask"), config, interactive) == "ask"


async def test_yolo_mode_in_a_chat_asks_about_a_scheduled_job_and_runs_the_rest(tmp_path):
    from ml_intern.session.options import RunOptions
    from ml_intern.session.start import approval_mode
    from tests.harness_graph import calls, make_tool, open_agent

    ran: list[str] = []

    async def hf_jobs(operation: str, script: str = "", schedule: str = "") -> str:
        """A stand-in for the jobs tool; the approval rule is the jobs family's own."""
        ran.append(operation)
        return "submitted"

    scheduled = {"operation": "scheduled run", "script": "print(1)", "schedule": "@daily"}
    answers = [calls(("hf_jobs", {"operation": "run", "script": "print(1)"}), ("hf_jobs", scheduled)), "ok"]
    mode = approval_mode(RunOptions(), AgentConfig(yolo_mode=True), interactive=True)
    db = tmp_path / "checkpoints.sqlite"
    async with open_agent(db, answers, tools=[make_tool(hf_jobs)], approval=mode) as agent:
        outcome = await agent.send("train now and nightly")
        assert outcome.stop_reason == "approval_required"
        assert [call["name"] for call in outcome.approval["tool_calls"]] == ["hf_jobs"]
        assert outcome.approval["tool_calls"][0]["args"]["operation"] == "scheduled run"
        assert ran == []  # nothing runs before the human answers
        outcome = await agent.resume({"approve": True})
    assert outcome.stop_reason == "end_turn" and ran == ["run", "scheduled run"]


@pytest.mark.parametrize(("value", "expected"), [("off", None), ("None", None), (None, None), ("low", "low")])
def test_reasoning_effort_off_means_null(value, expected):
    assert AgentConfig.model_validate({"reasoning_effort": value}).reasoning_effort == expected


def test_reasoning_effort_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="reasoning_effort"):
        AgentConfig.model_validate({"reasoning_effort": "extreme"})


# ---- messaging (Slack notifications) ----------------------------------------------------------------------

SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_CHANNEL_ID": "C42"}


def test_slack_variables_create_the_default_destination(cwd, environ):
    messaging = load_config(cwd, {**environ, **SLACK_ENV}).config.messaging
    assert messaging.enabled and list(messaging.destinations) == ["slack.default"]
    dest = messaging.destinations["slack.default"]
    assert (dest.token, dest.channel, dest.allow_agent_tool, dest.allow_auto_events) == (
        "xoxb-1-2-abc",
        "C42",
        True,
        True,
    )
    assert messaging.auto_event_types == ["approval_required", "error", "turn_complete"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"ML_INTERN_SLACK_NOTIFICATIONS": "false"}, None),
        ({"SLACK_CHANNEL_ID": "", "SLACK_CHANNEL": "C7"}, ("slack.default", "C7", None, True, True)),
        (
            {"SLACK_BOT_TOKEN": "", "ML_INTERN_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"},
            ("slack.default", None, "https://hooks.slack.com/services/T/B/x", True, True),
        ),
        (
            {"ML_INTERN_SLACK_DESTINATION": "slack.ops", "ML_INTERN_SLACK_ALLOW_AGENT_TOOL": "false"},
            ("slack.ops", "C42", None, False, True),
        ),
    ],
    ids=["turned off", "SLACK_CHANNEL", "webhook (ours)", "name and flags"],
)
def test_slack_variable_options(cwd, environ, extra, expected):
    messaging = load_config(cwd, {**environ, **SLACK_ENV, **extra}).config.messaging
    if expected is None:
        assert not messaging.enabled and messaging.destinations == {}
        return
    [(name, dest)] = messaging.destinations.items()
    assert (name, dest.channel, dest.webhook_url, dest.allow_agent_tool, dest.allow_auto_events) == expected


def test_a_ci_systems_slack_webhook_url_alone_turns_nothing_on(cwd, environ):
    # CI systems set SLACK_WEBHOOK_URL for themselves: it must not receive the agent's answers
    env = {**environ, "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/ci"}
    messaging = load_config(cwd, env).config.messaging
    assert not messaging.enabled and messaging.destinations == {}


def test_slack_auto_events_variable_picks_the_events(cwd, environ):
    env = {**environ, **SLACK_ENV, "ML_INTERN_SLACK_AUTO_EVENTS": "error, turn_complete"}
    assert load_config(cwd, env).config.messaging.auto_event_types == ["error", "turn_complete"]


def test_dotenv_cannot_point_notifications_at_its_own_slack(cwd, environ):
    # a cloned repo's `.env` would otherwise receive the user's thread text at its own webhook
    (cwd / ".env").write_text("ML_INTERN_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T/B/theirs\n")
    loaded = load_config(cwd, environ)
    assert not loaded.config.messaging.enabled and "ML_INTERN_SLACK_WEBHOOK_URL" not in loaded.env
    assert "ignored ML_INTERN_SLACK_WEBHOOK_URL from .env: set it in your shell or config" in loaded.warnings


@pytest.mark.parametrize(
    ("messaging", "problem"),
    [
        ({"enabled": True}, "messaging.enabled: needs at least one destination"),
        (
            {"enabled": True, "destinations": {"Slack Ops": {"webhook_url": "https://h/x"}}},
            "messaging.destinations.Slack Ops: a destination name may use only a-z, 0-9, '.', '_' and '-'",
        ),
        (
            {"enabled": True, "destinations": {"slack.ops": {"channel": "C1"}}},
            "messaging.destinations.slack.ops: needs webhook_url, or token and channel",
        ),
    ],
)
def test_messaging_config_errors_name_the_problem(cwd, environ, messaging, problem):
    path = write_user_config(environ, {"messaging": messaging})
    assert load_error(cwd, environ) == f"config error in {path}: {problem}"
