"""Custom tools without editing the package: config `"tools": ["module:attr"]` and plugins found through the
`ml_intern.tools` entry-point group (a real .dist-info folder on sys.path). Mistakes are one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from ml_intern.configs.loader import default_config
from ml_intern.errors import UserError
from ml_intern.graph.builder import build_graph
from ml_intern.graph.context import RunContext
from ml_intern.services import Services, build_services
from ml_intern.session.runner import new_turn
from ml_intern.tools.custom import CustomToolError
from tests.fakes import llm_server as script
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import Sandbox

PKG = "tests.fakes.custom_tools_pkg"


def make_services(tools: list[str], answers: list[Any] = ()) -> Services:
    config = default_config().model_dump()
    config["tools"] = tools
    return build_services(
        model="vllm/scripted",
        workdir=Path.cwd(),
        tool_names=None,
        stream=False,
        environ=dict(os.environ),
        config=config,
        chat_model=ScriptedChatModel(list(answers)),
    )


def install_plugin(site: Path, entry_points: str) -> None:
    """A distribution's metadata, as pip would install it, with the given entry_points.txt."""
    info = site / "fake_ml_intern_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-ml-intern-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


async def run_turn(services: Services) -> dict[str, Any]:
    ctx = RunContext(model="vllm/scripted", workdir=str(Path.cwd()), approval="auto", services=services)
    state: dict[str, Any] = {}
    async for state in build_graph().astream(  # noqa: B007
        new_turn("go"), {"recursion_limit": 40}, context=ctx, stream_mode="values"
    ):
        pass
    return state


# ---- loading -----------------------------------------------------------------------------------------------


def test_functions_tools_and_factories_from_the_config_are_offered(sandbox: Sandbox) -> None:
    services = make_services(
        [f"{PKG}.tools:word_count", f"{PKG}.tools:shout_back", f"{PKG}.tools:make_tools"]
    )
    names = [tool.name for tool in services.tools]
    assert names[-4:] == ["word_count", "shout_back", "workdir_name", "reverse_text"]
    assert names.index("bash") < names.index("word_count")
    assert "word_count, shout_back, workdir_name, reverse_text" in services.prompt
    word_count = services.tools_by_name["word_count"]
    assert word_count.description == "Count the words in `text`."
    assert list(word_count.args) == ["text"]
    assert services.tools_by_name["workdir_name"].invoke({}) == sandbox.workdir.name


async def test_a_custom_tool_runs_in_the_agent_loop() -> None:
    answers = [
        script.tool_calls(
            [("word_count", {"text": "one two three"}), ("shout_back", {"text": "a", "times": 2})]
        ),
        "done",
    ]
    services = make_services([f"{PKG}.tools:word_count", f"{PKG}.tools:shout_back"], answers)
    state = await run_turn(services)
    results = [m.content for m in state["messages"] if isinstance(m, ToolMessage)]
    assert results == ["3", "AA"]
    bound = {schema["function"]["name"] for schema in services.chat_model.tool_schemas}
    assert {"word_count", "shout_back"} <= bound


