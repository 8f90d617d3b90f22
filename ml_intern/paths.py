"""Where the agent keeps its data: ML_INTERN_HOME, never the current directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def home_dir(environ: Mapping[str, str]) -> Path:
    """`$ML_INTERN_HOME`, else `$XDG_DATA_HOME/ml-intern`, else `~/.local/share/ml-intern`."""
    if environ.get("ML_INTERN_HOME"):
        return Path(environ["ML_INTERN_HOME"]).expanduser()
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]).expanduser() / "ml-intern"
    return Path.home() / ".local" / "share" / "ml-intern"


def database_path(environ: Mapping[str, str]) -> Path:
    return home_dir(environ) / "checkpoints.sqlite"
