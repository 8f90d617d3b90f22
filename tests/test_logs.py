"""setup_logging: library logs and warnings go to $ML_INTERN_HOME/logs/ml-intern.log, never the terminal
(unless verbose), without secrets, however often it is called and whenever the libraries are imported."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_intern.logs import LIBRARY_LOGGERS, setup_logging
from ml_intern.secrets import register_secrets
from tests.harness import LoggingRestored
from tests.harness_redaction import SHAPES


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    with LoggingRestored():
        yield


def our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if h.name and h.name.startswith("ml-intern")]


def test_library_logs_and_warnings_go_to_the_file_not_the_terminal(sandbox, capfd) -> None:
    path = setup_logging(sandbox.ml_intern_home)
    assert path == sandbox.ml_intern_home / "logs" / "ml-intern.log"
    logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
    logging.getLogger("httpx").warning("an httpx warning")
    logging.getLogger("LiteLLM").error("a litellm error")
    logging.getLogger("mcp.client.stdio").warning("an mcp warning")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a deprecation from somewhere", DeprecationWarning, stacklevel=1)
    text = path.read_text()
    for line in ("Retrying in 1s", "an httpx warning", "a litellm error", "an mcp warning", "a deprecation"):
        assert line in text
    assert capfd.readouterr().err == ""


def test_huggingface_hubs_own_stream_handler_is_removed(sandbox, capfd, monkeypatch) -> None:
    import huggingface_hub.utils.logging  # adds a StreamHandler to "huggingface_hub" (once per process)

    hub = logging.getLogger("huggingface_hub")
    if not any(type(h) is logging.StreamHandler for h in hub.handlers):  # an earlier setup_logging took it
        monkeypatch.setattr(hub, "__class__", logging.Logger)
        huggingface_hub.utils.logging._configure_library_root_logger()  # the import's own set-up, again
    assert any(type(h) is logging.StreamHandler for h in hub.handlers)
    setup_logging(sandbox.ml_intern_home)
    assert not any(type(h) is logging.StreamHandler for h in hub.handlers)
    hub.warning("from the hub")
    assert capfd.readouterr().err == ""


def test_a_library_imported_later_cannot_add_a_console_handler(sandbox, capfd) -> None:
    setup_logging(sandbox.ml_intern_home)
    late = logging.getLogger("LiteLLM")
    late.addHandler(logging.StreamHandler())  # what litellm does when it is first imported
    late.warning("late warning")
    assert capfd.readouterr().err == ""
    assert "late warning" in (sandbox.ml_intern_home / "logs" / "ml-intern.log").read_text()


def test_verbose_shows_library_logs_on_stderr_too(sandbox, capfd) -> None:
    path = setup_logging(sandbox.ml_intern_home, verbose=True)
    logging.getLogger("httpx").info("HTTP Request: GET https://example.org")
    assert "HTTP Request: GET https://example.org" in capfd.readouterr().err
    assert "HTTP Request" in path.read_text()


def test_secrets_never_reach_the_log_file(sandbox, capfd) -> None:
    register_secrets({"MY_SERVICE_TOKEN": "plain-secret-value-42"})
    path = setup_logging(sandbox.ml_intern_home, verbose=True)
    logger = logging.getLogger("huggingface_hub")
    logger.warning("token %s and %s", "hf_abcdefghijklmnopqrstuvwxyz", "plain-secret-value-42")
    try:
        raise RuntimeError("Authorization: Bearer hf_zyxwvutsrqponmlkjihgfedcba")
    except RuntimeError:
        logger.exception("request failed")
    text, shown = path.read_text(), capfd.readouterr().err
    for output in (text, shown):
        assert "request failed" in output and "RuntimeError" in output
        assert "hf_abcdef" not in output and "plain-secret-value-42" not in output
        assert "hf_zyxwvu" not in output and "[redacted]" in output


def test_every_credential_shape_is_redacted_in_the_log_file(sandbox) -> None:
    path = setup_logging(sandbox.ml_intern_home)
    logger = logging.getLogger("mcp.client.stdio")
    for text, _, _ in SHAPES.values():
        logger.warning("server said: %s", text)
    try:
        raise ConnectionError(f"cannot connect to {SHAPES['postgres url'][0]}")
    except ConnectionError:
        logger.exception("connection failed")
    text = path.read_text()
    assert "connection failed" in text and "@db.example.com" in text
    assert [name for name, (_, piece, _) in SHAPES.items() if piece in text] == []


def test_calling_it_again_adds_no_handler(sandbox, tmp_path) -> None:
    setup_logging(sandbox.ml_intern_home)
    setup_logging(sandbox.ml_intern_home)
    assert len(our_handlers()) == 1
    other = setup_logging(tmp_path / "elsewhere", verbose=True)
    assert len(our_handlers()) == 2  # the file (now the new one) and stderr
    logging.getLogger("httpx").warning("after the switch")
    assert "after the switch" in other.read_text()
    assert not (sandbox.ml_intern_home / "logs" / "ml-intern.log").exists()  # nothing written there


def test_every_library_logger_is_covered() -> None:
    for name in ("huggingface_hub", "httpx", "httpcore", "LiteLLM", "mcp", "langchain", "urllib3"):
        assert name in LIBRARY_LOGGERS


@pytest.mark.e2e
def test_importing_the_module_stays_cheap(subprocess_env) -> None:
    heavy = "{'litellm', 'huggingface_hub', 'httpx'}"
    code = f"import sys, ml_intern.logs; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_log_file_is_capped(sandbox) -> None:
    path = setup_logging(sandbox.ml_intern_home)
    (handler,) = our_handlers()
    assert handler.maxBytes > 0 and handler.backupCount >= 1  # type: ignore[attr-defined]
    assert isinstance(path, Path)


@pytest.mark.e2e
def test_a_malformed_library_log_call_is_written_not_raised(sandbox) -> None:
    # In a fresh interpreter: pytest's own log capture would raise on the bad call before our handler runs.
    code = (
        "import logging, sys; from pathlib import Path; from ml_intern.logs import setup_logging; "
        "path = setup_logging(Path(sys.argv[1])); "
        "logging.getLogger('huggingface_hub').warning('retry %s of %s', 1); print(path.read_text())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(sandbox.ml_intern_home)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "retry %s of %s" in done.stdout


def test_only_the_user_can_read_the_logs(sandbox) -> None:
    logs = sandbox.ml_intern_home / "logs"
    logs.mkdir(parents=True)
    logs.chmod(0o755)  # made by an older version, or by hand
    path = setup_logging(sandbox.ml_intern_home)
    assert path.parent == logs and logs.stat().st_mode & 0o777 == 0o700
