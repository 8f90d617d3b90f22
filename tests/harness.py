"""What every kind of test shares: the repository's paths, an environment cut off from the real home,
credentials and network, the installed `ml-intern` CLI, and checks on the processes a test started.

The other shared helpers, by what they drive:
- `tests/harness_graph.py`: the compiled graph in-process, with a scripted chat model (`open_agent`).
- `tests/harness_litellm.py`: one turn in-process through the real litellm client (`run_real_turn`).
- `tests/harness_cli.py`: `ml-intern` processes in an isolated home (`Workspace`).
- `tests/harness_crashes.py`, `tests/harness_secrets.py`: the reliability and security scenarios that
  `bench/faults.py` runs too.
Fakes of the outside world (model servers, the Hub, MCP servers) live in `tests/fakes/`.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NETGUARD_DIR = REPO_ROOT / "tests" / "netguard"  # on a subprocess's PYTHONPATH: the network guard
FAKE_MCP_SERVER = REPO_ROOT / "tests" / "fakes" / "mcp_server.py"

# Credentials, endpoints and settings of the real world; all are dropped before each test.
DROPPED_NAMES = ("GITHUB_API_URL", "HUGGINGFACE_HUB_CACHE")
DROPPED_PREFIXES = ("AWS_", "AZURE_", "VERTEX", "LITELLM_", "HF_", "ML_INTERN_")
DROPPED_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET_KEY", "_BASE_URL", "_API_BASE")
CLOSED_LOOPBACK_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
SAFE_ENVIRONMENT = {  # also set at import: litellm and huggingface_hub read these when first imported
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_ENDPOINT": CLOSED_LOOPBACK_URL,
    "HF_ROUTER_URL": CLOSED_LOOPBACK_URL,  # the Hugging Face router: tests use tests/fakes/router_server.py
    # Local model servers that a run with no model configured looks for: never this machine's.
    "OLLAMA_BASE_URL": CLOSED_LOOPBACK_URL,
    "VLLM_BASE_URL": CLOSED_LOOPBACK_URL,
    "LMSTUDIO_BASE_URL": CLOSED_LOOPBACK_URL,
    "LLAMACPP_BASE_URL": CLOSED_LOOPBACK_URL,
}
INSTALL_HINT = 'run `pip install -e ".[dev]"` from the repository root'


def is_dropped_variable(name: str) -> bool:
    """True for environment variables that could reach a real account, endpoint or config."""
    return name in DROPPED_NAMES or name.startswith(DROPPED_PREFIXES) or name.endswith(DROPPED_SUFFIXES)


def home_environment(home: Path, ml_intern_home: Path) -> dict[str, str]:
    """HOME, ML_INTERN_HOME and the XDG directories under `home`, plus the offline settings."""
    return {
        "HOME": str(home),
        "ML_INTERN_HOME": str(ml_intern_home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        **SAFE_ENVIRONMENT,
    }


def child_python_path() -> str:
    """PYTHONPATH of a child process: the network guard first, then the repository (for `tests.fakes`)."""
    return os.pathsep.join([str(NETGUARD_DIR), str(REPO_ROOT)])


@dataclass
class Sandbox:
    """The temporary directories a test runs in."""

    root: Path  # parent of everything below
    home: Path  # HOME
    ml_intern_home: Path  # ML_INTERN_HOME
    workdir: Path  # the current directory during the test

    @classmethod
    def under(cls, root: Path) -> Sandbox:
        """The directories under `root`, created."""
        sandbox = cls(root, root / "home", root / "ml-intern-home", root / "work")
        for path in (sandbox.home, sandbox.ml_intern_home, sandbox.workdir):
            path.mkdir(parents=True, exist_ok=True)
        return sandbox


class CliNotInstalled(RuntimeError):
    """The `ml-intern` console script is installed neither beside this interpreter nor on PATH."""


@cache
def installed_cli() -> Path:
    """The `ml-intern` script installed beside the running interpreter (its venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "ml-intern"
    if beside.is_file():
        return beside
    found = shutil.which("ml-intern")
    if found:
        return Path(found)
    raise CliNotInstalled(f"`ml-intern` is not installed for {sys.executable}: {INSTALL_HINT}")


# ---- processes a test started ------------------------------------------------------------------------------


def started_pids(starts: Path) -> list[int]:
    """The pids a fake server wrote to its `--starts` file, one per start."""
    return [int(line) for line in starts.read_text().split()] if starts.exists() else []


def is_running(pid: int) -> bool:
    """True while `pid` is alive (a zombie, dead but not yet reaped, counts as stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


# ---- loggers a test configured -----------------------------------------------------------------------------


class LoggingRestored:
    """`with LoggingRestored(): setup_logging(...)`: the process's loggers are put back as they were."""

    def __enter__(self) -> LoggingRestored:
        import logging

        from ml_intern.logs import LIBRARY_LOGGERS

        names = ["", "ml_intern", *LIBRARY_LOGGERS]
        loggers = [logging.getLogger(name or None) for name in names]
        self.saved = [(lg, lg.__class__, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
        return self

    def __exit__(self, *exc_info: object) -> None:
        import logging

        logging.captureWarnings(False)
        for logger, cls, handlers, level, propagate in self.saved:
            logger.__class__ = cls
            for handler in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(handler)
                handler.close()
            for handler in [h for h in handlers if h not in logger.handlers]:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
