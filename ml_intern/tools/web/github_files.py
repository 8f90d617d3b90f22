"""`github_read_file`: a file of a GitHub repository by line range, notebooks rendered as text."""

from __future__ import annotations

import base64
import json
from typing import Any

from ml_intern.tools.base import ToolError, clip
from ml_intern.tools.web.github_api import GitHubApi, repo_path, split_repo

DEFAULT_LINES = 300
OUTPUT_LINES = 15
OUTPUT_CHARS = 1_200


def _joined(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def trim_output(text: str) -> str:
    """Keep the first lines of a cell output."""
    lines = text.rstrip("\n").split("\n")
    kept = "\n".join(lines[:OUTPUT_LINES])[:OUTPUT_CHARS]
    cut = len(lines) - OUTPUT_LINES
    return kept + (f"\n... [{cut} more output lines trimmed]" if cut > 0 else "")


def render_output(output: dict[str, Any]) -> str:
    """One cell output as short text."""
    kind = output.get("output_type")
    if kind == "stream":
        return trim_output(_joined(output.get("text")))
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    data = output.get("data") or {}
    images = [mime for mime in data if mime.startswith("image/")]
    if images:
        return f"[{images[0]} output]"
    return trim_output(_joined(data.get("text/plain"))) if "text/plain" in data else "[rich output]"


def render_notebook(raw: str) -> str:
    """A notebook as text: markdown cells as is, code cells fenced, outputs trimmed."""
    try:
        notebook = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    language = ((notebook.get("metadata") or {}).get("kernelspec") or {}).get("language") or "python"
    blocks: list[str] = []
    for cell in notebook.get("cells", []):
        source = _joined(cell.get("source")).rstrip()
        if cell.get("cell_type") != "code":
            blocks.append(source)
            continue
        blocks.append(f"```{language}\n{source}\n```")
        outputs = [render_output(o) for o in cell.get("outputs") or []]
        if outputs:
            blocks.append("Output:\n" + "\n".join(outputs))
    return "\n\n".join(blocks)


def numbered_window(text: str, line_start: int | None, line_end: int | None) -> tuple[str, str]:
    """(the chosen lines, numbered, and a footer saying what part of the file this is)."""
    lines = text.split("\n")
    total = len(lines)
    start = max(1, line_start or 1)
    end = min(total, line_end or (start + DEFAULT_LINES - 1))
    if start > total:
        raise ToolError(f"line_start {start} is past the end of the file ({total} lines).")
    if end < start:
        raise ToolError(f"line_end {end} is before line_start {start}.")
    body = "\n".join(f"{n:>6}\t{lines[n - 1]}" for n in range(start, end + 1))
    footer = (
        ""
        if (start, end) == (1, total)
        else f"[lines {start}-{end} of {total}; use line_start/line_end for more]"
    )
    return body, footer


async def file_text(api: GitHubApi, owner: str, name: str, path: str, ref: str) -> str:
    """The decoded text of a file; directories and binaries are explained instead."""
    where = f"{path} in {owner}/{name}" + (f" at {ref}" if ref else "")
    missing = (
        f"Not found: {where}. Check the path with github_find_examples(repo='{owner}/{name}'), "
        f"or the repo name with github_list_repos(owner='{owner}')."
    )
    params = {"ref": ref} if ref else None
    contents_path = repo_path(owner, name, f"contents/{path.strip('/')}")
    data = await api.get(contents_path, missing, params=params)
    if isinstance(data, list):
        entries = "\n".join(f"- {e.get('path')} ({e.get('type')})" for e in data[:200])
        raise ToolError(f"{where} is a directory; read one of its files:\n{entries}")
    if data.get("type") != "file":
        raise ToolError(f"{where} is a {data.get('type')}, not a file.")
    if data.get("encoding") == "base64" and data.get("content"):
        raw = base64.b64decode(data["content"])
    else:  # files over 1 MB come without inline content
        raw = (await api.get(contents_path, missing, params=params, raw=True)).encode()
    if b"\x00" in raw[:8000]:
        raise ToolError(f"{where} is a binary file ({len(raw):,} bytes); it cannot be shown as text.")
    return raw.decode("utf-8", errors="replace")


async def read_file(
    api: GitHubApi, repo: str, path: str, ref: str, line_start: int | None, line_end: int | None
) -> str:
    """The text answer of github_read_file."""
    owner, name = split_repo(repo)
    if not path.strip():
        raise ToolError("'path' is required; find files with github_find_examples.")
    text = await file_text(api, owner, name, path, ref.strip())
    if path.lower().endswith(".ipynb"):
        text = render_notebook(text)
    body, footer = numbered_window(text, line_start, line_end)
    header = f"{owner}/{name}/{path.strip('/')}" + (f" @ {ref}" if ref else "")
    return clip(f"{header}\n{body}" + (f"\n{footer}" if footer else ""), hint="narrow line_start/line_end")
