"""Shared fixtures: every test runs isolated from the real home, credentials and network."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `tests.harness` and `tests.fakes` must import however pytest was started
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.harness import (  # noqa: E402
    SAFE_ENVIRONMENT,
    CliNotInstalled,
    Sandbox,
    child_python_path,
    home_environment,
    installed_cli,
    is_dropped_variable,
)
from tests.netguard import sitecustomize as netguard  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    for name in [name for name in os.environ if is_dropped_variable(name)]:
        del os.environ[name]
    os.environ.update(SAFE_ENVIRONMENT)


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point HOME, XDG and ML_INTERN_HOME at temp dirs, drop credentials, cd into an empty workdir."""
    dirs = Sandbox.under(tmp_path / "sandbox")
    for name in [name for name in os.environ if is_dropped_variable(name)]:
        monkeypatch.delenv(name)
    for name, value in home_environment(dirs.home, dirs.ml_intern_home).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(dirs.workdir)
    return dirs


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test that tries to reach a non-loopback host, even if the error was swallowed."""
    netguard.VIOLATIONS.clear()
    netguard.install(monkeypatch.setattr)
    yield netguard.VIOLATIONS  # a test that triggers the guard on purpose clears this list
    if netguard.VIOLATIONS:
        pytest.fail(f"network guard: test tried to reach {', '.join(netguard.VIOLATIONS)}", pytrace=False)


@pytest.fixture
def llm_server(request: pytest.FixtureRequest) -> Iterator[ScriptedLLMServer]:
    """A started ScriptedLLMServer; at teardown every response must be used and none requested beyond."""
    server = ScriptedLLMServer()
    server.allow_leftovers = request.node.get_closest_marker("llm_script_leftovers") is not None
    server.allow_exhaustion = request.node.get_closest_marker("llm_script_exhaustion") is not None
    yield server
    server.close()
    problem = server.unmet_expectation()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def subprocess_env(sandbox: Sandbox) -> dict[str, str]:
    """Environment for a subprocess: the isolated env, the network guard, the repo importable, no colour."""
    python_path = [child_python_path()]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(python_path), "NO_COLOR": "1", "COLUMNS": "120"}


@pytest.fixture(scope="session")
def ml_intern_cli() -> Path:
    """The installed `ml-intern` script, found from the running interpreter (see `harness.installed_cli`)."""
    try:
        return installed_cli()
    except CliNotInstalled as missing:
        pytest.fail(str(missing), pytrace=False)


# ── the local file tools, shared by test_local_tools.py and test_edit_matching.py ─────────────


@pytest.fixture
def env(tmp_path: Path) -> Any:
    """A ToolEnv whose workdir is tmp_path/work (modules may define their own `env`)."""
    from ml_intern.tools.base import ToolEnv

    workdir = tmp_path / "work"
    workdir.mkdir()
    return ToolEnv(workdir=workdir, home=tmp_path / "home")


@pytest.fixture
def tools(env: Any) -> dict[str, Any]:
    """The local tools (bash, read, write, edit) by name (modules may define their own `tools`)."""
    from ml_intern.tools.local import files, shell

    return {tool.name: tool for tool in shell.make_tools(env) + files.make_tools(env)}


@pytest.fixture
def read_then_edit(tools: dict[str, Any], env: Any) -> Callable[..., Awaitable[tuple[str, str]]]:
    """Create f.txt with a text, read it, apply the edit; give back the result and the new content."""

    async def edit(text: str, **args: Any) -> tuple[str, str]:
        path = env.workdir / "f.txt"
        path.write_bytes(text.encode())
        await tools["read"].ainvoke({"path": "f.txt"})
        result = await tools["edit"].ainvoke({"path": "f.txt", **args})
        return result, path.read_bytes().decode()

    return edit


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real Postgres server for the whole run (tests/harness_postgres.py), stopped at the end."""
    from tests.harness_postgres import start_postgres

    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh, empty database on the run's Postgres server: its URL."""
    return postgres_server.create_database()
