"""Library logs (huggingface_hub, httpx, litellm, mcp, ...) and Python warnings go to
`$ML_INTERN_HOME/logs/ml-intern.log`, never the terminal; `-v/--verbose` shows them on stderr as well.

Imported at start-up: stdlib only (no litellm or huggingface_hub import here).
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ml_intern.secrets import redact

LIBRARY_LOGGERS = (
    "huggingface_hub",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "litellm",
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "mcp",
    "langchain",
    "langchain_core",
    "langchain_mcp_adapters",
    "urllib3",
    "py.warnings",
)
FILE_HANDLER = "ml-intern-log-file"
STDERR_HANDLER = "ml-intern-log-stderr"
MAX_LOG_BYTES = 5 * 1024 * 1024  # then the file rotates; two old files are kept
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replace tokens and secret values in a record's message (and traceback) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's malformed log call: keep its text rather than raise into it
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class LibraryLogger(logging.Logger):
    """A library's logger that refuses console handlers: huggingface_hub and litellm add one when they are
    imported, which may happen after start-up."""

    def addHandler(self, hdlr: logging.Handler) -> None:  # noqa: N802 - logging's own name
        if not is_console_handler(hdlr):
            super().addHandler(hdlr)


def is_console_handler(handler: logging.Handler) -> bool:
    """A handler writing to the terminal that ml-intern did not install."""
    if isinstance(handler, logging.FileHandler) or handler.name == STDERR_HANDLER:
        return False
    return isinstance(handler, logging.StreamHandler)


def routes_library_logs() -> bool:
    """Whether `setup_logging` has sent library logs to the log file in this process."""
    return any(handler.name == FILE_HANDLER for handler in logging.getLogger().handlers)


def setup_logging(home: Path, verbose: bool = False) -> Path:
    """Route library loggers to `home/logs/ml-intern.log` (and stderr when `verbose`); the log file's path.

    Calling it again replaces ml-intern's handlers instead of adding more."""
    path = home / "logs" / "ml-intern.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # it holds prompts and tool output (all of them with --debug): the user's only
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.name in (FILE_HANDLER, STDERR_HANDLER)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [
        RotatingFileHandler(path, maxBytes=MAX_LOG_BYTES, backupCount=2, encoding="utf-8", delay=True)
    ]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler, name in zip(handlers, (FILE_HANDLER, STDERR_HANDLER), strict=False):
        handler.name = name
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    debug = bool(os.environ.get("ML_INTERN_DEBUG"))  # --debug sets it: every record, DEBUG included
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ml_intern").setLevel(logging.INFO)  # our retries and the like: in the file
    for name in LIBRARY_LOGGERS:
        quiet_library_logger(logging.getLogger(name))
    logging.captureWarnings(True)
    return path


def quiet_library_logger(logger: logging.Logger) -> None:
    """Drop the logger's console handlers now and refuse later ones; its records reach the root's handlers."""
    if type(logger) is logging.Logger:
        logger.__class__ = LibraryLogger
    for handler in [h for h in logger.handlers if is_console_handler(h)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)  # the root's level decides (libraries and imports set their own)
    logger.propagate = True
