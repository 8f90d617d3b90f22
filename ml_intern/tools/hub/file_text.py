"""How repo files are shown: numbered, bounded text for reads, a one-line preview for upload approvals, sizes
and card bodies."""

from __future__ import annotations

from pathlib import Path

from ml_intern.tools.base import ToolError

MAX_READ_BYTES = 10 * 1024 * 1024
MAX_READ_CHARS = 20_000
MAX_LINE_CHARS = 2000
PREVIEW_CHARS = 80
SNIFF_BYTES = 8192


def human_size(size: float | None) -> str:
    """1536 -> '1.5 KB'."""
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "?"


def card_body(readme: str) -> str:
    """A README without its YAML front matter."""
    text = readme.lstrip("\ufeff")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :]
    return text.strip()


def looks_binary(data: bytes) -> bool:
    """NUL bytes or undecodable UTF-8 near the start."""
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start < len(head) - 4  # a multi-byte character cut at the sniff boundary is fine
    return False


def numbered_lines(label: str, data: bytes, offset: int, limit: int, max_chars: int = 0) -> str:
    """Lines offset.. of a text file numbered like `cat -n`, within `max_chars` (at most and by default
    MAX_READ_CHARS), saying how to read on."""
    if looks_binary(data):
        raise ToolError(f"{label} is a binary file ({human_size(len(data))}); it cannot be shown as text.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    start = max(offset, 1)
    if lines and start > len(lines):
        raise ToolError(f"offset {offset} is past the end of {label} ({len(lines)} lines).")
    budget = min(max_chars, MAX_READ_CHARS) if max_chars > 0 else MAX_READ_CHARS
    shown: list[str] = []
    used = 0
    for number in range(start, min(start + max(limit, 1), len(lines) + 1)):
        line = lines[number - 1]
        if len(line) > min(MAX_LINE_CHARS, budget):
            line = line[: min(MAX_LINE_CHARS, budget)] + f" [... line cut, {len(line)} chars]"
        entry = f"{number:>6}\t{line}"
        if shown and used + len(entry) > budget:
            break
        shown.append(entry)
        used += len(entry) + 1
    last = start + len(shown) - 1
    header = f"{label} ({len(lines)} lines, {human_size(len(data))}), lines {start}-{last}:"
    footer = f"[more: read with offset={last + 1}]" if last < len(lines) else "[end of file]"
    return "\n".join([header, *shown, footer])


def upload_preview(content: str, source: Path | None) -> tuple[str, str]:
    """(size, a quoted preview of the start) of what an upload would send."""
    if source is None:
        data = content.encode()
        return human_size(len(data)), quoted(data)
    if not source.is_file():
        return "?", f"local file {source} (not found)"
    with source.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    preview = "binary" if looks_binary(head) else quoted(head)
    return human_size(source.stat().st_size), f"local file {source}, {preview}"


def quoted(data: bytes) -> str:
    """The first PREVIEW_CHARS characters, newlines shown as \\n, in quotes."""
    text = data.decode("utf-8", errors="replace")
    cut = text[:PREVIEW_CHARS].replace("\n", "\\n")
    return f'"{cut}{"..." if len(text) > PREVIEW_CHARS else ""}"'
