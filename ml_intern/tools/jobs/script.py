"""A run's Python script: inline code, a URL uv fetches, or a file in the workdir (or a config root) shipped
inside the command; a file anywhere else is refused, since its content would leave for the remote job. In the
sandbox runtime a path names a file in the sandbox (`sandbox_script`), read from there."""

from __future__ import annotations

import base64
import os
import re
import shlex
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from ml_intern.secrets import is_credential_path
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.local.boundary import DOTENV, within

if TYPE_CHECKING:
    from ml_intern.tools.jobs.spec import JobArgs

FAST_TRANSFER = "hf-transfer"  # added to every uv script's dependencies, as the original did
NOT_IN_PATHS = re.compile(r"[\s()'\"`]")  # what code has and a script's path (as we read one) has not


def uv_command(args: JobArgs, workdir: Path, roots: Sequence[Path] = ()) -> list[str]:
    """`uv run --with DEP ... SCRIPT ARGS`, shipping inline code or a workdir file inside the command."""
    dependencies = list(args.dependencies)
    if not any(re.match(r"hf[-_]transfer\b", dep) for dep in dependencies):
        dependencies.append(FAST_TRANSFER)
    with_deps = [part for dep in dependencies for part in ("--with", dep)]
    with_deps = (["--python", args.python] if args.python else []) + with_deps
    if is_url(args.script):
        return ["uv", "run", *with_deps, args.script, *args.script_args]
    name, code = read_script(args.script, workdir, roots)
    encoded = base64.b64encode(code.encode()).decode()
    target = f"/tmp/{name}"
    run = shlex.join(["uv", "run", *with_deps, target, *args.script_args])
    return ["/bin/sh", "-c", f"printf %s {encoded} | base64 -d > {target} && exec {run}"]


def read_script(script: str, workdir: Path, roots: Sequence[Path] = ()) -> tuple[str, str]:
    """(file name to use in the job, code) for inline code or a .py file in the workdir (or a config root);
    a file elsewhere, or a credential file, is refused: its content would leave for the remote job."""
    if "\n" not in script:
        path = Path(script.strip()).expanduser()
        path = path if path.is_absolute() else workdir / path
        with suppress(OSError):  # inline code can make a path too long to stat
            if path.is_file():
                return re.sub(r"[^\w.-]", "_", path.stem) + ".py", _allowed(path, workdir, roots).read_text(
                    encoding="utf-8"
                )
        if path.suffix == ".py":
            raise ToolError(
                f"Script file not found: {path}. Pass inline code, a URL, or a path in the workdir."
            )
    return "script.py", script


def _allowed(path: Path, workdir: Path, roots: Sequence[Path]) -> Path:
    """`path` resolved, if it lies in the workdir or a root and is no credential file; else a ToolError."""
    target = Path(os.path.realpath(path))
    places = [Path(os.path.realpath(place)) for place in (workdir, *roots)]
    if not within(target, places):
        raise ToolError(
            f"Script {path} is outside the working directory (and the config's roots): copy it into the "
            "workdir, or pass the code inline."
        )
    if is_credential_path(target.as_posix()) or DOTENV.match(target.name):
        raise ToolError(f"Script {path} is a credential file; it is not sent to a job.")
    return target


def is_url(script: str) -> bool:
    """True for http(s) URLs, which uv fetches itself."""
    return script.startswith(("https://", "http://"))


def is_path(script: str) -> bool:
    """Whether `script` looks like a file's path (the sandbox runtime reads it from the sandbox): one word
    with no parentheses or quotes, ending with .py or .sh or starting with /, ./ or ../ (else it is code)."""
    text = script.strip()
    if not text or is_url(text) or NOT_IN_PATHS.search(text):
        return False
    return text.endswith((".py", ".sh")) or text.startswith(("/", "./", "../"))


async def sandbox_script(args: JobArgs, env: ToolEnv) -> JobArgs:
    """In the sandbox runtime, `args` with a script path replaced by the sandbox file's code (as inline code);
    a missing .py file is a ToolError, other one-liners stay inline code (the local rule)."""
    if env.runtime != "sandbox" or env.sandbox is None or not is_path(args.script):
        return args
    # Imported here: only the sandbox runtime loads the sandbox's tools.
    from ml_intern.tools.sandbox.tools import FILE_SECONDS, read_raw

    path = args.script.strip()
    client = await env.sandbox.client()
    found = await client.call("exists", {"path": path}, FILE_SECONDS)
    if not found.get("exists") or found.get("is_dir"):
        if path.endswith(".py"):
            raise ToolError(
                f"Script file not found in the sandbox: {path}. Write it there first, or pass inline code or "
                "a URL."
            )
        return args
    code = await read_raw(client, path)
    # A newline keeps a one-line file inline code (read_script takes a single line for a local path).
    return args.model_copy(update={"script": code if "\n" in code else code + "\n"})
