"""Shared fixtures: every test runs isolated from the real home, credentials and network."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NETGUARD_DIR = Path(__file__).resolve().parent / "netguard"
if str(REPO_ROOT) not in sys.path:  # `tests.fakes` must import however pytest was started
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.netguard import sitecustomize as netguard  # noqa: E402

# Credentials, endpoints and settings of the real world; all are dropped before each test.
DROPPED_NAMES = ("GITHUB_API_URL", "HUGGINGFACE_HUB_CACHE")
DROPPED_PREFIXES = ("AWS_", "AZURE_", "VERTEX", "LITELLM_", "HF_", "ML_INTERN_")
DROPPED_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET_KEY", "_BASE_URL", "_API_BASE")
CLOSED_LOOPBACK_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
SAFE_ENVIRONMENT = {  # also set at import: litellm and huggingface_hub read these when first imported
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_ENDPOINT": CLOSED_LOOPBACK_URL,
}


def pytest_configure(config: pytest.Config) -> None:
    for name in [name for name in os.environ if is_dropped_variable(name)]:
        del os.environ[name]
    os.environ.update(SAFE_ENVIRONMENT)
    config.addinivalue_line("markers", "llm_script_leftovers: responses may remain unused in `llm_server`")
    config.addinivalue_line("markers", "llm_script_exhaustion: requests may find `llm_server`'s script empty")


@dataclass
class Sandbox:
    """The temporary directories a test runs in."""

    root: Path  # parent of everything below
    home: Path  # HOME
    ml_intern_home: Path  # ML_INTERN_HOME
    workdir: Path  # the current directory during the test


def is_dropped_variable(name: str) -> bool:
    """True for environment variables that could reach a real account, endpoint or config."""
    return name in DROPPED_NAMES or name.startswith(DROPPED_PREFIXES) or name.endswith(DROPPED_SUFFIXES)


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point HOME, XDG and ML_INTERN_HOME at temp dirs, drop credentials, cd into an empty workdir."""
    root = tmp_path / "sandbox"
    dirs = Sandbox(root, root / "home", root / "ml-intern-home", root / "work")
    for path in (dirs.home, dirs.ml_intern_home, dirs.workdir):
        path.mkdir(parents=True)
    for name in [name for name in os.environ if is_dropped_variable(name)]:
        monkeypatch.delenv(name)
    environment = {
        "HOME": dirs.home,
        "ML_INTERN_HOME": dirs.ml_intern_home,
        "XDG_CONFIG_HOME": dirs.home / ".config",
        "XDG_DATA_HOME": dirs.home / ".local/share",
        "XDG_CACHE_HOME": dirs.home / ".cache",
        **SAFE_ENVIRONMENT,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
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
    python_path = [str(NETGUARD_DIR), str(REPO_ROOT)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(python_path), "NO_COLOR": "1", "COLUMNS": "120"}