async def test_an_installed_plugin_is_found_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path / "site",
        f"""
        [ml_intern.tools]
        greeting = {PKG}.plugin
        reverse = {PKG}.tools:reverse_text
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    services = make_services([])
    assert [tool.name for tool in services.tools][-2:] == ["plugin_greeting", "reverse_text"]
    assert (
        await services.tools_by_name["plugin_greeting"].ainvoke({"name": "Ada"})
        == "hello Ada from the plugin"
    )


def test_without_the_plugin_installed_its_tools_are_absent() -> None:
    names = {tool.name for tool in make_services([]).tools}
    assert "plugin_greeting" not in names


# ---- mistakes: one line naming the spec, exit code 2 -------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "no_such_package.tools:thing",
            "custom tool 'no_such_package.tools:thing' (config \"tools\") cannot be imported: "
            "ModuleNotFoundError: No module named 'no_such_package'",
        ),
        (f"{PKG}.tools:missing", f"{PKG}.tools has no attribute 'missing'"),
        (f"{PKG}.tools:undocumented", "undocumented needs a docstring (the description the model sees)"),
        (f"{PKG}.tools:read", "a tool named 'read' already exists; rename yours"),
        (f"{PKG}.tools:NOT_A_TOOL", "is a int; expected a LangChain tool, a typed function with a docstring"),
        (f"{PKG}.tools:failing_factory", "the factory failed: RuntimeError: cannot reach the license server"),
    ],
)
def test_a_bad_custom_tool_fails_with_one_line_naming_it(spec: str, message: str) -> None:
    with pytest.raises(CustomToolError) as raised:
        make_services([spec])
    text = str(raised.value)
    assert message in text
    assert f"custom tool {spec!r}" in text
    assert "\n" not in text
    assert isinstance(raised.value, UserError) and raised.value.exit_code == 2


def test_the_same_custom_tool_twice_is_a_clash() -> None:
    with pytest.raises(CustomToolError, match="a tool named 'word_count' already exists"):
        make_services([f"{PKG}.tools:word_count", f"{PKG}.tools:word_count"])


def test_a_broken_plugin_fails_with_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path / "site", "[ml_intern.tools]\nbroken = no_such_plugin_module:make_tools\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(CustomToolError) as raised:
        make_services([])
    assert str(raised.value) == (
        "plugin tool broken = 'no_such_plugin_module:make_tools' (entry point group ml_intern.tools from "
        "fake-ml-intern-plugin 1.0) cannot be imported: "
        "ModuleNotFoundError: No module named 'no_such_plugin_module'"
    )


@pytest.mark.e2e
def test_the_cli_exits_2_with_one_line_for_a_bad_custom_tool(
    sandbox: Sandbox, subprocess_env: dict[str, str], ml_intern_cli: Path
) -> None:
    config = sandbox.root / "config.json"
    config.write_text('{"model_name": "vllm/scripted", "tools": ["no_such_package.tools:thing"]}')
    env = {**subprocess_env, "ML_INTERN_CONFIG": str(config), "VLLM_BASE_URL": "http://127.0.0.1:9"}
    done = subprocess.run(
        [str(ml_intern_cli), "say hi"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "custom tool 'no_such_package.tools:thing'" in done.stderr
    assert "Traceback" not in done.stderr


# ---- approval ----------------------------------------------------------------------------------------------

DECLARED = [f"{PKG}.declared:count_lines", f"{PKG}.declared:peek", f"{PKG}.declared:wipe"]


async def denied_turn(services: Services) -> list[str]:
    """One turn under --approval deny; the tool results."""
    ctx = RunContext(model="vllm/scripted", workdir=str(Path.cwd()), approval="deny", services=services)
    state = await build_graph().ainvoke(new_turn("go"), {"recursion_limit": 40}, context=ctx)
    return [m.content for m in state["messages"] if isinstance(m, ToolMessage)]


@pytest.fixture
def ran() -> list[str]:
    from tests.fakes.custom_tools_pkg.declared import RAN

    RAN.clear()
    return RAN


async def test_custom_tools_are_gated_unless_they_declare_themselves_read_only(ran: list[str]) -> None:
    answers = [
        script.tool_calls(
            [("count_lines", {"text": "a\nb"}), ("peek", {"text": "hi there"}), ("wipe", {"path": "~"})]
        ),
        "done",
    ]
    results = await denied_turn(make_services(DECLARED, answers))
    assert results[:2] == ["2", "hi"] and "rejected" in results[2]
    assert ran == ["count_lines", "peek"]


@pytest.mark.parametrize(("setting", "runs"), [("never", True), ("ask", False), ("always", False)])
async def test_config_tool_approval_decides_for_a_custom_tool(
    ran: list[str], setting: str, runs: bool
) -> None:
    answers = [script.tool_call("wipe", {"path": "x"}), "done"]
    services = make_services(DECLARED, answers)
    services.env.config = services.env.config.model_copy(update={"tool_approval": {"wipe": setting}})
    [result] = await denied_turn(services)
    assert (ran == ["wipe"]) is runs and ("rejected" in result) is not runs
