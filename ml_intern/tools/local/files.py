"""Local file tools: `read` (numbered lines), `write` and `edit` (exact match, then a tolerant one)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.base import MAX_RESULT_CHARS, ToolEnv, ToolError
from ml_intern.tools.guardrails import warning_text
from ml_intern.tools.local.boundary import resolve
from ml_intern.tools.local.matching import locate, splice

DEFAULT_READ_LINES = 2000
MAX_LINE_CHARS = 2000
SNIFF_BYTES = 8192
SNIPPET_CONTEXT = 2
SNIPPET_MAX_LINES = 30

READ_DESCRIPTION = (
    f"Read a text file as numbered lines (cat -n; never copy the numbers into edits), {DEFAULT_READ_LINES} "
    "at most. Read a file before editing or overwriting it."
)
WRITE_DESCRIPTION = "Write a whole file (creates parent dirs). Prefer edit for changes."
EDIT_DESCRIPTION = (
    "Replace old_str (unique, else set replace_all) with new_str in a file you have read. Keep indentation."
)


class ReadArgs(BaseModel):
    path: str
    offset: int = Field(1, description="first line, 1-based")
    limit: int = DEFAULT_READ_LINES


class WriteArgs(BaseModel):
    path: str
    content: str


class EditArgs(BaseModel):
    path: str
    old_str: str
    new_str: str
    replace_all: bool = False
    mode: Literal["replace", "append_after", "prepend_before"] = Field(
        "replace", description="or insert new_str after/before old_str"
    )


def require_file(target: Path, path: str) -> None:
    """Fail clearly when `target` is missing or a directory."""
    if not target.exists():
        raise ToolError(f"File not found: {path} (resolved to {target}). Check the path with bash `ls`.")
    if target.is_dir():
        raise ToolError(f"{path} is a directory; list it with bash `ls` instead.")


def number_line(number: int, line: str, max_chars: int = MAX_LINE_CHARS) -> str:
    """Format one line like `cat -n`, cutting very long lines."""
    if len(line) > max_chars:
        line = f"{line[:max_chars]}... [{len(line) - max_chars} more characters]"
    return f"{number:>6}\t{line}"


def read_numbered(env: ToolEnv, path: str, offset: int, limit: int) -> str:
    """Return `limit` numbered lines from `offset`, bounded in size, saying how to read on."""
    target = resolve(env, path)
    require_file(target, path)
    with target.open("rb") as raw:
        if b"\0" in raw.read(SNIFF_BYTES):
            raise ToolError(f"{path} is a binary file; inspect it with bash (e.g. `file`, `xxd | head`).")
    env.read_files.add(str(target))
    offset, limit = max(offset, 1), max(limit, 1)
    shown: list[str] = []
    size, total = 0, 0
    with target.open(encoding="utf-8", errors="replace") as text:
        for total, line in enumerate(text, start=1):
            if total >= offset and len(shown) < limit and size < MAX_RESULT_CHARS:
                shown.append(number_line(total, line.rstrip("\n")))
                size += len(shown[-1]) + 1
    if total == 0:
        return "(empty file)"
    if not shown:
        raise ToolError(f"offset {offset} is past the end of {path}, which has {total} lines.")
    last = offset + len(shown) - 1
    if last < total:
        shown.append(f"\n[Lines {offset}-{last} of {total}. Continue with offset={last + 1}.]")
    return "\n".join(shown)


def save_text(target: Path, content: str) -> None:
    """Write `content`; an existing file is replaced atomically and keeps its permissions."""
    if not target.exists():
        target.write_text(content, encoding="utf-8", newline="")
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(content)
        os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def syntax_warning(target: Path, content: str) -> str:
    """Warn when a Python file no longer compiles, or trains a model it would lose (tools/guardrails.py)."""
    if target.suffix != ".py":
        return ""
    try:
        compile(content, str(target), "exec")
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        return f"\nWarning: Python syntax error{f' at line {line}' if line else ''}: {error}"
    return warning_text(content)


def write_file(env: ToolEnv, path: str, content: str) -> str:
    """Write a whole file, refusing to overwrite one not read in this run."""
    target = resolve(env, path)
    if target.is_dir():
        raise ToolError(f"{path} is a directory; give a file path.")
    if target.exists() and str(target) not in env.read_files:
        raise ToolError(f"{path} already exists and was not read in this session. Read it first, then write.")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_text(target, content)
    env.read_files.add(str(target))
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    return f"Wrote {len(content.encode())} bytes ({lines} lines) to {target}" + syntax_warning(
        target, content
    )


def snippet(text: str, start: int, length: int) -> str:
    """Numbered lines around the region [start, start + length) of `text`."""
    lines = text.removesuffix("\n").split("\n")
    first = text.count("\n", 0, start) + 1
    last = text.count("\n", 0, start + max(length - 1, 0)) + 1
    low, high = max(1, first - SNIPPET_CONTEXT), min(len(lines), last + SNIPPET_CONTEXT)
    high = min(high, low + SNIPPET_MAX_LINES - 1)
    return "\n".join(number_line(n, lines[n - 1], 200) for n in range(low, high + 1))


def edit_file(env: ToolEnv, path: str, old_str: str, new_str: str, replace_all: bool, mode: str) -> str:
    """Replace `old_str` with `new_str` in a file read in this run."""
    if not old_str:
        raise ToolError("old_str is empty. To create a file use write; to insert text, quote a nearby line.")
    if old_str == new_str and mode == "replace":
        raise ToolError("old_str and new_str are identical; nothing to change.")
    target = resolve(env, path)
    require_file(target, path)
    if str(target) not in env.read_files:
        raise ToolError(f"You must read {path} before editing it. Use the read tool first.")
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text; edit it with bash instead.") from None
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text, old_str, new_str = (s.replace("\r\n", "\n") for s in (text, old_str, new_str))
    spans, adapt, note = locate(text, old_str, new_str)
    if not spans:
        raise ToolError(f"old_str was not found in {path}. Read the file again and copy the exact text.")
    if len(spans) > 1 and not replace_all:
        raise ToolError(
            f"old_str matches {len(spans)} places in {path}. Include more surrounding lines to make it "
            "unique, or set replace_all=true to change all of them."
        )
    edited, start, length = splice(text, spans, adapt, mode)
    save_text(target, edited.replace("\n", "\r\n") if crlf else edited)
    count = f"{len(spans)} replacement{'s' if len(spans) > 1 else ''}"
    return (
        f"Edited {target} ({count}) {note}".rstrip()
        + f"\n{snippet(edited, start, length)}"
        + syntax_warning(target, edited)
    )


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build `read`, `write` and `edit` bound to the run's working directory and read-file record (none in the
    sandbox runtime: tools/sandbox/ offers its own under the same names)."""
    if env.runtime == "sandbox":
        return []

    def bound(operation: Callable[..., str]) -> Callable[..., Awaitable[str]]:
        async def run(**kwargs: Any) -> str:
            try:  # blocking file I/O stays off the event loop
                return await asyncio.to_thread(operation, env, **kwargs)
            except OSError as error:
                raise ToolError(f"{operation.__name__} failed: {error}") from None

        return run

    specs = [
        ("read", read_numbered, READ_DESCRIPTION, ReadArgs),
        ("write", write_file, WRITE_DESCRIPTION, WriteArgs),
        ("edit", edit_file, EDIT_DESCRIPTION, EditArgs),
    ]
    return [
        StructuredTool.from_function(coroutine=bound(op), name=name, description=text, args_schema=schema)
        for name, op, text, schema in specs
    ]
